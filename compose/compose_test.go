package compose

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/bffgate/bffgate/core/bff"
	"github.com/bffgate/bffgate/internal/extauthz"
)

// Docker cannot run where these tests run: they check everything short of
// `docker compose up` (README.md, "What is tested").

// stacks are the folders with a docker-compose.yml.
var stacks = []string{"tyk", "kong", "envoy", "nginx"}

// composeCommand returns the command that resolves a compose file without a
// daemon: the v2 plugin when the machine has it, else Debian's
// docker-compose (scripts/deps.sh installs it).
func composeCommand(t *testing.T) []string {
	t.Helper()
	if exec.Command("docker", "compose", "version").Run() == nil {
		return []string{"docker", "compose"}
	}
	if p, err := exec.LookPath("docker-compose"); err == nil {
		return []string{p}
	}
	t.Fatal("neither `docker compose` nor `docker-compose` is installed: run scripts/deps.sh debs (Debian's docker-compose package)")
	return nil
}

// resolve runs `compose -f DIR/docker-compose.yml [-f DIR/OVERRIDE...]
// config` with an environment that sets none of the stacks' variables (so
// their defaults are what is checked) and returns the resolved file as
// JSON values.
func resolve(t *testing.T, dir string, overrides ...string) (map[string]any, error) {
	t.Helper()
	args := append(composeCommand(t), "-f", filepath.Join(dir, "docker-compose.yml"))
	for _, o := range overrides {
		args = append(args, "-f", filepath.Join(dir, o))
	}
	args = append(args, "config")
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Dir = dir
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("%s: %v: %s", strings.Join(args, " "), err, stderr.String())
	}
	v, err := yamlJSON(out)
	if err != nil {
		return nil, err
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, errors.New("compose config printed no mapping")
	}
	return m, nil
}

// yamlJSON reads YAML with PyYAML, the YAML library docker-compose itself
// reads compose files with (Debian's python3-yaml, a dependency of its
// docker-compose package).
func yamlJSON(src []byte) (any, error) {
	cmd := exec.Command("python3", "-c", "import sys, json, yaml; json.dump(yaml.safe_load(sys.stdin), sys.stdout)")
	cmd.Stdin = bytes.NewReader(src)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("reading YAML with python3's yaml (Debian's python3-yaml): %v: %s", err, stderr.String())
	}
	var v any
	if err := json.Unmarshal(out, &v); err != nil {
		return nil, err
	}
	return v, nil
}

func services(cfg map[string]any) map[string]map[string]any {
	out := map[string]map[string]any{}
	s, _ := cfg["services"].(map[string]any)
	for name, v := range s {
		if m, ok := v.(map[string]any); ok {
			out[name] = m
		}
	}
	return out
}

func str(v any) string { s, _ := v.(string); return s }

// environment returns a service's environment, as a map whichever form
// the resolved file uses.
func environment(svc map[string]any) map[string]string {
	env := map[string]string{}
	switch e := svc["environment"].(type) {
	case map[string]any:
		for k, v := range e {
			if v != nil {
				env[k] = fmt.Sprint(v)
			}
		}
	case []any:
		for _, x := range e {
			if k, v, ok := strings.Cut(str(x), "="); ok {
				env[k] = v
			}
		}
	}
	return env
}

type mount struct{ src, dst string }

// binds returns a service's bind mounts (named volumes left out), in
// either the short ("src:dst:mode") or the long form.
func binds(svc map[string]any) []mount {
	var out []mount
	vols, _ := svc["volumes"].([]any)
	for _, v := range vols {
		switch v := v.(type) {
		case string:
			parts := strings.Split(v, ":")
			if len(parts) >= 2 && (strings.HasPrefix(parts[0], "/") || strings.HasPrefix(parts[0], ".")) {
				out = append(out, mount{parts[0], parts[1]})
			}
		case map[string]any:
			if str(v["type"]) == "bind" {
				out = append(out, mount{str(v["source"]), str(v["target"])})
			}
		}
	}
	return out
}

