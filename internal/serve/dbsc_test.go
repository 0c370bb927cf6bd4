package serve

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestDBSCRoutes: with dbsc on, serve hands its endpoints to the engine,
// even under a route for "/" or a public route, and the bound cookie
// never reaches an upstream. The whole protocol through serve's handler
// runs in Chromium in tests/browser/dbsc_test.go.
func TestDBSCRoutes(t *testing.T) {
	var seen *http.Request
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = r.Clone(r.Context())
		io.WriteString(w, "upstream")
	}))
	defer up.Close()
	c := testConfig(t, up.URL)
	c.BFF.DBSC.Enabled = true
	c.Routes = append(c.Routes, Route{Path: "/", Upstream: up.URL, Public: true})
	p, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Engine.Close()
	for _, path := range []string{"/dbsc/register", "/dbsc/refresh"} {
		rec := httptest.NewRecorder()
		p.Handler.ServeHTTP(rec, httptest.NewRequest("POST", path, nil))
		if seen != nil || rec.Header().Get("Content-Type") != "application/json" {
			t.Fatalf("POST %s went upstream or was not the engine's: %d %q", path, rec.Code, rec.Body)
		}
	}
	req := httptest.NewRequest("GET", "/direct/x", nil)
	req.Header.Set("Cookie", "a=1; __Host-bffgate-bound=v; b=2")
	p.Handler.ServeHTTP(httptest.NewRecorder(), req)
	if seen == nil || strings.Contains(seen.Header.Get("Cookie"), "bound") {
		t.Fatalf("the bound cookie reached the upstream: %v", seen)
	}
}
