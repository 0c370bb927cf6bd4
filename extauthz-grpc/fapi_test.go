package extauthzgrpc

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/bffgate/bffgate/internal/extauthz"
	"github.com/bffgate/bffgate/tests/flowtest"
	"github.com/bffgate/bffgate/tests/op"
)

// TestRouteResource (RFC 8707) over a real gRPC connection: the app's
// routes that name a resource get, in the OkHttpResponse, a token the
// real OP issued for that resource (its introspected aud); the other
// route's is never sent.
func TestRouteResource(t *testing.T) {
	const a, b = "https://api-a.example", "https://api-b.example"
	e := newEnvWith(t, func(o *op.Options) { o.Resources = []string{a, b} }, func(app *extauthz.App) {
		app.BFF.Resources = []string{a, b}
		app.Routes = []extauthz.Route{{Path: "/a/", Resource: a}, {Path: "/b/", Resource: b}}
	})
	c := op.Browser()
	e.login(c)
	token := func(path string) string {
		t.Helper()
		up := headers(upstream(t, nil, e.check(c, "GET", path, "x-csrf", "1")))
		tok, ok := strings.CutPrefix(up.Get("Authorization"), "Bearer ")
		if !ok || tok == "" {
			t.Fatalf("%s: upstream %v", path, up)
		}
		return tok
	}
	tA, tB := token("/a/orders"), token("/b/orders")
	for _, tc := range []struct{ tok, want string }{{tA, a}, {tB, b}} {
		if got, err := flowtest.Audience(context.Background(), e.op, tc.tok); err != nil || got != tc.want {
			t.Fatalf("aud %q (%v), want %q", got, err, tc.want)
		}
	}
	if tA == tB {
		t.Fatal("two routes got the same token")
	}
}

// TestRouteDPoP (RFC 9449) over a real gRPC connection: the route with
// dpop_url gets "Authorization: DPoP" and a proof for the URL Envoy calls
// (dpop_url joined with the path less strip_prefix), checked as a
// resource server checks it, against the real OP's binding.
func TestRouteDPoP(t *testing.T) {
	e := newEnvWith(t, func(o *op.Options) { o.DPoPBound = true }, func(app *extauthz.App) {
		app.BFF.DPoP = true
		app.Routes = []extauthz.Route{{Path: "/api/", DPoPURL: "https://orders.internal/v1", StripPrefix: "/api"}}
	})
	c := op.Browser()
	e.login(c)
	up := headers(upstream(t, nil, e.check(c, "GET", "/api/orders?page=2", "x-csrf", "1", "dpop", "forged-by-the-client")))
	if _, err := flowtest.CheckDPoP(context.Background(), e.op, up, "GET", "https://orders.internal/v1/orders"); err != nil {
		t.Fatal(err)
	}
}

// headers is what upstream returns as an http.Header.
func headers(up map[string]string) http.Header {
	h := http.Header{}
	for k, v := range up {
		h.Set(k, v)
	}
	return h
}
