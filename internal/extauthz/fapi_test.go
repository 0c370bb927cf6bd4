package extauthz

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
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

// fapiApp is bffgate extauthz with one app against a real OP started
// with opts, logged in as alice through bffgate's own paths (the proxy
// routes them to it). It returns the server and the session cookie.
func fapiApp(t *testing.T, opts op.Options, bc func(*bff.Config), routes []Route) (*op.Server, *Server, string) {
	t.Helper()
	var authz *httptest.Server
	var srv *Server
	authz = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { srv.ServeHTTP(w, r) }))
	t.Cleanup(authz.Close)
	opts.RedirectURIs, opts.Stderr = []string{authz.URL + "/oauth/callback"}, io.Discard
	o := op.StartT(t, opts)
	cfg := bff.Config{
		Issuer: o.Issuer, ClientID: o.ClientID, ClientSecret: o.ClientSecret,
		RedirectURL: authz.URL + "/oauth/callback",
		CookieKeys:  []string{testKey},
		Logger:      slog.New(slog.DiscardHandler),
	}
	bc(&cfg)
	var err error
	if srv, err = New(&Config{AccessLog: "off", Apps: []App{{BFF: cfg, Routes: routes}}}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	c := op.Browser()
	resp, err := c.Get(authz.URL + "/login")
	if err != nil || resp.StatusCode != http.StatusFound {
		t.Fatalf("/login: %v %v", resp, err)
	}
	resp.Body.Close()
	cb, err := o.Login(context.Background(), c, resp.Header.Get("Location"), op.AliceUser, op.AlicePassword)
	if err != nil {
		t.Fatal(err)
	}
	if resp, err = c.Get(cb.String()); err != nil || resp.StatusCode != http.StatusFound {
		t.Fatalf("callback: %v %v", resp, err)
	}
	resp.Body.Close()
	u, _ := url.Parse(authz.URL)
	for _, ck := range c.Jar.Cookies(u) {
		if ck.Name == "__Host-bffgate" {
			return o, srv, ck.Name + "=" + ck.Value
		}
	}
	t.Fatal("no session cookie after the callback")
	return nil, nil, ""
}

// TestRouteResource (RFC 8707): an app's routes that name a resource get
// a token the real OP issued for it (its introspected aud), on the
// forward-auth contract and on Check (the gRPC server's path); no route
// gets another's, and a path no route names gets the session's own.
func TestRouteResource(t *testing.T) {
	o, srv, cookie := fapiApp(t, op.Options{Resources: []string{resourceA, resourceB}},
		func(c *bff.Config) { c.Resources = []string{resourceA, resourceB} },
		[]Route{{Path: "/a/", Resource: resourceA}, {Path: "/b/", Resource: resourceB}})
	f := &fixture{s: srv, cookie: cookie}
	forward := func(path string) string {
		t.Helper()
		w := f.check("GET", PathForward, "X-Forwarded-Method", "GET", "X-Forwarded-Uri", path, "X-Forwarded-Host", "app.example",
			"Cookie", cookie, "X-Csrf", "1")
		if w.Code != http.StatusOK {
			t.Fatalf("forward auth for %s: %d %s", path, w.Code, w.Body.Bytes())
		}
		return strings.TrimPrefix(w.Header().Get("Authorization"), "Bearer ")
	}
	check := func(path string) string {
		t.Helper()
		res := srv.Check(context.Background(), "GET", path, "app.example", http.Header{"Cookie": {cookie}, "X-Csrf": {"1"}}, nil)
		if !res.Forward() {
			t.Fatalf("Check for %s: %d %s", path, res.Status, res.Body)
		}
		return strings.TrimPrefix(http.Header(res.Set).Get("Authorization"), "Bearer ")
	}
	tA, tB, tPlain := forward("/a/orders"), check("/b/orders"), forward("/other/x")
	for _, tc := range []struct{ name, tok, want string }{{"A", tA, resourceA}, {"B", tB, resourceB}} {
		if got, err := flowtest.Audience(context.Background(), o, tc.tok); err != nil || got != tc.want {
			t.Fatalf("route %s's token: aud %q (%v), want %q", tc.name, got, err, tc.want)
		}
	}
	if tA == tB || tA == tPlain || tB == tPlain || tA == "" {
		t.Fatal("two routes got the same token")
	}
	if check("/a/orders") != tA || forward("/b/orders") != tB {
		t.Fatal("the contracts disagree on a route's token")
	}
}

// TestRouteDPoP (RFC 9449): a route with dpop_url gets the DPoP-bound
// token as "Authorization: DPoP" with a proof for the URL the proxy
// calls (dpop_url joined with the path less strip_prefix), checked as a
// resource server checks it, on Check and on forward auth.
func TestRouteDPoP(t *testing.T) {
	o, srv, cookie := fapiApp(t, op.Options{DPoPBound: true},
		func(c *bff.Config) { c.DPoP = true },
		[]Route{{Path: "/api/", DPoPURL: "https://orders.internal/v1", StripPrefix: "/api"}})
	res := srv.Check(context.Background(), "POST", "/api/orders?page=2", "app.example",
		http.Header{"Cookie": {cookie}, "X-Csrf": {"1"}, "Dpop": {"forged-by-the-client"}}, strings.NewReader("{}"))
	if !res.Forward() {
		t.Fatalf("Check: %d %s", res.Status, res.Body)
	}
	if _, err := flowtest.CheckDPoP(context.Background(), o, http.Header(res.Set), "POST", "https://orders.internal/v1/orders"); err != nil {
		t.Fatal(err)
	}
	f := &fixture{s: srv, cookie: cookie}
	w := f.check("GET", PathForward, "X-Forwarded-Method", "GET", "X-Forwarded-Uri", "/api/orders", "X-Forwarded-Host", "app.example",
		"Cookie", cookie, "X-Csrf", "1")
	if w.Code != http.StatusOK {
		t.Fatalf("forward auth: %d %s", w.Code, w.Body.Bytes())
	}
	if _, err := flowtest.CheckDPoP(context.Background(), o, w.Header(), "GET", "https://orders.internal/v1/orders"); err != nil {
		t.Fatalf("forward auth: %v", err)
	}
}

// TestRouteConfigRefused: a route naming a resource the app's bff does
// not list, or DPoP proofs without bff.dpop, is refused at start naming
// the route's field; dpop in token-mediating mode is refused by the
// engine, naming bff's dpop.
func TestRouteConfigRefused(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*bff.Config)
		rt   Route
		want string
	}{
		{"unknown resource", func(c *bff.Config) { c.Resources = []string{resourceA} }, Route{Path: "/b/", Resource: resourceB}, "routes[0].resource"},
		{"dpop_url without dpop", func(*bff.Config) {}, Route{Path: "/api/", DPoPURL: "https://orders.internal"}, "routes[0].dpop_url"},
		{"dpop_url not a URL", func(c *bff.Config) { c.DPoP = true }, Route{Path: "/api/", DPoPURL: "orders.internal"}, "routes[0].dpop_url"},
		{"dpop in token-mediating mode", func(c *bff.Config) { c.DPoP, c.Mode = true, bff.ModeTokenMediating }, Route{Path: "/api/", DPoPURL: "https://orders.internal"}, "config: dpop:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := testBFF(nil)
			tc.edit(&c)
			_, err := New(&Config{Apps: []App{{BFF: c, Routes: []Route{tc.rt}}}})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("%v, want an error naming %s", err, tc.want)
			}
		})
	}
}