// source returns the host file mounted at the container path dst.
func source(svc map[string]any, dst string) string {
	for _, m := range binds(svc) {
		if m.dst == dst {
			return m.src
		}
	}
	return ""
}

type build struct{ context, dockerfile string }

func buildOf(svc map[string]any, dir string) (build, bool) {
	b, ok := svc["build"].(map[string]any)
	if !ok {
		if s := str(svc["build"]); s != "" {
			b = map[string]any{"context": s}
		} else {
			return build{}, false
		}
	}
	ctx := str(b["context"])
	if !filepath.IsAbs(ctx) {
		ctx = filepath.Join(dir, ctx)
	}
	df := str(b["dockerfile"])
	if df == "" {
		df = "Dockerfile"
	}
	if !filepath.IsAbs(df) {
		df = filepath.Join(ctx, df)
	}
	return build{ctx, df}, true
}

func buildArgs(svc map[string]any) map[string]string {
	out := map[string]string{}
	b, _ := svc["build"].(map[string]any)
	switch a := b["args"].(type) {
	case map[string]any:
		for k, v := range a {
			out[k] = fmt.Sprint(v)
		}
	case []any:
		for _, x := range a {
			if k, v, ok := strings.Cut(str(x), "="); ok {
				out[k] = v
			}
		}
	}
	return out
}

// checkFiles lists what a resolved compose file references and is missing:
// build contexts, Dockerfiles, bind-mounted files and folders.
func checkFiles(dir string, cfg map[string]any) []error {
	var errs []error
	for name, svc := range services(cfg) {
		if b, ok := buildOf(svc, dir); ok {
			if st, err := os.Stat(b.context); err != nil || !st.IsDir() {
				errs = append(errs, fmt.Errorf("%s: build context %s is not a folder", name, b.context))
			}
			if _, err := os.Stat(b.dockerfile); err != nil {
				errs = append(errs, fmt.Errorf("%s: Dockerfile %s: %v", name, b.dockerfile, err))
			}
		}
		for _, m := range binds(svc) {
			if _, err := os.Stat(m.src); err != nil {
				errs = append(errs, fmt.Errorf("%s: mounts %s at %s: %v", name, m.src, m.dst, err))
			}
		}
	}
	return errs
}

// pinned refuses an image reference without a tag (or digest), or tagged
// latest.
func pinned(image string) error {
	ref, _, digest := strings.Cut(image, "@")
	last := ref[strings.LastIndex(ref, "/")+1:]
	_, tag, tagged := strings.Cut(last, ":")
	switch {
	case image == "":
		return errors.New("no image")
	case strings.Contains(image, "$"):
		return fmt.Errorf("%s: a variable, not a pinned image", image)
	case tagged && tag == "latest":
		return fmt.Errorf("%s: tagged latest: pin a version", image)
	case !tagged && !digest:
		return fmt.Errorf("%s: no tag: pin a version", image)
	case tagged && tag == "":
		return fmt.Errorf("%s: an empty tag", image)
	}
	return nil
}

var argRe = regexp.MustCompile(`\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?`)

// dockerfileImages returns the images a Dockerfile's FROM lines name, with
// its ARG defaults and the build's args substituted; earlier stages
// (FROM build) are left out.
func dockerfileImages(path string, args map[string]string) ([]string, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	vars := map[string]string{}
	stages := map[string]bool{}
	var images []string
	for _, line := range strings.Split(string(raw), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		switch strings.ToUpper(f[0]) {
		case "ARG":
			k, v, _ := strings.Cut(f[1], "=")
			if a, ok := args[k]; ok {
				v = a
			}
			vars[k] = v
		case "FROM":
			img := f[1]
			if strings.HasPrefix(img, "--") && len(f) > 2 { // --platform=...
				img = f[2]
			}
			img = argRe.ReplaceAllStringFunc(img, func(s string) string {
				if v, ok := vars[argRe.FindStringSubmatch(s)[1]]; ok {
					return v
				}
				return s
			})
			if i := slices.Index(f, "AS"); i > 0 && i+1 < len(f) {
				stages[f[i+1]] = true
			} else if i := slices.Index(f, "as"); i > 0 && i+1 < len(f) {
				stages[f[i+1]] = true
			}
			if !stages[img] || strings.Contains(img, ":") {
				images = append(images, img)
			}
		}
	}
	if len(images) == 0 {
		return nil, fmt.Errorf("%s: no FROM", path)
	}
	return images, nil
}

