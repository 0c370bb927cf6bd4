package bff

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/bffgate/bffgate/core/session"
)

// authenticated returns an engine holding one fresh session, and an API
// request that carries its cookie and the CSRF header.
func authenticated(tb testing.TB, c Config) (*BFF, *Request) {
	tb.Helper()
	b := mustNew(tb, c)
	id, err := session.NewID()
	if err != nil {
		tb.Fatal(err)
	}
	now := b.now()
	s := &session.Session{
		Issuer: c.Issuer, Subject: "alice", SID: "op-sid", Claims: `{"sub":"alice","name":"Alice"}`, Identity: "sub\x00alice\x00name\x00Alice\x00",
		IDToken: "header.payload.signature", AccessToken: "access-token-0123456789", TokenType: "Bearer",
		RefreshToken: "refresh-token", Scope: "openid profile", Expiry: now.Add(time.Hour), Created: now,
	}
	if err := b.save(context.Background(), id, s); err != nil {
		tb.Fatal(err)
	}
	req := &Request{
		Method: "GET", Host: "app.example", Path: "/api/orders", RawQuery: "page=2",
		Header: http.Header{
			"Cookie":     {"theme=dark; " + c.cookieNameOrDefault() + "=" + id.String()},
			"X-Csrf":     {"1"},
			"Accept":     {"application/json"},
			"User-Agent": {"bench"},
		},
	}
	return b, req
}

func (c Config) cookieNameOrDefault() string { return c.withDefaults().CookieName }

// BenchmarkAPIRequest is the hot path: an authenticated API request with
// the memory store, from Request to the upstream header edits.
func BenchmarkAPIRequest(b *testing.B) {
	e, req := authenticated(b, validConfig())
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		res := e.Handle(ctx, req)
		if !res.Forward() {
			b.Fatalf("status %d: %s", res.Status, res.Body)
		}
	}
}

// BenchmarkAPIRequestIdentityHeaders adds two identity headers from claims.
func BenchmarkAPIRequestIdentityHeaders(b *testing.B) {
	c := validConfig()
	c.IdentityHeaders = []IdentityHeader{{Header: "X-User", Claim: "sub"}, {Header: "X-Name", Claim: "name"}}
	e, req := authenticated(b, c)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if res := e.Handle(ctx, req); !res.Forward() {
			b.Fatalf("status %d: %s", res.Status, res.Body)
		}
	}
}
