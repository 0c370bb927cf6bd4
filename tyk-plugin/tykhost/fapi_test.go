package tykhost_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/bffgate/bffgate/tests/flowtest"
)

const (
	resourceA = "https://api-a.example"
	resourceB = "https://api-b.example"
	// dpopURL is /dp/'s config.route.dpop_url: where Tyk sends the listen
	// path (its target_url, with strip_listen_path).
	dpopURL = "https://orders.internal/v1"
)

// TestTykRouteResource (RFC 8707): the /ra/ and /rb/ APIs' configs name
// resources A and B. Through the real bffgate.so, against the real OP,
// each API's upstream gets a token issued for its own resource (its
// introspected aud), not the session's own token nor the other's.
func TestTykRouteResource(t *testing.T) {
	token := func(prefix string) string {
		t.Helper()
		c := browser()
		login(t, c, prefix)
		if r := do(t, c, "GET", prefix+"/api/orders", "X-CSRF", "1"); r.Status != http.StatusOK {
			t.Fatalf("%s/api/orders: %d %s", prefix, r.Status, r.Body)
		}
		tok, ok := strings.CutPrefix(up.Last(t).Header.Get("Authorization"), "Bearer ")
		if !ok || tok == "" {
			t.Fatalf("%s: upstream Authorization %q", prefix, up.Last(t).Header.Get("Authorization"))
		}
		return tok
	}
	tA, tB := token("/ra"), token("/rb")
	for _, tc := range []struct{ api, tok, want string }{{"/ra/", tA, resourceA}, {"/rb/", tB, resourceB}} {
		if got, err := flowtest.Audience(context.Background(), opSrv, tc.tok); err != nil || got != tc.want {
			t.Fatalf("%s's token: aud %q (%v), want %q", tc.api, got, err, tc.want)
		}
	}
	if tA == tB {
		t.Fatal("two APIs got the same token")
	}
}

// TestTykRouteDPoP (RFC 9449): the /dp/ API's config has dpop on and
// route.dpop_url; its upstream gets "Authorization: DPoP" and a proof
// for the URL Tyk calls — dpop_url joined with the path less the listen
// path — checked as a resource server checks it, against the real OP's
// binding. A DPoP header the client sent is not what goes upstream.
func TestTykRouteDPoP(t *testing.T) {
	c := browser()
	login(t, c, "/dp")
	for _, method := range []string{"GET", "POST"} {
		if r := do(t, c, method, "/dp/api/orders?page=2", "X-CSRF", "1", "DPoP", "forged-by-the-client"); r.Status != http.StatusOK {
			t.Fatalf("%s /dp/api/orders: %d %s", method, r.Status, r.Body)
		}
		last := up.Last(t)
		if last.URL.Path != "/api/orders" {
			t.Fatalf("Tyk sent %s upstream, want /api/orders (listen path stripped)", last.URL.Path)
		}
		if _, err := flowtest.CheckDPoP(context.Background(), opSrv, last.Header, method, dpopURL+"/api/orders"); err != nil {
			t.Fatalf("%s: %v", method, err)
		}
	}
}
