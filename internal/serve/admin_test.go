package serve

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

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
		return AdminHandler(b, metrics.New().Handler())
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
