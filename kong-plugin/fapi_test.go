package main

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/bffgate/bffgate/core/bff"
	"github.com/bffgate/bffgate/tests/flowtest"
	"github.com/bffgate/bffgate/tests/op"
)

const (
	resourceA = "https://api-a.example"
	resourceB = "https://api-b.example"
)

// fapiConfig is a plugin instance's config against srv with the given
// route (config.route); instances that differ only in route share an
// engine.
func fapiConfig(srv *op.Server, edit func(*Config), rt bff.Route) *Config {
	c := &Config{
		Issuer:       srv.Issuer,
		ClientID:     srv.ClientID,
		ClientSecret: srv.ClientSecret,
		RedirectURL:  appOrigin + "/oauth/callback",
		CookieKeys:   []string{cookieKey},
		Route:        rt,
	}
	if edit != nil {
		edit(c)
	}
	return c
}

// fapiLogin logs alice in through the instance via, at srv.
func fapiLogin(t *testing.T, srv *op.Server, b *browser, via *Config) {
	t.Helper()
	b.trip = harness(via)
	a := b.do("GET", "/login")
	if a.status != http.StatusFound {
		t.Fatalf("/login: %d %s", a.status, a.body)
	}
	cb, err := srv.Login(context.Background(), b.http, a.header.Get("Location"), op.AliceUser, op.AlicePassword)
	if err != nil {
		t.Fatal(err)
	}
	if a := b.do("GET", cb.String()); a.status != http.StatusFound {
		t.Fatalf("callback: %d %s", a.status, a.body)
	}
}

// TestRouteResource (RFC 8707): the plugin on two routes that differ only
// in config.route.resource shares one engine, and each route's requests
// go upstream with a token the real OP issued for that route's resource
// (its introspected aud), never the other's; a route without one gets the
// session's own token.
func TestRouteResource(t *testing.T) {
	srv := op.StartT(t, op.Options{RedirectURIs: []string{appOrigin + "/oauth/callback"}, Resources: []string{resourceA, resourceB}, Stderr: io.Discard})
	res := func(c *Config) { c.Resources = []string{resourceA, resourceB} }
	a, b, plain := fapiConfig(srv, res, bff.Route{Resource: resourceA}), fapiConfig(srv, res, bff.Route{Resource: resourceB}), fapiConfig(srv, res, bff.Route{})
	if engines.forConfig(a) != engines.forConfig(b) || engines.forConfig(a) != engines.forConfig(plain) {
		t.Fatal("routes that differ only in route got different engines: their sessions are not shared")
	}
	br := newBrowser(t, harness(plain))
	fapiLogin(t, srv, br, plain)
	token := func(via *Config) string {
		t.Helper()
		br.trip = harness(via)
		ans := br.do("GET", "/api/orders", "X-CSRF", "1")
		if ans.exited {
			t.Fatalf("API request: %d %s", ans.status, ans.body)
		}
		tok, ok := strings.CutPrefix(ans.upstream.Get("Authorization"), "Bearer ")
		if !ok || tok == "" {
			t.Fatalf("upstream Authorization %q", ans.upstream.Get("Authorization"))
		}
		return tok
	}
	tA, tB, tPlain := token(a), token(b), token(plain)
	for _, tc := range []struct{ name, tok, want string }{{"A", tA, resourceA}, {"B", tB, resourceB}} {
		got, err := flowtest.Audience(context.Background(), srv, tc.tok)
		if err != nil || got != tc.want {
			t.Fatalf("route %s's token: aud %q (%v), want %q", tc.name, got, err, tc.want)
		}
	}
	if tA == tB || tA == tPlain || tB == tPlain {
		t.Fatal("two routes got the same token")
	}
	if again := token(a); again != tA {
		t.Fatal("route A's kept token was not reused")
	}
}

// TestRouteDPoP (RFC 9449): a route with config.route.dpop_url forwards
// the session's DPoP-bound token as "Authorization: DPoP" with a proof
// for the URL Kong calls: dpop_url joined with the path less strip_prefix
// (Kong's strip_path), checked as a resource server checks it, against
// the real OP's binding.
func TestRouteDPoP(t *testing.T) {
	srv := op.StartT(t, op.Options{RedirectURIs: []string{appOrigin + "/oauth/callback"}, DPoPBound: true, Stderr: io.Discard})
	dpop := func(c *Config) { c.DPoP = true }
	route := fapiConfig(srv, dpop, bff.Route{DPoPURL: "https://orders.internal/v1/", StripPrefix: "/api"})
	br := newBrowser(t, harness(route))
	fapiLogin(t, srv, br, route)
	for _, method := range []string{"GET", "POST"} {
		ans := br.do(method, "/api/orders?page=2", "X-CSRF", "1", "DPoP", "forged-by-the-client")
		if ans.exited {
			t.Fatalf("%s: %d %s", method, ans.status, ans.body)
		}
		if _, err := flowtest.CheckDPoP(context.Background(), srv, ans.upstream, method, "https://orders.internal/v1/orders"); err != nil {
			t.Fatalf("%s: %v", method, err)
		}
	}
}

// TestRouteConfigRefused: a route naming a resource the engine does not
// have, or DPoP proofs without the engine's dpop, is answered 500
// bffgate_config_invalid naming the field, and nothing goes upstream;
// dpop in token-mediating mode is refused by the engine itself.
func TestRouteConfigRefused(t *testing.T) {
	srv := provider(t)
	for _, tc := range []struct {
		name  string
		edit  func(*Config)
		rt    bff.Route
		field string
	}{
		{"unknown resource", func(c *Config) { c.Resources = []string{resourceA} }, bff.Route{Resource: resourceB}, "route.resource"},
		{"dpop_url without dpop", nil, bff.Route{DPoPURL: "https://orders.internal"}, "route.dpop_url"},
		{"strip_prefix alone", nil, bff.Route{StripPrefix: "/api"}, "route.strip_prefix"},
		{"dpop in token-mediating mode", func(c *Config) { c.DPoP, c.Mode = true, bff.ModeTokenMediating }, bff.Route{DPoPURL: "https://orders.internal"}, "dpop"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := fapiConfig(srv, tc.edit, tc.rt)
			a := newBrowser(t, harness(c)).do("GET", "/api/orders", "X-CSRF", "1")
			a.wantError(t, http.StatusInternalServerError, "bffgate_config_invalid")
			if desc, _ := a.json(t)["error_description"].(string); !strings.Contains(desc, " at "+tc.field+";") {
				t.Fatalf("config error %q, want it to name %s", desc, tc.field)
			}
		})
	}
}
