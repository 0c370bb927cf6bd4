package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/bffgate/bffgate/core/bff"
	"github.com/bffgate/bffgate/tyk-plugin/tykhost"
)

// These tests run the adapter's own logic in this package's test binary;
// the loaded .so and the flow against a real provider are in tykhost.

func testConfig() bff.Config {
	return bff.Config{
		Issuer:       "https://idp.example.com",
		ClientID:     "spa",
		ClientSecret: "secret",
		RedirectURL:  "https://app.example.com/app/oauth/callback",
		CookieKeys:   []string{"MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="},
	}
}

func TestMatch(t *testing.T) {
	apis := []API{
		{ListenPath: "/", Config: testConfig()},
		{ListenPath: "/app/", Config: testConfig()},
		{ListenPath: "/app/v2/", Config: testConfig()},
		{ListenPath: "/app/", Host: "Tenant.Example.com", Config: testConfig()},
		{ListenPath: "/ported/", Host: "api.example.com:8443", Config: testConfig()},
		{ListenPath: "/v6/", Host: "[::1]", Config: testConfig()},
	}
	a, err := build(File{APIs: apis})
	if err != nil {
		t.Fatal(err)
	}
	// Which API took the request, by its engine.
	engines := map[*bff.Engine]int{}
	for _, x := range *a {
		for j, api := range apis {
			if x.prefix == strings.TrimSuffix(api.ListenPath, "/") && x.host == strings.ToLower(api.Host) {
				engines[x.engine] = j
			}
		}
	}
	for _, tt := range []struct {
		host, path string
		want       int // index in apis; -1: none
	}{
		{"app.example.com", "/app/login", 1},
		{"app.example.com", "/app", 1},
		{"app.example.com", "/apple", 0},
		{"app.example.com", "/app/v2/x", 2},
		{"app.example.com", "/app/v2", 2},
		{"app.example.com", "/app/v22", 1},
		{"tenant.example.com", "/app/x", 3},
		{"TENANT.example.com:8080", "/app/x", 3},
		{"tenant.example.com", "/app/v2/x", 2}, // the longer listen path wins
		{"tenant.example.com", "/other", 0},
		{"api.example.com:8443", "/ported/x", 4},
		{"api.example.com", "/ported/x", 0},
		{"api.example.com:9000", "/ported/x", 0},
		{"[::1]:8080", "/v6/x", 5},
		{"[::1]", "/v6/x", 5},
		{"[::2]:8080", "/v6/x", 0},
	} {
		b := a.match(tt.host, tt.path)
		got := -1
		if b != nil {
			got = engines[b]
		}
		if got != tt.want {
			t.Errorf("match(%q, %q) = apis[%d], want apis[%d]", tt.host, tt.path, got, tt.want)
		}
	}

	none, err := build(File{APIs: []API{{ListenPath: "/app/", Config: testConfig()}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"/", "/ap", "/apple", "/other/app/x"} {
		if none.match("h", p) != nil {
			t.Errorf("match(%q) found an API, want none", p)
		}
	}
}

func TestPathPrefixDefault(t *testing.T) {
	for _, tt := range []struct {
		listen, prefix, login string
		wantErr               string
	}{
		{listen: "/app/", login: "/app/login"},
		{listen: "/app", login: "/app/login"},
		{listen: "/", login: "/login"},
		{listen: "/app/", prefix: "/app", login: "/app/login"},
		{listen: "/app/", prefix: "/app/bff", login: "/app/bff/login"},
		{listen: "/app/", prefix: "/other", wantErr: "outside listen_path"},
		{listen: "/app/", prefix: "/apple", wantErr: "outside listen_path"},
		{listen: "/app/", prefix: "/app/", wantErr: "path_prefix"}, // the core refuses a trailing /
		{listen: "app/", wantErr: "listen_path"},
		{listen: "/users/{id}/", wantErr: "listen_path"},
	} {
		cfg := testConfig()
		cfg.PathPrefix = tt.prefix
		a, err := build(File{APIs: []API{{ListenPath: tt.listen, Config: cfg}}})
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("listen %q prefix %q: err = %v, want one about %s", tt.listen, tt.prefix, err, tt.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("listen %q prefix %q: %v", tt.listen, tt.prefix, err)
			continue
		}
		if b := a.match("h", tt.login); b == nil || !b.Owns(tt.login) {
			t.Errorf("listen %q prefix %q: %s is not the login endpoint", tt.listen, tt.prefix, tt.login)
		}
	}
}

func TestBuildRefuses(t *testing.T) {
	for _, tt := range []struct {
		name    string
		apis    []API
		wantErr string
	}{
		{"none", nil, `"apis" is empty`},
		{"duplicate", []API{{ListenPath: "/app/", Config: testConfig()}, {ListenPath: "/app", Config: testConfig()}}, "apis[1]: apis[0] has the same listen_path"},
		{"duplicate host", []API{{ListenPath: "/app/", Host: "a.example", Config: testConfig()}, {ListenPath: "/app/", Host: "A.example", Config: testConfig()}}, "same listen_path and host"},
		{"engine error names the API", []API{{ListenPath: "/app/", Config: bff.Config{}}}, `apis[0] (listen_path "/app/"): bffgate: config: issuer`},
		{"unknown resource", []API{{ListenPath: "/app/", Config: withRoute(testConfig(), bff.Route{Resource: "https://api-b.example"}, func(c *bff.Config) { c.Resources = []string{"https://api-a.example"} })}}, `apis[0] (listen_path "/app/"): bffgate: config: route.resource: "https://api-b.example" is not one of resources`},
		{"dpop_url without dpop", []API{{ListenPath: "/app/", Config: withRoute(testConfig(), bff.Route{DPoPURL: "https://api.internal"}, nil)}}, `apis[0] (listen_path "/app/"): bffgate: config: route.dpop_url: needs dpop on`},
		{"dpop in token-mediating mode", []API{{ListenPath: "/app/", Config: withRoute(testConfig(), bff.Route{DPoPURL: "https://api.internal"}, func(c *bff.Config) { c.DPoP, c.Mode = true, bff.ModeTokenMediating })}}, `bffgate: config: dpop: cannot go with mode "token-mediating"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := build(File{APIs: tt.apis})
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
	// The same listen path on two hosts is two APIs.
	if _, err := build(File{APIs: []API{{ListenPath: "/app/", Host: "a.example", Config: testConfig()}, {ListenPath: "/app/", Host: "b.example", Config: testConfig()}}}); err != nil {
		t.Fatal(err)
	}
}

// withRoute is c with config.route rt, edited by edit.
func withRoute(c bff.Config, rt bff.Route, edit func(*bff.Config)) bff.Config {
	c.Route = rt
	if edit != nil {
		edit(&c)
	}
	return c
}

func TestLoadFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("good.json", `{"apis": [{"listen_path": "/app/", "config": {
		"issuer": "https://idp.example.com", "client_id": "spa", "client_secret": "env:TYK_PLUGIN_TEST_SECRET",
		"redirect_url": "https://app.example.com/app/oauth/callback",
		"cookie_keys": ["MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="]}}]}`)
	t.Setenv("TYK_PLUGIN_TEST_SECRET", "from-the-environment")
	for _, tt := range []struct {
		name, path, wantErr string
	}{
		{"good", good, ""},
		{"unset", "", "TYK_PLUGIN_TEST_CONFIG is not set"},
		{"missing", filepath.Join(dir, "nope.json"), "no such file"},
		{"two values", write("two.json", `{"apis": []} {}`), "more than one JSON value"},
		{"unknown field", write("typo.json", `{"apis": [], "api": []}`), `unknown field "api"`},
		{"unknown field in an API", write("typo-api.json", `{"apis": [{"listen_path": "/app/", "config": {}},
			{"listen_path": "/tm/", "config": {"issuer_url": "https://idp.example.com"}}]}`), `apis[1] (listen_path "/tm/"): not a valid API entry`},
		{"unknown field beside config", write("typo-entry.json", `{"apis": [{"listen_path": "/app/", "listenPath": "/x/"}]}`), `apis[0] (listen_path "/app/")`},
		{"wrong type in an API without a listen path", write("type.json", `{"apis": [{"config": {"refresh_skew": "30s"}}]}`), `apis[0]: not a valid API entry`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("TYK_PLUGIN_TEST_CONFIG", tt.path)
			a, err := loadFile("TYK_PLUGIN_TEST_CONFIG")
			if tt.wantErr == "" {
				if err != nil || a.match("app.example.com", "/app/login") == nil {
					t.Fatalf("loadFile = %v, %v", a, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

// TestHookInProcess runs BFFGate in this process (not through the .so):
// with a config in place it answers the engine's endpoints and edits the
// headers of API requests it lets through.
func TestHookInProcess(t *testing.T) {
	// loadAPIs reads BFFGATE_CONFIG once per process; this is the only test
	// of this package that calls the hook.
	path := filepath.Join(t.TempDir(), "bffgate.json")
	if err := os.WriteFile(path, []byte(`{"apis": [{"listen_path": "/app/", "config": {
		"issuer": "https://idp.example.com", "client_id": "spa", "client_secret": "secret",
		"redirect_url": "https://app.example.com/app/oauth/callback",
		"cookie_keys": ["MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="]}}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv(configEnv, path)

	for _, tt := range []struct {
		path, code string
		status     int
	}{
		{"/app/api/x", "unauthenticated", http.StatusUnauthorized},
		{"/app/token", "not_found", http.StatusNotFound},
		{"/elsewhere", "bffgate_no_api", http.StatusInternalServerError},
	} {
		req := httptest.NewRequest("GET", "https://app.example.com"+tt.path, nil)
		req.Header.Set("X-CSRF", "1")
		rec := httptest.NewRecorder()
		BFFGate(rec, req)
		if rec.Code != tt.status || !strings.Contains(rec.Body.String(), `"error":"`+tt.code+`"`) {
			t.Errorf("%s: %d %s, want %d %s", tt.path, rec.Code, rec.Body, tt.status, tt.code)
		}
		if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
			t.Errorf("%s: Content-Type %q", tt.path, ct)
		}
	}
}

// TestComposeStack checks the Tyk compose stack (compose/tyk) short of
// running it: its bffgate.json loads as the gateway loads it, with the
// stack's secrets, and its API definitions, read as Tyk's file loader reads
// app_path (tykhost.LoadAppPath), hook every path with the plugin from the
// middleware path of tyk.conf: BFFGatePublic for the SPA at /, BFFGate for
// the API and for each of the BFF's endpoints (the routing is tykhost's,
// Tyk's longest listen path; the hooks stand-ins that say who they are).
func TestComposeStack(t *testing.T) {
	dir := filepath.Join("..", "compose", "tyk")
	t.Setenv("BFF_CLIENT_SECRET", "s3cret")
	t.Setenv("BFF_COOKIE_KEY", "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=")
	t.Setenv("BFFGATE_COMPOSE_CONFIG", filepath.Join(dir, "bffgate.json"))
	a, err := loadFile("BFFGATE_COMPOSE_CONFIG")
	if err != nil {
		t.Fatal(err)
	}
	var conf struct {
		MiddlewarePath string `json:"middleware_path"`
		AppPath        string `json:"app_path"`
	}
	raw, err := os.ReadFile(filepath.Join(dir, "tyk.conf"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &conf); err != nil {
		t.Fatal(err)
	}
	so := conf.MiddlewarePath + "/bffgate.so"
	var f File
	raw, err = os.ReadFile(filepath.Join(dir, "bffgate.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &f); err != nil || len(f.APIs) != 1 {
		t.Fatalf("bffgate.json: %d APIs, %v; want the one entry of a same-origin SPA", len(f.APIs), err)
	}
	want := map[string]string{"/": "BFFGatePublic", "/assets/index.js": "BFFGatePublic", "/api/whoami": "BFFGate"}
	p := f.APIs[0].Config.WithDefaults().Paths
	for _, path := range []string{p.Login, p.Callback, p.Session, p.Token, p.Logout, p.LogoutCallback, p.BackchannelLogout} {
		want[path] = "BFFGate"
	}
	apps := filepath.Join(dir, "apps")
	for _, err := range composeHooks(apps, so, a, want) {
		t.Error(err)
	}
	t.Run("a mutated copy is refused", func(t *testing.T) {
		cp := t.TempDir()
		files, _ := filepath.Glob(filepath.Join(apps, "*.json"))
		for _, file := range files {
			b, _ := os.ReadFile(file)
			if filepath.Base(file) == "spa.json" {
				b = []byte(strings.Replace(string(b), `"BFFGatePublic"`, `"BFFGate"`, 1))
			}
			os.WriteFile(filepath.Join(cp, filepath.Base(file)), b, 0o644)
		}
		if errs := composeHooks(cp, so, a, want); len(errs) != 2 {
			t.Errorf("with BFFGate on the SPA's API: %v, want / and /assets/ refused", errs)
		}
		if errs := composeHooks(apps, "/opt/tyk-gateway/plugins/bffgate.so", a, want); len(errs) != 1 {
			t.Errorf("with another middleware path: %v", errs)
		}
	})
	if conf.AppPath != "/opt/tyk-gateway/apps" {
		t.Errorf("tyk.conf's app_path %q is not where docker-compose.yml mounts apps/", conf.AppPath)
	}
}

// composeHooks loads the API definitions in appsDir as Tyk's file loader
// does, with stand-in hooks from the plugin at so, and lists the paths of
// want that are not hooked by the hook want names.
func composeHooks(appsDir, so string, a *apis, want map[string]string) []error {
	var errs []error
	apis, err := tykhost.LoadAppPath(appsDir, func(path, symbol string) (tykhost.Hook, error) {
		if path != so {
			return nil, fmt.Errorf("a hook from %s, want %s (tyk.conf's middleware_path)", path, so)
		}
		if symbol != "BFFGate" && symbol != "BFFGatePublic" {
			return nil, fmt.Errorf("no hook %s in bffgate.so", symbol)
		}
		return func(w http.ResponseWriter, r *http.Request) {
			if a.match(r.Host, r.URL.Path) == nil {
				errs = append(errs, fmt.Errorf("%s: no entry of bffgate.json for this API", r.URL.Path))
			}
			w.Header().Set("X-Hook", symbol)
			w.WriteHeader(http.StatusNoContent)
		}, nil
	})
	if err != nil {
		return []error{err}
	}
	gw := tykhost.New(apis...)
	paths := make([]string, 0, len(want))
	for path := range want {
		paths = append(paths, path)
	}
	sort.Strings(paths)
	for _, path := range paths {
		rec := httptest.NewRecorder()
		gw.ServeHTTP(rec, httptest.NewRequest("GET", "http://localhost:8000"+path, nil))
		if got := rec.Header().Get("X-Hook"); got != want[path] {
			errs = append(errs, fmt.Errorf("GET %s: hook %q (%d), want %s", path, got, rec.Code, want[path]))
		}
	}
	return errs
}