// checkImages lists the images of a resolved compose file, and of the
// Dockerfiles it builds, that are not pinned.
func checkImages(dir string, cfg map[string]any) []error {
	var errs []error
	for name, svc := range services(cfg) {
		if b, ok := buildOf(svc, dir); ok {
			imgs, err := dockerfileImages(b.dockerfile, buildArgs(svc))
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %v", name, err))
			}
			for _, img := range imgs {
				if err := pinned(img); err != nil {
					errs = append(errs, fmt.Errorf("%s: %s FROM %v", name, b.dockerfile, err))
				}
			}
			continue
		}
		if err := pinned(str(svc["image"])); err != nil {
			errs = append(errs, fmt.Errorf("%s: %v", name, err))
		}
	}
	return errs
}

// checkTykTags holds the Tyk gateway's tag to the plugin compiler's: a
// plugin loads only into the gateway version it was compiled for.
func checkTykTags(cfg map[string]any) error {
	tags := map[string]string{}
	for _, svc := range services(cfg) {
		img := str(svc["image"])
		for _, repo := range []string{"tykio/tyk-gateway", "tykio/tyk-plugin-compiler"} {
			if tag, ok := strings.CutPrefix(img, repo+":"); ok {
				tags[repo] = tag
			}
		}
	}
	gw, pc := tags["tykio/tyk-gateway"], tags["tykio/tyk-plugin-compiler"]
	if gw == "" || pc == "" {
		return fmt.Errorf("the Tyk stack needs tykio/tyk-gateway and tykio/tyk-plugin-compiler, has %v", tags)
	}
	if gw != pc {
		return fmt.Errorf("tykio/tyk-gateway:%s but tykio/tyk-plugin-compiler:%s: build the plugin with the gateway's version", gw, pc)
	}
	return nil
}

// mounted is one bffgate config file a stack's service reads.
type mounted struct {
	service string
	kind    string // "tyk", "kong" or "extauthz"
	file    string // on this machine
	env     map[string]string
	configs []bff.Config
}

// bffgateConfigs finds the bffgate config files a resolved stack mounts,
// from where its services are told to read them, and decodes the engine
// configs in them.
func bffgateConfigs(t *testing.T, cfg map[string]any) []mounted {
	t.Helper()
	var out []mounted
	for name, svc := range services(cfg) {
		env := environment(svc)
		m := mounted{service: name, env: env}
		switch {
		case env["BFFGATE_CONFIG"] != "": // Tyk
			m.kind, m.file = "tyk", source(svc, env["BFFGATE_CONFIG"])
		case env["KONG_DECLARATIVE_CONFIG"] != "":
			m.kind, m.file = "kong", source(svc, env["KONG_DECLARATIVE_CONFIG"])
		default:
			cmd, _ := svc["command"].([]any)
			for i, a := range cmd {
				if str(a) == "-config" && i+1 < len(cmd) {
					m.kind, m.file = "extauthz", source(svc, str(cmd[i+1]))
				}
			}
		}
		if m.kind == "" {
			continue
		}
		if m.file == "" {
			t.Fatalf("%s: the %s config it reads is not mounted", name, m.kind)
		}
		raw, err := os.ReadFile(m.file)
		if err != nil {
			t.Fatal(err)
		}
		var engines []json.RawMessage
		switch m.kind {
		case "tyk":
			var f struct {
				APIs []struct {
					Config json.RawMessage `json:"config"`
				} `json:"apis"`
			}
			if err := json.Unmarshal(raw, &f); err != nil {
				t.Fatalf("%s: %v", m.file, err)
			}
			for _, a := range f.APIs {
				engines = append(engines, a.Config)
			}
		case "kong":
			doc, err := yamlJSON(raw)
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range kongPluginConfigs(doc) {
				b, _ := json.Marshal(c)
				engines = append(engines, b)
			}
		case "extauthz":
			c, err := extauthz.Load(m.file)
			if err != nil {
				t.Fatal(err)
			}
			for _, a := range c.Apps {
				m.configs = append(m.configs, a.BFF)
			}
		}
		for _, e := range engines {
			var c bff.Config
			dec := json.NewDecoder(bytes.NewReader(e))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&c); err != nil {
				t.Fatalf("%s: %v", m.file, err)
			}
			m.configs = append(m.configs, c)
		}
		if len(m.configs) == 0 {
			t.Fatalf("%s: no bffgate config in %s", name, m.file)
		}
		out = append(out, m)
	}
	return out
}

