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

// realm is what checkRealm reads of a Keycloak realm export.
type realm struct {
	Realm               string        `json:"realm"`
	AccessTokenLifespan int           `json:"accessTokenLifespan"`
	RevokeRefreshToken  bool          `json:"revokeRefreshToken"`
	Clients             []realmClient `json:"clients"`
	Users               []struct {
		Username    string `json:"username"`
		Enabled     bool   `json:"enabled"`
		Credentials []struct {
			Type  string `json:"type"`
			Value string `json:"value"`
		} `json:"credentials"`
	} `json:"users"`
}

// realmClient is a client of the realm export.
type realmClient struct {
	ClientID     string            `json:"clientId"`
	PublicClient bool              `json:"publicClient"`
	Secret       string            `json:"secret"`
	StandardFlow bool              `json:"standardFlowEnabled"`
	RedirectURIs []string          `json:"redirectUris"`
	Attributes   map[string]string `json:"attributes"`
}

// checkRealm lists what the realm lacks for a stack's bffgate config: its
// issuer (the Keycloak service's hostname and the realm), a confidential
// client with the config's secret and PKCE S256 required, the redirect and
// post-logout URIs, a back-channel logout URL at the stack's gateway, two
// users, a short access-token lifetime and refresh-token rotation.
func checkRealm(r realm, cfg map[string]any, c bff.Config, clientSecret string) []error {
	var errs []error
	kc := services(cfg)["keycloak"]
	if issuer := environment(kc)["KC_HOSTNAME"] + "/realms/" + r.Realm; c.Issuer != issuer {
		errs = append(errs, fmt.Errorf("issuer %s, but Keycloak's is %s", c.Issuer, issuer))
	}
	i := slices.IndexFunc(r.Clients, func(x realmClient) bool {
		return x.ClientID == c.ClientID
	})
	if i < 0 {
		return append(errs, fmt.Errorf("the realm has no client %q", c.ClientID))
	}
	cl := r.Clients[i]
	if cl.PublicClient || !cl.StandardFlow {
		errs = append(errs, fmt.Errorf("client %s: want a confidential client with the code flow", cl.ClientID))
	}
	if cl.Secret != clientSecret {
		errs = append(errs, fmt.Errorf("client %s: its secret is not the stack's BFF_CLIENT_SECRET", cl.ClientID))
	}
	if cl.Attributes["pkce.code.challenge.method"] != "S256" {
		errs = append(errs, fmt.Errorf("client %s: PKCE S256 is not required", cl.ClientID))
	}
	if !slices.Contains(cl.RedirectURIs, c.RedirectURL) {
		errs = append(errs, fmt.Errorf("client %s: redirect_url %s is not a redirect URI", cl.ClientID, c.RedirectURL))
	}
	if c.PostLogoutRedirectURL == "" || !slices.Contains(strings.Split(cl.Attributes["post.logout.redirect.uris"], "##"), c.PostLogoutRedirectURL) {
		errs = append(errs, fmt.Errorf("client %s: post_logout_redirect_url %q is not a post-logout redirect URI", cl.ClientID, c.PostLogoutRedirectURL))
	}
	// The back-channel URL names the gateway service and a port it
	// listens on inside the stack, and bffgate's path.
	bc := cl.Attributes["backchannel.logout.url"]
	path := c.WithDefaults().Paths.BackchannelLogout
	if host, port, ok := strings.Cut(strings.TrimSuffix(strings.TrimPrefix(bc, "http://"), path), ":"); !ok || !strings.HasSuffix(bc, path) || services(cfg)[host] == nil || !slices.Contains(containerPorts(services(cfg)[host]), port) {
		errs = append(errs, fmt.Errorf("client %s: back-channel logout URL %q is not http://<gateway service>:<its port>%s", cl.ClientID, bc, path))
	}
	if cl.Attributes["backchannel.logout.session.required"] != "true" {
		errs = append(errs, fmt.Errorf("client %s: the back-channel logout token must carry sid", cl.ClientID))
	}
	if len(r.Users) != 2 {
		errs = append(errs, fmt.Errorf("the realm has %d users, want 2", len(r.Users)))
	}
	if r.AccessTokenLifespan <= 0 || r.AccessTokenLifespan > 300 {
		errs = append(errs, fmt.Errorf("accessTokenLifespan %d: keep it short (≤ 300 s) so that the demo shows refreshes", r.AccessTokenLifespan))
	}
	if !r.RevokeRefreshToken {
		errs = append(errs, errors.New("revokeRefreshToken is off: refresh tokens are not rotated"))
	}
	return errs
}

