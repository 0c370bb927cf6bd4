package serve

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bffgate/bffgate/core/bff"
)

func testConfig(t testing.TB, upstream string) *Config {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "index.html"), []byte("<h1>app</h1>"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "app.js"), []byte("console.log(1)"), 0o644); err != nil {
		t.Fatal(err)
	}
	return &Config{
		BFF: bff.Config{
			Issuer: "http://127.0.0.1:1", ClientID: "c", ClientSecret: "s",
			RedirectURL: "http://127.0.0.1:8080/oauth/callback",
			CookieKeys:  []string{"MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="},
		},
		Routes: []Route{
			{Path: "/api/", Upstream: upstream},
			{Path: "/direct/", Upstream: upstream, Public: true},
		},
		StaticDir: dir,
	}
}

func TestRouting(t *testing.T) {
	var seen *http.Request
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = r.Clone(r.Context())
		io.WriteString(w, "upstream")
	}))
	defer up.Close()
	p, err := New(testConfig(t, up.URL))
	if err != nil {
		t.Fatal(err)
	}
	h := p.Handler
	do := func(method, path, cookie string) (int, string) {
		req := httptest.NewRequest(method, path, nil)
		if cookie != "" {
			req.Header.Set("Cookie", cookie)
		}
		req.Header.Set("X-CSRF", "1")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec.Code, rec.Body.String()
	}
	tests := []struct {
		name, method, path, cookie string
		wantStatus                 int
		wantBody                   string
	}{
		{"protected route without session", "GET", "/api/x", "", 401, `"unauthenticated"`},
		{"BFF endpoint", "GET", "/session", "", 401, `"authenticated":false`},
		{"static file", "GET", "/app.js", "", 200, "console.log(1)"},
		{"SPA fallback", "GET", "/some/client/route", "", 200, "<h1>app</h1>"},
		{"root", "GET", "/", "", 200, "<h1>app</h1>"},
		{"POST to static", "POST", "/x", "", 404, `"not_found"`},
		{"public route", "GET", "/direct/x", "a=1; __Host-bffgate=secret; b=2", 200, "upstream"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := do(tt.method, tt.path, tt.cookie)
			if status != tt.wantStatus || !strings.Contains(body, tt.wantBody) {
				t.Fatalf("%s %s = %d %q, want %d containing %q", tt.method, tt.path, status, body, tt.wantStatus, tt.wantBody)
			}
		})
	}
	if seen == nil || seen.URL.Path != "/direct/x" {
		t.Fatalf("public route did not reach the upstream: %v", seen)
	}
	if ck := seen.Header.Get("Cookie"); ck != "a=1; b=2" {
		t.Fatalf("public route sent Cookie %q upstream, want the session cookie removed", ck)
	}
}

func TestLoadStrict(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "c.json")
	os.WriteFile(file, []byte(`{"bff":{"isuer":"typo"}}`), 0o644)
	if _, err := Load(file); err == nil || !strings.Contains(err.Error(), "isuer") {
		t.Fatalf("Load with an unknown field: %v, want an error naming it", err)
	}
	os.WriteFile(file, []byte(`{"static_dir":"dist","routes":[{"path":"/","upstream":"http://x"}]}`), 0o644)
	c, err := Load(file)
	if err != nil || c.StaticDir != filepath.Join(dir, "dist") {
		t.Fatalf("Load = %+v, %v; want static_dir relative to the file", c, err)
	}
}

func TestNewRejects(t *testing.T) {
	for _, tt := range []struct {
		name string
		edit func(c *Config)
		want string
	}{
		{"bad upstream", func(c *Config) { c.Routes[0].Upstream = "ftp://x" }, "routes[0].upstream"},
		{"bad path", func(c *Config) { c.Routes[1].Path = "api" }, "routes[1].path"},
		{"no routes", func(c *Config) { c.Routes, c.StaticDir = nil, "" }, "routes"},
		{"missing static dir", func(c *Config) { c.StaticDir = "/nonexistent-dir" }, "static_dir"},
		{"bad bff config", func(c *Config) { c.BFF.ClientID = "" }, "client_id"},
		{"unconfigured resource", func(c *Config) { c.Routes[0].Resource = "https://api.example" }, "routes[0].resource"},
		{"dpop without bff.dpop", func(c *Config) { c.Routes[0].DPoP = true }, "routes[0].dpop"},
		{"public with a resource", func(c *Config) {
			c.BFF.Resources = []string{"https://api.example"}
			c.Routes[1].Resource = "https://api.example"
		}, "routes[1].public"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := testConfig(t, "http://127.0.0.1:1")
			tt.edit(c)
			if _, err := New(c); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("New error = %v, want one naming %s", err, tt.want)
			}
		})
	}
}
