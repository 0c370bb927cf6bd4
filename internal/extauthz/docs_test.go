package extauthz

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/bffgate/bffgate/internal/extauthz/extauthztest"
)

// TestDocs holds docs/extauthz.md to what the tests run: its nginx file
// (upstreams and server block) and Caddyfile site are the ones TestNginx
// and TestCaddy start, with
// example addresses; its Traefik and Envoy header lists are those of the
// stand-ins; its reference table names every field of the config file.
func TestDocs(t *testing.T) {
	b, err := os.ReadFile("../../docs/extauthz.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	render := func(tmpl string, v extauthztest.Vars) string {
		s, err := extauthztest.Render(tmpl, v)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	blocks := map[string]string{
		"nginx": render(extauthztest.NginxServer, extauthztest.Vars{Listen: "127.0.0.1:8080", Authz: "127.0.0.1:9191", API: "127.0.0.1:9000", Secret: "REPLACE-WITH-THE-SECRET"}),
		"caddy": render(extauthztest.CaddySite, extauthztest.Vars{Site: "app.example.com", Authz: "127.0.0.1:9191", API: "127.0.0.1:9000", Secret: "{env.BFFGATE_SECRET}"}),
	}
	for name, want := range blocks {
		if !strings.Contains(doc, want) {
			t.Errorf("docs/extauthz.md does not hold the tested %s configuration:\n%s", name, want)
		}
	}
	if want := "authResponseHeaders: [" + strings.Join(traefikResponseHeaders, ", ") + "]"; !strings.Contains(doc, want) {
		t.Errorf("docs/extauthz.md's Traefik configuration lacks %q", want)
	}
	// The Envoy, Istio and Kubernetes files are in examples/, held to the
	// code by examples_test.go; the doc names each.
	for _, f := range []string{"envoy/envoy-http.yaml", "envoy/envoy-grpc.yaml", "istio/mesh-config.yaml", "istio/policies-http.yaml",
		"istio/grpc-in-gateway.yaml", "istio/gateway-patch.yaml", "kubernetes/bffgate-extauthz.yaml"} {
		if !strings.Contains(doc, "(../examples/"+f+")") {
			t.Errorf("docs/extauthz.md does not link examples/%s", f)
		}
	}
	// The example file is a valid config.
	for _, v := range []string{"BFFGATE_SECRET", "SHOP_CLIENT_SECRET", "ADMIN_CLIENT_SECRET"} {
		t.Setenv(v, "a-secret-of-enough-length")
	}
	t.Setenv("SHOP_COOKIE_KEY", testKey)
	t.Setenv("ADMIN_COOKIE_KEY", testKey)
	_, example, _ := strings.Cut(doc, "## The config file")
	_, example, _ = strings.Cut(example, "```json\n")
	example, _, _ = strings.Cut(example, "```")
	file := filepath.Join(t.TempDir(), "extauthz.json")
	if err := os.WriteFile(file, []byte(example), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(file)
	if err != nil {
		t.Fatalf("the documented example: %v", err)
	}
	srv, err := New(c)
	if err != nil {
		t.Fatalf("the documented example: %v", err)
	}
	srv.Close()
	if len(c.Apps) != 2 || c.Listen == "" {
		t.Fatalf("the documented example has %d apps", len(c.Apps))
	}

	_, table, _ := strings.Cut(doc, "## The config file")
	table, _, _ = strings.Cut(table, "\n## ")
	for _, f := range fields(reflect.TypeFor[Config](), "") {
		if !strings.Contains(table, "| `"+f+"` |") {
			t.Errorf("docs/extauthz.md's config reference does not list `%s`", f)
		}
	}
}

func fields(typ reflect.Type, prefix string) []string {
	var out []string
	for i := range typ.NumField() {
		f := typ.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "" || name == "-" {
			continue
		}
		out = append(out, prefix+name)
		if f.Type.Kind() == reflect.Slice && f.Type.Elem().Kind() == reflect.Struct {
			out = append(out, fields(f.Type.Elem(), prefix+name+"[].")...)
		}
	}
	return out
}
