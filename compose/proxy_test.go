package compose

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// nginxTest runs `nginx -t` on a server block as the stack's nginx would
// load it (from the image's http block, with ${VAR}s of its templates
// replaced from env). nginx resolves upstream names when it loads a
// config, and the stack's service names resolve only inside the stack:
// the copy checked names 127.0.0.1 in their place (proxy_pass
// http://echo:9000 → http://127.0.0.1:9000, and an upstream's server
// echo:9000 → 127.0.0.1:9000). A temporary prefix holds the pid, log and
// temp files.
func nginxTest(t *testing.T, server []byte, env map[string]string, names []string) error {
	t.Helper()
	nginx, err := exec.LookPath("nginx")
	if err != nil {
		t.Fatal("nginx is not installed: run scripts/deps.sh debs")
	}
	conf := regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`).ReplaceAllFunc(server, func(s []byte) []byte {
		if v, ok := env[string(s[2:len(s)-1])]; ok {
			return []byte(v)
		}
		return s
	})
	for _, n := range names {
		conf = bytes.ReplaceAll(conf, []byte("http://"+n+":"), []byte("http://127.0.0.1:"))
		conf = bytes.ReplaceAll(conf, []byte("server "+n+":"), []byte("server 127.0.0.1:"))
	}
	prefix := t.TempDir()
	if err := os.WriteFile(filepath.Join(prefix, "server.conf"), conf, 0o644); err != nil {
		t.Fatal(err)
	}
	main := fmt.Sprintf(`pid %[1]s/nginx.pid;
error_log %[1]s/error.log;
events {}
http {
    access_log off;
    client_body_temp_path %[1]s/body;
    proxy_temp_path %[1]s/proxy;
    fastcgi_temp_path %[1]s/fastcgi;
    uwsgi_temp_path %[1]s/uwsgi;
    scgi_temp_path %[1]s/scgi;
    include %[1]s/server.conf;
}
`, prefix)
	if err := os.WriteFile(filepath.Join(prefix, "nginx.conf"), []byte(main), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(nginx, "-t", "-q", "-p", prefix, "-e", filepath.Join(prefix, "error.log"), "-c", filepath.Join(prefix, "nginx.conf")).CombinedOutput()
	if err != nil {
		return fmt.Errorf("nginx -t: %v: %s", err, out)
	}
	return nil
}

func serviceNames(cfg map[string]any) []string {
	var out []string
	for n := range services(cfg) {
		out = append(out, n)
	}
	return out
}

// TestProxyConfigs runs nginx's own check on the nginx configs of the
// stacks: the nginx stack's template and the SPA's file server. (No stack
// has a Caddy config; Envoy cannot be installed here, so envoy.yaml is
// only held to the stack: its clusters are services of the stack, and its
// secret is the one bffgate gets.)
func TestProxyConfigs(t *testing.T) {
	t.Run("nginx", func(t *testing.T) {
		_, cfg := resolved(t, "nginx")
		gw := services(cfg)["gateway"]
		tmpl := source(gw, "/etc/nginx/templates")
		files, _ := filepath.Glob(filepath.Join(tmpl, "*.template"))
		if len(files) == 0 {
			t.Fatalf("the nginx gateway mounts no templates (%s)", tmpl)
		}
		for _, f := range files {
			raw, _ := os.ReadFile(f)
			if err := nginxTest(t, raw, environment(gw), serviceNames(cfg)); err != nil {
				t.Errorf("%s: %v", f, err)
			}
			if environment(gw)["BFFGATE_SECRET"] != environment(services(cfg)["bffgate"])["BFFGATE_SECRET"] {
				t.Error("nginx and bffgate get different BFFGATE_SECRETs")
			}
		}
		t.Run("a broken copy is refused", func(t *testing.T) {
			raw, _ := os.ReadFile(files[0])
			if nginxTest(t, bytes.Replace(raw, []byte("auth_request_set"), []byte("auth_request_sett"), 1), environment(gw), serviceNames(cfg)) == nil {
				t.Error("nginx -t accepted an unknown directive")
			}
			if nginxTest(t, raw, environment(gw), nil) == nil {
				t.Error("nginx -t accepted upstream names that do not resolve here: the check would not see the config")
			}
		})
	})
	t.Run("spa", func(t *testing.T) {
		raw, err := os.ReadFile(filepath.Join("common", "spa", "nginx.conf"))
		if err != nil {
			t.Fatal(err)
		}
		if err := nginxTest(t, raw, nil, nil); err != nil {
			t.Error(err)
		}
		df, _ := os.ReadFile(filepath.Join("common", "spa", "Dockerfile"))
		if !bytes.Contains(df, []byte("COPY compose/common/spa/nginx.conf /etc/nginx/conf.d/default.conf")) {
			t.Error("the SPA's Dockerfile does not install common/spa/nginx.conf")
		}
	})
	t.Run("envoy", func(t *testing.T) {
		_, cfg := resolved(t, "envoy")
		raw, err := os.ReadFile(source(services(cfg)["gateway"], "/etc/envoy/envoy.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		doc, err := yamlJSON(raw)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(doc)
		for _, m := range regexp.MustCompile(`"socket_address":\{"address":"([^"]+)","port_value":(\d+)\}`).FindAllStringSubmatch(string(b), -1) {
			if m[1] != "0.0.0.0" && services(cfg)[m[1]] == nil {
				t.Errorf("envoy.yaml sends to %s:%s, which is not a service of the stack", m[1], m[2])
			}
		}
		secret := environment(services(cfg)["bffgate"])["BFFGATE_SECRET"]
		if !strings.Contains(string(b), `{"key":"x-bffgate-secret","value":"`+secret+`"}`) {
			t.Error("envoy.yaml's x-bffgate-secret is not the bffgate service's BFFGATE_SECRET")
		}
		if !strings.Contains(string(b), `"failure_mode_allow":false`) {
			t.Error("envoy.yaml's ext_authz must fail closed (failure_mode_allow: false)")
		}
	})
}
