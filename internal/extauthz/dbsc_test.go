package extauthz

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/bffgate/bffgate/core/session"
	"github.com/bffgate/bffgate/core/session/memstore"
)

// TestDBSC: with dbsc on, its endpoints are answered when routed to
// bffgate directly and refused (404) through an auth subrequest, which
// would read their 200 as an allow; a DBSC-registered session without its
// bound cookie is denied through the subrequest like an ended one.
func TestDBSC(t *testing.T) {
	st := memstore.New(nil)
	c := &Config{Apps: []App{{BFF: testBFF(st)}}}
	c.Apps[0].BFF.DBSC.Enabled = true
	s, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	id, err := session.NewID()
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	m := &session.Manager{Store: st, Idle: time.Hour, Max: time.Hour}
	err = m.Save(context.Background(), id, &session.Session{
		Issuer: "http://127.0.0.1:1", Subject: "alice", AccessToken: "access-token-0123456789", TokenType: "Bearer",
		Expiry: now.Add(time.Hour), Created: now,
		DBSC: "registered\x00ES256\x00{}", // as the registration endpoint keeps it
	})
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{s: s, cookie: "__Host-bffgate=" + id.String()}

	w := f.check("POST", "/dbsc/refresh", "Host", "app.example", "Sec-Secure-Session-Id", "x")
	if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), `"continue":false`) {
		t.Fatalf("direct POST /dbsc/refresh = %d %s", w.Code, w.Body)
	}
	for _, p := range []string{"/dbsc/register", "/dbsc/refresh"} {
		wantDenied(t, f.check("GET", PathNginx, "X-Original-Method", "POST", "X-Original-URI", p, "Host", "app.example", "Cookie", f.cookie), http.StatusNotFound, "not_found")
		wantDenied(t, f.check("POST", PathEnvoy+p, "Host", "app.example", "Cookie", f.cookie), http.StatusNotFound, "not_found")
	}
	wantDenied(t, f.check("GET", PathNginx, "X-Original-Method", "GET", "X-Original-URI", "/api/x", "Host", "app.example", "Cookie", f.cookie, "X-Csrf", "1"),
		http.StatusUnauthorized, "dbsc_refresh_required")
}