// kongPluginConfigs returns the config of every bffgate plugin in a
// decoded kong.yml.
func kongPluginConfigs(v any) []map[string]any {
	var out []map[string]any
	switch v := v.(type) {
	case map[string]any:
		if v["name"] == "bffgate" {
			if c, ok := v["config"].(map[string]any); ok {
				return []map[string]any{c}
			}
		}
		for _, c := range v {
			out = append(out, kongPluginConfigs(c)...)
		}
	case []any:
		for _, c := range v {
			out = append(out, kongPluginConfigs(c)...)
		}
	}
	return out
}

var envRef = regexp.MustCompile(`"env:([A-Za-z_][A-Za-z0-9_]*)"`)

// checkEnv lists the env:NAME secrets of a mounted config that its service
// does not set (and, for Kong, does not pass on to the plugin server).
func checkEnv(m mounted) []error {
	raw, err := os.ReadFile(m.file)
	if err != nil {
		return []error{err}
	}
	var errs []error
	for _, n := range envRef.FindAllStringSubmatch(string(raw), -1) {
		if m.env[n[1]] == "" {
			errs = append(errs, fmt.Errorf("%s: %s uses env:%s, which the service does not set", m.service, m.file, n[1]))
		}
		if m.kind == "kong" && !regexp.MustCompile(`\b`+n[1]+`\b`).MatchString(m.env["KONG_NGINX_MAIN_ENV"]) {
			errs = append(errs, fmt.Errorf("%s: KONG_NGINX_MAIN_ENV does not pass %s on to the plugin server", m.service, n[1]))
		}
	}
	return errs
}

func stackDir(stack string) string { return filepath.Join(".", stack) }

// resolvedJSON caches each stack's resolved file (compose takes a second
// or two per run), as JSON so that every caller gets its own copy.
var (
	resolvedMu   sync.Mutex
	resolvedJSON = map[string][]byte{}
)

// resolved returns a stack's folder and its resolved compose file.
func resolved(t *testing.T, stack string) (string, map[string]any) {
	t.Helper()
	dir, err := filepath.Abs(stackDir(stack))
	if err != nil {
		t.Fatal(err)
	}
	resolvedMu.Lock()
	defer resolvedMu.Unlock()
	raw, ok := resolvedJSON[stack]
	if !ok {
		cfg, err := resolve(t, dir)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ = json.Marshal(cfg)
		resolvedJSON[stack] = raw
	}
	var cfg map[string]any
	if err := json.Unmarshal(raw, &cfg); err != nil {
		t.Fatal(err)
	}
	return dir, cfg
}

