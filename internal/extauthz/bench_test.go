package extauthz

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// BenchmarkCheck is one subrequest for an authenticated API request, as
// nginx sends it (memory store), answered with the allow: what bffgate
// adds to each request behind the proxy.
func BenchmarkCheck(b *testing.B) {
	f := newFixture(b, nil)
	r := httptest.NewRequest("GET", "http://bffgate.internal"+PathNginx, nil)
	r.RequestURI, r.RemoteAddr, r.Host = PathNginx, "127.0.0.1:40000", "app.example"
	r.Header = http.Header{
		"X-Original-Method": {"GET"}, "X-Original-Uri": {"/api/orders?page=2"},
		"Cookie": {"theme=dark; " + f.cookie}, "X-Csrf": {"1"}, "Accept": {"application/json"},
	}
	b.ReportAllocs()
	for b.Loop() {
		if res := f.s.decide(r); res.Status != http.StatusOK {
			b.Fatalf("status %d: %s", res.Status, res.Body)
		}
	}
}