// containerPorts are the ports a service publishes, inside the container
// (the gateway's listen port; other services of the stack reach it there).
func containerPorts(svc map[string]any) []string {
	var out []string
	ports, _ := svc["ports"].([]any)
	for _, p := range ports {
		switch p := p.(type) {
		case map[string]any:
			out = append(out, fmt.Sprint(p["target"]))
		case string:
			out = append(out, p[strings.LastIndex(p, ":")+1:])
		}
	}
	return out
}

func loadRealm(t *testing.T, cfg map[string]any) realm {
	t.Helper()
	file := source(services(cfg)["keycloak"], "/opt/keycloak/data/import/realm.json")
	if file == "" {
		t.Fatal("keycloak does not mount a realm at /opt/keycloak/data/import/realm.json")
	}
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var r realm
	if err := json.Unmarshal(raw, &r); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	return r
}

func TestRealmDeclaresTheConfigsURIs(t *testing.T) {
	for _, stack := range stacks {
		t.Run(stack, func(t *testing.T) {
			_, cfg := resolved(t, stack)
			if !slices.Contains(services(cfg)["keycloak"]["command"].([]any), any("--import-realm")) {
				t.Error("keycloak does not import the realm at start (--import-realm)")
			}
			r := loadRealm(t, cfg)
			m := bffgateConfigs(t, cfg)[0]
			for _, c := range m.configs {
				for _, err := range checkRealm(r, cfg, c, m.env["BFF_CLIENT_SECRET"]) {
					t.Error(err)
				}
			}
		})
	}
	t.Run("refusals", func(t *testing.T) {
		_, cfg := resolved(t, "tyk")
		m := bffgateConfigs(t, cfg)[0]
		for _, tt := range []struct {
			name string
			edit func(*realm, *bff.Config)
			want int
		}{
			{"as it is", func(*realm, *bff.Config) {}, 0},
			{"other redirect", func(_ *realm, c *bff.Config) { c.RedirectURL = "http://localhost:9999/oauth/callback" }, 1},
			{"other post-logout", func(_ *realm, c *bff.Config) { c.PostLogoutRedirectURL = "http://localhost:8000/bye" }, 1},
			{"other issuer", func(_ *realm, c *bff.Config) { c.Issuer = "http://localhost:8180/realms/bffgate" }, 1},
			{"no client", func(_ *realm, c *bff.Config) { c.ClientID = "nobody" }, 1},
			{"public client without PKCE", func(r *realm, _ *bff.Config) {
				r.Clients[0].PublicClient = true
				delete(r.Clients[0].Attributes, "pkce.code.challenge.method")
			}, 2},
			{"back-channel at another host", func(r *realm, _ *bff.Config) {
				r.Clients[0].Attributes["backchannel.logout.url"] = "http://kong:8000/backchannel-logout"
			}, 1},
			{"no rotation, long tokens, one user", func(r *realm, _ *bff.Config) {
				r.RevokeRefreshToken, r.AccessTokenLifespan, r.Users = false, 3600, r.Users[:1]
			}, 3},
		} {
			t.Run(tt.name, func(t *testing.T) {
				r := loadRealm(t, cfg)
				c := m.configs[0]
				tt.edit(&r, &c)
				if errs := checkRealm(r, cfg, c, m.env["BFF_CLIENT_SECRET"]); len(errs) != tt.want {
					t.Fatalf("checkRealm: %d errors %v, want %d", len(errs), errs, tt.want)
				}
			})
		}
	})
}

// nginxTest runs `nginx -t` on a server block as the stack's nginx would
// load it (from the image's http block, with ${VAR}s of its templates
// replaced from env). nginx resolves upstream names when it loads a
// config, and the stack's service names resolve only inside the stack:
// the copy checked names 127.0.0.1 in their place (proxy_pass
// http://echo:9000 → http://127.0.0.1:9000). A temporary prefix holds the
// pid, log and temp files.
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

