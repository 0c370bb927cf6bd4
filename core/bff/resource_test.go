package bff_test

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bffgate/bffgate/core/bff"
	"github.com/bffgate/bffgate/tests/op"
)

const (
	resourceA = "https://api-a.example"
	resourceB = "https://api-b.example"
)

// tokenRecorder is an upstream that records the bearer tokens it got.
type tokenRecorder struct {
	mu     sync.Mutex // guards tokens
	tokens []string
}

func (u *tokenRecorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	u.mu.Lock()
	u.tokens = append(u.tokens, strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer "))
	u.mu.Unlock()
	w.Write([]byte(`{"ok":true}`))
}

func (u *tokenRecorder) last(t *testing.T) string {
	t.Helper()
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(u.tokens) == 0 {
		t.Fatal("the upstream got no request")
	}
	return u.tokens[len(u.tokens)-1]
}

func (u *tokenRecorder) all() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]string{}, u.tokens...)
}

// audOf is the audience introspection shows for a token.
func audOf(t *testing.T, s *op.Server, tok string) string {
	t.Helper()
	in, err := s.Introspect(context.Background(), tok)
	if err != nil {
		t.Fatal(err)
	}
	switch aud := in["aud"].(type) {
	case string:
		return aud
	case []any:
		if len(aud) == 1 {
			a, _ := aud[0].(string)
			return a
		}
	}
	return ""
}

// TestResourceIndicators (RFC 8707): routes for two APIs each get a token
// for their own resource, got with the refresh token and kept in the
// session, and the session's own token goes to the route that names none;
// no route ever gets another's token.
func TestResourceIndicators(t *testing.T) {
	e := newEnvOP(t, func(o *op.Options) { o.Resources = []string{resourceA, resourceB} },
		func(c *bff.Config, _ *op.Server) { c.Resources = []string{resourceA, resourceB} })
	ups := map[string]*tokenRecorder{"/a/": {}, "/b/": {}, "/plain/": {}}
	routes := map[string]bff.Route{"/a/": {Resource: resourceA}, "/b/": {Resource: resourceB}, "/plain/": {}}
	for prefix, rt := range routes {
		if err := e.eng.CheckRoute("routes["+prefix+"]", rt); err != nil {
			t.Fatal(err)
		}
	}
	e.handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for prefix, up := range ups {
			if strings.HasPrefix(r.URL.Path, prefix) {
				res := e.eng.HandleHTTPRoute(r, routes[prefix])
				if !res.Forward() {
					res.Write(w)
					return
				}
				res.ApplyTo(r.Header)
				up.ServeHTTP(w, r)
				return
			}
		}
		e.eng.Middleware(http.NotFoundHandler()).ServeHTTP(w, r)
	})
	c := e.browser()
	e.login(c, op.AliceUser, op.AlicePassword)
	get := func(path string) {
		t.Helper()
		if r := e.do(c, "GET", path, "X-CSRF", "1"); r.Status != http.StatusOK {
			t.Fatalf("GET %s: %d %s", path, r.Status, r.Body)
		}
	}
	before := e.grants(op.GrantRefreshToken)
	get("/a/orders")
	get("/b/orders")
	get("/plain/orders")
	if n := e.grants(op.GrantRefreshToken) - before; n != 2 {
		t.Fatalf("%d refresh grants for two resources, want 2", n)
	}
	tA, tB, tMain := ups["/a/"].last(t), ups["/b/"].last(t), ups["/plain/"].last(t)
	if got := audOf(t, e.op, tA); got != resourceA {
		t.Fatalf("route A's token has aud %q, want %q", got, resourceA)
	}
	if got := audOf(t, e.op, tB); got != resourceB {
		t.Fatalf("route B's token has aud %q, want %q", got, resourceB)
	}
	if s := e.sessionOf(c); tMain != s.AccessToken || tA == tMain || tB == tMain || tA == tB {
		t.Fatal("the plain route did not get the session's own token, or two routes got the same token")
	}
	// Kept: the next calls ask the provider for nothing.
	before = e.grants(op.GrantRefreshToken)
	get("/a/orders")
	get("/b/orders")
	if n := e.grants(op.GrantRefreshToken) - before; n != 0 || ups["/a/"].last(t) != tA {
		t.Fatalf("%d refresh grants for kept tokens, want 0", n)
	}
	// Near expiry, the session's token and A's are both renewed.
	e.clock.Advance(45 * time.Second)
	get("/a/orders")
	if ups["/a/"].last(t) == tA {
		t.Fatal("route A still gets the old token after it neared expiry")
	}
	get("/b/orders")
	get("/plain/orders")
	// No token any route got was ever sent to another route.
	seen := map[string]string{}
	for prefix, up := range ups {
		for _, tok := range up.all() {
			if other, dup := seen[tok]; dup && other != prefix {
				t.Fatalf("a token went to both %s and %s", other, prefix)
			}
			seen[tok] = prefix
		}
	}
	for _, tok := range ups["/b/"].all() {
		if got := audOf(t, e.op, tok); got != resourceB {
			t.Fatalf("route B got a token for %q", got)
		}
	}
	if err := e.eng.CheckRoute("routes[3]", bff.Route{Resource: "https://api-c.example"}); err == nil || !strings.Contains(err.Error(), "routes[3].resource") {
		t.Fatalf("a route naming an unconfigured resource: %v, want an error naming routes[3].resource", err)
	}
}