// copyCompose copies this folder (without tests) to a temporary folder,
// at the same depth below a stand-in repository root, for mutated copies.
func copyCompose(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	dst := filepath.Join(root, "compose")
	err := filepath.WalkDir(".", func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		target := filepath.Join(dst, p)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(target, b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

func TestComposeFilesResolve(t *testing.T) {
	for _, stack := range stacks {
		t.Run(stack, func(t *testing.T) {
			_, cfg := resolved(t, stack)
			// gateway: the realm's back-channel logout URL names it; the
			// rest are common/services.yml's.
			for _, name := range []string{"gateway", "redis", "keycloak", "echo", "spa", "ready"} {
				if services(cfg)[name] == nil {
					t.Errorf("%s has no %s service", stack, name)
				}
			}
			if ports := containerPorts(services(cfg)["gateway"]); !slices.Equal(ports, []string{"8000"}) {
				t.Errorf("%s's gateway publishes container ports %v, want 8000 (the app's URL, and the port Keycloak calls it on)", stack, ports)
			}
		})
	}
	for _, stack := range []string{"tyk", "kong"} {
		t.Run(stack+" two nodes", func(t *testing.T) {
			dir, _ := resolved(t, stack)
			cfg, err := resolve(t, dir, "two-nodes.yml")
			if err != nil {
				t.Fatal(err)
			}
			for _, err := range append(checkFiles(dir, cfg), checkImages(dir, cfg)...) {
				t.Error(err)
			}
			if err := sameNode(services(cfg)["gateway"], services(cfg)["gateway-2"]); err != nil {
				t.Error(err)
			}
			g2 := services(cfg)["gateway-2"]
			g2["environment"].(map[string]any)["BFF_COOKIE_KEY"] = "another key"
			if sameNode(services(cfg)["gateway"], g2) == nil {
				t.Error("sameNode accepted nodes with different cookie keys")
			}
		})
	}
	t.Run("a broken copy is refused", func(t *testing.T) {
		dir := filepath.Join(copyCompose(t), "kong")
		f := filepath.Join(dir, "docker-compose.yml")
		raw, _ := os.ReadFile(f)
		os.WriteFile(f, bytes.Replace(raw, []byte("    ports:"), []byte("    portz:"), 1), 0o644)
		if _, err := resolve(t, dir); err == nil {
			t.Fatal("compose config accepted a service with an unknown key")
		}
	})
}

func TestReferencedFilesExist(t *testing.T) {
	for _, stack := range stacks {
		t.Run(stack, func(t *testing.T) {
			dir, cfg := resolved(t, stack)
			for _, err := range checkFiles(dir, cfg) {
				t.Error(err)
			}
		})
	}
	t.Run("a missing file is found", func(t *testing.T) {
		dir := filepath.Join(copyCompose(t), "envoy")
		os.Remove(filepath.Join(dir, "envoy.yaml"))
		cfg, err := resolve(t, dir)
		if err != nil {
			t.Fatal(err)
		}
		if errs := checkFiles(dir, cfg); len(errs) != 2 { // envoy.yaml, and the copy has no repository root to build from
			t.Fatalf("checkFiles on a copy without envoy.yaml and Dockerfiles: %v", errs)
		}
	})
}

func TestImagesPinned(t *testing.T) {
	for _, stack := range stacks {
		t.Run(stack, func(t *testing.T) {
			dir, cfg := resolved(t, stack)
			for _, err := range checkImages(dir, cfg) {
				t.Error(err)
			}
			if stack == "tyk" {
				if err := checkTykTags(cfg); err != nil {
					t.Error(err)
				}
			}
		})
	}
	t.Run("refusals", func(t *testing.T) {
		for _, img := range []string{"redis", "redis:latest", "quay.io/keycloak/keycloak", "localhost:5000/x", "kong:${V}", ""} {
			if pinned(img) == nil {
				t.Errorf("pinned(%q) = nil, want an error", img)
			}
		}
		for _, img := range []string{"redis:7.4.2-alpine", "localhost:5000/x:1.0", "x@sha256:abc"} {
			if err := pinned(img); err != nil {
				t.Errorf("pinned(%q) = %v", img, err)
			}
		}
		_, cfg := resolved(t, "tyk")
		services(cfg)["plugin"]["image"] = "tykio/tyk-plugin-compiler:v5.13.0"
		if checkTykTags(cfg) == nil {
			t.Error("checkTykTags accepted a plugin compiler of another version")
		}
		df := filepath.Join(t.TempDir(), "Dockerfile")
		os.WriteFile(df, []byte("ARG BASE=kong\nFROM golang:1.26 AS build\nFROM build\nFROM ${BASE}\n"), 0o644)
		imgs, err := dockerfileImages(df, nil)
		if err != nil || !slices.Equal(imgs, []string{"golang:1.26", "kong"}) {
			t.Errorf("dockerfileImages = %v, %v", imgs, err)
		}
		imgs, _ = dockerfileImages(df, map[string]string{"BASE": "kong:3.9.1"})
		if !slices.Equal(imgs, []string{"golang:1.26", "kong:3.9.1"}) {
			t.Errorf("dockerfileImages with the build's args = %v", imgs)
		}
	})
}

// TestBffgateConfigs loads each config a stack mounts with the service's
// environment and builds its engines: bff.New for every engine config;
// for extauthz, the command's own Load and New. (The Tyk plugin's loader
// and Kong's schema run on the same files in tyk-plugin's and
// kong-plugin's tests: those packages are commands.)
func TestBffgateConfigs(t *testing.T) {
	kinds := map[string]string{"tyk": "tyk", "kong": "kong", "envoy": "extauthz", "nginx": "extauthz"}
	for _, stack := range stacks {
		t.Run(stack, func(t *testing.T) {
			_, cfg := resolved(t, stack)
			ms := bffgateConfigs(t, cfg)
			if len(ms) != 1 || ms[0].kind != kinds[stack] {
				t.Fatalf("%s mounts %d bffgate configs, want one %s config", stack, len(ms), kinds[stack])
			}
			m := ms[0]
			for _, err := range checkEnv(m) {
				t.Error(err)
			}
			for k, v := range m.env {
				t.Setenv(k, v)
			}
			if err := buildEngines(m); err != nil {
				t.Error(err)
			}
		})
	}
	t.Run("refusals", func(t *testing.T) {
		_, cfg := resolved(t, "nginx")
		m := bffgateConfigs(t, cfg)[0]
		for k, v := range m.env {
			t.Setenv(k, v)
		}
		raw, _ := os.ReadFile(m.file)
		bad := filepath.Join(t.TempDir(), "extauthz.json")
		os.WriteFile(bad, bytes.Replace(raw, []byte(`"client_id"`), []byte(`"clientid"`), 1), 0o644)
		if _, err := extauthz.Load(bad); err == nil {
			t.Error("extauthz.Load accepted an unknown field")
		}
		os.WriteFile(bad, bytes.Replace(raw, []byte(`"http://keycloak.`), []byte(`"keycloak.`), 1), 0o644)
		if err := buildEngines(mounted{kind: "extauthz", file: bad}); err == nil {
			t.Error("extauthz.New accepted an issuer that is not a URL")
		}
		t.Setenv("BFF_COOKIE_KEY", "short")
		if err := buildEngines(m); err == nil {
			t.Error("a cookie key that is not 32 bytes was accepted")
		}
		_, cfg = resolved(t, "kong")
		m = bffgateConfigs(t, cfg)[0]
		delete(m.env, "BFF_CLIENT_SECRET")
		m.env["KONG_NGINX_MAIN_ENV"] = "BFF_COOKIE_KEY"
		if errs := checkEnv(m); len(errs) != 4 { // unset and not passed on, in each of kong.yml's two configs
			t.Errorf("checkEnv without BFF_CLIENT_SECRET: %v", errs)
		}
	})
}

// buildEngines builds a mounted config's engines with the command's own
// loader (extauthz) or bff.New, and closes them.
func buildEngines(m mounted) error {
	if m.kind == "extauthz" {
		c, err := extauthz.Load(m.file)
		if err != nil {
			return err
		}
		s, err := extauthz.New(c)
		if err != nil {
			return err
		}
		return s.Close()
	}
	for _, c := range m.configs {
		e, err := bff.New(c)
		if err != nil {
			return fmt.Errorf("%s: %w", m.file, err)
		}
		e.Close()
	}
	return nil
}

// sameNode reports how a second gateway node differs from the first in
// more than its published ports and its dependencies: every node needs the
// same image, config files and secrets (cookie keys above all).
func sameNode(a, b map[string]any) error {
	if a == nil || b == nil {
		return errors.New("no gateway and gateway-2 services")
	}
	strip := func(s map[string]any) string {
		c := map[string]any{}
		for k, v := range s {
			if k != "ports" && k != "depends_on" && k != "container_name" {
				c[k] = v
			}
		}
		j, _ := json.Marshal(c)
		return string(j)
	}
	if x, y := strip(a), strip(b); x != y {
		return fmt.Errorf("gateway-2 is not gateway on another port:\n%s\n%s", x, y)
	}
	if slices.Equal(containerPorts(a), nil) || fmt.Sprint(a["ports"]) == fmt.Sprint(b["ports"]) {
		return errors.New("gateway-2 must publish another host port than gateway")
	}
	return nil
}

// TestReadmeNamesTheVersions holds README.md's versions to the images the
// stacks run.
func TestReadmeNamesTheVersions(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, stack := range stacks {
		_, cfg := resolved(t, stack)
		for _, name := range []string{"gateway", "keycloak", "redis", "plugin"} {
			svc := services(cfg)[name]
			img := str(svc["image"])
			if a := buildArgs(svc)["KONG_IMAGE"]; a != "" {
				img = a
			}
			if img == "" {
				continue
			}
			tag := img[strings.LastIndex(img, ":")+1:]
			tag = strings.TrimSuffix(tag, "-alpine")
			if !bytes.Contains(readme, []byte("`"+tag+"`")) {
				t.Errorf("README.md does not name %s's %s version `%s` (%s)", stack, name, tag, img)
			}
		}
	}
}

// checkKongPluginServer lists what a Kong service's environment lacks of
// the plugin server settings kong-plugin/README.md gives.
func checkKongPluginServer(env map[string]string) []error {
	var errs []error
	if !slices.Contains(strings.Split(env["KONG_PLUGINS"], ","), "bffgate") {
		errs = append(errs, fmt.Errorf("KONG_PLUGINS %q does not load bffgate", env["KONG_PLUGINS"]))
	}
	for k, v := range map[string]string{
		"KONG_PLUGINSERVER_NAMES":             "bffgate",
		"KONG_PLUGINSERVER_BFFGATE_START_CMD": "/usr/local/bin/bffgate",
		"KONG_PLUGINSERVER_BFFGATE_QUERY_CMD": "/usr/local/bin/bffgate -dump",
		"KONG_DATABASE":                       "off",
	} {
		if env[k] != v {
			errs = append(errs, fmt.Errorf("%s=%q, want %q", k, env[k], v))
		}
	}
	return errs
}

func TestKongPluginServerSettings(t *testing.T) {
	_, cfg := resolved(t, "kong")
	env := environment(services(cfg)["gateway"])
	for _, err := range checkKongPluginServer(env) {
		t.Error(err)
	}
	env["KONG_PLUGINS"] = "bundled"
	delete(env, "KONG_PLUGINSERVER_BFFGATE_QUERY_CMD")
	if errs := checkKongPluginServer(env); len(errs) != 2 {
		t.Errorf("without bffgate in KONG_PLUGINS and without the query command: %v", errs)
	}
}
