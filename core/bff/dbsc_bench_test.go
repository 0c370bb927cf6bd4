package bff

import (
	"context"
	"strings"
	"testing"

	"github.com/bffgate/bffgate/core/session"
)

// BenchmarkAPIRequestDBSC is BenchmarkAPIRequest for a DBSC-registered
// session carrying its bound cookie: the cost of the bound-cookie check.
func BenchmarkAPIRequestDBSC(b *testing.B) {
	c := validConfig()
	c.DBSC.Enabled = true
	e, req := authenticated(b, c)
	v, _ := cookieValue(req.Header, e.cfg.CookieName)
	id, err := session.ParseID(v)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	s, err := e.sessions.Load(ctx, id, false)
	if err != nil {
		b.Fatal(err)
	}
	rec := dbscRecord{id: e.dbscIdentifier(id), alg: "ES256", jwk: `{"kty":"EC"}`}
	s.DBSC = rec.String()
	if err := e.sessions.Save(ctx, id, s); err != nil {
		b.Fatal(err)
	}
	bound, _, _ := strings.Cut(e.boundCookie(id, rec.id), ";")
	req.Header["Cookie"] = []string{req.Header.Get("Cookie") + "; " + bound}
	b.ReportAllocs()
	for b.Loop() {
		if res := e.Handle(ctx, req); !res.Forward() {
			b.Fatalf("status %d: %s", res.Status, res.Body)
		}
	}
}
