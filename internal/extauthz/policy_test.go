package extauthz

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/bffgate/bffgate/core/bff"
	"github.com/bffgate/bffgate/core/session"
	"github.com/bffgate/bffgate/core/session/memstore"
)

// TestRoutePolicies: an app's routes carry policies to the engine, on the
// forward-auth contract and on Check (gRPC); the longest path wins. The
// engine's own check runs against the real OP in core/bff; here the
// session is saved directly, with the ID token claims the OP would give.
func TestRoutePolicies(t *testing.T) {
	st := memstore.New(nil)
	s, err := New(&Config{Apps: []App{{BFF: testBFF(st), Routes: []Route{
		{Path: "/api/admin/", Policy: bff.Policy{Claims: []bff.ClaimRule{{Claim: "groups", Values: []string{"admin"}}}}},
		{Path: "/api/admin/mfa/", Policy: bff.Policy{ACRValues: []string{"urn:example:mfa"}}},
	}}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	id, _ := session.NewID()
	now := time.Now()
	m := &session.Manager{Store: st, Idle: time.Hour, Max: time.Hour}
	if err := m.Save(context.Background(), id, &session.Session{
		Issuer: "http://127.0.0.1:1", Subject: "bob", AccessToken: "access-token-0123456789", TokenType: "Bearer",
		Expiry: now.Add(time.Hour), Created: now, TokenClaims: `{"acr":"urn:example:mfa","groups":["staff"]}`,
	}); err != nil {
		t.Fatal(err)
	}
	f := &fixture{s: s, cookie: "__Host-bffgate=" + id.String()}
	forward := func(uri string) *httptest.ResponseRecorder {
		return f.check("GET", PathForward, "X-Forwarded-Method", "GET", "X-Forwarded-Uri", uri, "X-Forwarded-Host", "app.example",
			"Cookie", f.cookie, "X-Csrf", "1")
	}
	if w := forward("/api/x"); w.Code != http.StatusOK {
		t.Fatalf("no route policy: %d %s", w.Code, w.Body.Bytes())
	}
	wantDenied(t, forward("/api/admin/users"), http.StatusForbidden, "insufficient_scope")
	// /api/admin/mfa/ is the longest match: its policy alone (acr), which bob meets.
	if w := forward("/api/admin/mfa/x"); w.Code != http.StatusOK {
		t.Fatalf("longest route: %d %s", w.Code, w.Body.Bytes())
	}
	res := s.Check(context.Background(), "GET", "/api/admin/users", "app.example", http.Header{"Cookie": {f.cookie}, "X-Csrf": {"1"}}, nil)
	if res.Forward() || res.Status != http.StatusForbidden {
		t.Fatalf("Check on the admin route: %d %s, want 403", res.Status, res.Body)
	}

	for _, tt := range []struct {
		rt   Route
		want string
	}{
		{Route{Path: "api/"}, "routes[0].path"},
		{Route{Path: "/a/../b/"}, "routes[0].path"},
		{Route{Path: "/a/", Policy: bff.Policy{Scopes: []string{""}}}, "routes[0].policy.scopes[0]"},
	} {
		_, err := New(&Config{Apps: []App{{BFF: testBFF(nil), Routes: []Route{tt.rt}}}})
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("route %+v: %v, want an error naming %s", tt.rt, err, tt.want)
		}
	}
}
