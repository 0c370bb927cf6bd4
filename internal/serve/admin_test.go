package serve

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/bffgate/bffgate/core/bff"
	"github.com/bffgate/bffgate/internal/metrics"
	"github.com/bffgate/bffgate/tests/op"
)

func TestAdmin(t *testing.T) {
	o := op.StartT(t, op.Options{RedirectURIs: []string{"http://127.0.0.1:8080/oauth/callback"}, Stderr: io.Discard})
	newAdmin := func(issuer string) http.Handler {
		b, err := bff.New(bff.Config{Issuer: issuer, ClientID: o.ClientID, ClientSecret: o.ClientSecret,
			RedirectURL: "http://127.0.0.1:8080/oauth/callback", CookieKeys: []string{"MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="}})
		if err != nil {
			t.Fatal(err)
		}
		return AdminHandler(b.Ready, metrics.New().Handler())
	}
	get := func(h http.Handler, path string) (int, string) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		return rec.Code, rec.Body.String()
	}
	up := newAdmin(o.Issuer)
	down := newAdmin("http://127.0.0.1:1") // no provider there
	for _, tt := range []struct {
		h          http.Handler
		path       string
		wantStatus int
		wantBody   string
	}{
		{up, "/healthz", 200, `"ok"`},
		{up, "/readyz", 200, `"ready"`},
		{down, "/healthz", 200, `"ok"`},
		{down, "/readyz", 503, "provider"},
		{up, "/metrics", 200, "go_goroutines"},
		{up, "/", 404, ""},
	} {
		if status, body := get(tt.h, tt.path); status != tt.wantStatus || !strings.Contains(body, tt.wantBody) {
			t.Errorf("GET %s = %d %q, want %d containing %q", tt.path, status, body, tt.wantStatus, tt.wantBody)
		}
	}
}

// TestAdminListener: with admin_listen, Serve answers health and metrics
// there, apart from the app, and the metrics count the app's requests.
func TestAdminListener(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "up") }))
	defer up.Close()
	c := testConfig(t, up.URL)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c.AdminListen = l.Addr().String()
	l.Close()
	app := startServe(t, c)
	get := func(u string) (int, string) {
		req, _ := http.NewRequest("GET", u, nil)
		req.Header.Set("X-CSRF", "1")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if status, _ := get("http://" + app + "/api/x"); status != http.StatusUnauthorized {
		t.Fatalf("app /api/x: %d", status)
	}
	if status, _ := get("http://" + app + "/direct/x"); status != http.StatusOK {
		t.Fatalf("app /direct/x: %d", status)
	}
	admin := "http://" + c.AdminListen
	eventually := func(path, want string) {
		for range 50 {
			if status, body := get(admin + path); status == 200 && strings.Contains(body, want) {
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
		t.Fatalf("admin %s never had %q", path, want)
	}
	eventually("/healthz", `"ok"`)
	eventually("/metrics", `bffgate_requests_total{kind="api",outcome="unauthenticated"} 1`)
	eventually("/metrics", `bffgate_upstream_request_duration_seconds_count{route="/direct/"} 1`)
	if status, _ := get(admin + "/api/x"); status != http.StatusNotFound {
		t.Fatalf("the admin listener serves app routes: %d", status)
	}
}