// goDockerfiles are the Dockerfiles the stacks build Go commands with (the
// Kong plugin's has its own test in kong-plugin): the module folder the
// build runs in, relative to the repository root, and the package built.
var goDockerfiles = []struct{ dockerfile, module, pkg string }{
	{"cmd/bffgate/Dockerfile", ".", "./cmd/bffgate"},
	{"extauthz-grpc/Dockerfile", "extauthz-grpc", "./cmd/bffgate-extauthz"},
	{"compose/common/echo/Dockerfile", ".", "./compose/common/echo"},
}

// copiedDirs returns the sources of the COPY lines of a Dockerfile's first
// stage (relative to the build context) that land at the same path below
// its WORKDIR, /src; a glob counts as its folder.
func copiedDirs(dockerfile string) []string {
	var out []string
	stages := 0
	for _, line := range strings.Split(dockerfile, "\n") {
		f := strings.Fields(line)
		if len(f) < 3 || strings.HasPrefix(f[0], "#") {
			if len(f) > 0 && strings.ToUpper(f[0]) == "FROM" {
				stages++
			}
			continue
		}
		switch strings.ToUpper(f[0]) {
		case "FROM":
			stages++
		case "COPY":
			if stages != 1 || strings.HasPrefix(f[1], "--") {
				continue
			}
			dst := filepath.Clean(f[len(f)-1])
			for _, src := range f[1 : len(f)-1] {
				if strings.ContainsAny(src, "*?") {
					src = filepath.Dir(src)
				}
				src = filepath.Clean(src)
				// A folder's contents land in dst; a file (go.mod) in it.
				file := strings.Contains(filepath.Base(src), ".")
				if dst == src || (file && dst == filepath.Dir(src)) {
					out = append(out, src)
				}
			}
		}
	}
	return out
}

// notCopied lists the folders of need that no source of copied holds.
func notCopied(copied, need []string) []string {
	var missing []string
	for _, n := range need {
		if !slices.ContainsFunc(copied, func(c string) bool { return n == c || strings.HasPrefix(n, c+"/") }) {
			missing = append(missing, n)
		}
	}
	return missing
}

// TestDockerfilesCopyWhatTheBuildReads: no Docker daemon runs here, so
// the stacks' Go images are never built here. What can be checked is that
// each build stage copies the go.mod files and the folder of every package
// of this repository that `go list -deps` says the command is built from.
func TestDockerfilesCopyWhatTheBuildReads(t *testing.T) {
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	// Every Go build of the stacks is in goDockerfiles.
	for _, stack := range stacks {
		dir, cfg := resolved(t, stack)
		for name, svc := range services(cfg) {
			b, ok := buildOf(svc, dir)
			if !ok {
				continue
			}
			rel, _ := filepath.Rel(root, b.dockerfile)
			raw, _ := os.ReadFile(b.dockerfile)
			if bytes.Contains(raw, []byte("go build")) && rel != "kong-plugin/Dockerfile" &&
				!slices.ContainsFunc(goDockerfiles, func(d struct{ dockerfile, module, pkg string }) bool { return d.dockerfile == rel }) {
				t.Errorf("%s/%s builds Go with %s: add it to goDockerfiles", stack, name, rel)
			}
		}
	}
	for _, d := range goDockerfiles {
		t.Run(d.dockerfile, func(t *testing.T) {
			raw, err := os.ReadFile(filepath.Join(root, d.dockerfile))
			if err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.Dir}}{{end}}", d.pkg)
			cmd.Dir = filepath.Join(root, d.module)
			cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("go list -deps %s: %v", d.pkg, err)
			}
			need := []string{filepath.Join(d.module, "go.mod")}
			for _, dir := range strings.Fields(string(out)) {
				if rel, err := filepath.Rel(root, dir); err == nil && !strings.HasPrefix(rel, "..") {
					need = append(need, rel)
				}
			}
			if len(need) < 2 {
				t.Fatalf("go list -deps %s found no package of this repository", d.pkg)
			}
			copied := copiedDirs(string(raw))
			if missing := notCopied(copied, need); len(missing) > 0 {
				t.Errorf("%s's build stage does not copy %v, which the build of %s reads", d.dockerfile, missing, d.pkg)
			}
			// The check itself: without the COPY of the command's own
			// folder, the build would fail.
			if len(notCopied(copied[:len(copied)-1], need)) == 0 {
				t.Errorf("%s: the check still passes without its last COPY line (%s)", d.dockerfile, copied[len(copied)-1])
			}
		})
	}
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
