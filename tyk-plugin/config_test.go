package main

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bffgate/bffgate/core/bff"
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
