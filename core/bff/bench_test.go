package bff

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/bffgate/bffgate/core/session"
	"github.com/bffgate/bffgate/core/session/redisstore"
	"github.com/bffgate/bffgate/core/session/redisstore/redistest"
)

// authenticated returns an engine holding one fresh session, and an API
// request that carries its cookie and the CSRF header.
func authenticated(tb testing.TB, c Config) (*Engine, *Request) {
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
	if err := b.sessions.Save(context.Background(), id, s); err != nil {
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

// BenchmarkAPIRequestRedis is the hot path with the Redis store on the
// local server, without and with the read cache; it reports Redis commands
// per request (from the server's own count, so nothing else may use that
// Redis meanwhile).
func BenchmarkAPIRequestRedis(b *testing.B) {
	for _, cacheMS := range []int{0, 1000} {
		b.Run(fmt.Sprintf("cache_ttl_ms=%d", cacheMS), func(b *testing.B) {
			c := validConfig()
			c.Redis = redisstore.Config{URL: redistest.URL(b), KeyPrefix: fmt.Sprintf("bffgate-bench-%d:", time.Now().UnixNano()), CacheTTLMS: cacheMS}
			e, req := authenticated(b, c)
			defer e.Close()
			ctx := context.Background()
			rc := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
			defer rc.Close()
			commands := func() int64 {
				info, err := rc.Info(ctx, "stats").Result()
				if err != nil {
					b.Fatal(err)
				}
				for _, line := range strings.Split(info, "\r\n") {
					if v, ok := strings.CutPrefix(line, "total_commands_processed:"); ok {
						n, _ := strconv.ParseInt(v, 10, 64)
						return n
					}
				}
				b.Fatal("no total_commands_processed in INFO")
				return 0
			}
			b.ReportAllocs()
			before := commands()
			for b.Loop() {
				if res := e.Handle(ctx, req); !res.Forward() {
					b.Fatalf("status %d: %s", res.Status, res.Body)
				}
			}
			// The INFO call that reads the count is itself one command.
			b.ReportMetric(float64(commands()-before-1)/float64(b.N), "redis-cmds/op")
		})
	}
}

// BenchmarkAPIRequestDPoP is the hot path on a route that forwards the
// session's DPoP-bound token with a fresh proof (ES256, RFC 9449 §7):
// beside BenchmarkAPIRequest, the per-request cost of the proof.
func BenchmarkAPIRequestDPoP(b *testing.B) {
	c := validConfig()
	c.DPoP = true
	e, req := authenticated(b, c)
	id, _ := session.ParseID(strings.TrimPrefix(req.Header.Get("Cookie"), "theme=dark; "+c.cookieNameOrDefault()+"="))
	ctx := context.Background()
	s, err := e.sessions.Load(ctx, id, false)
	if err != nil {
		b.Fatal(err)
	}
	raw, _, err := newDPoPKey()
	if err != nil {
		b.Fatal(err)
	}
	s.DPoPKey, s.TokenType = raw, "DPoP"
	if err := e.sessions.Save(ctx, id, s); err != nil {
		b.Fatal(err)
	}
	rt := Route{DPoPURL: "https://api.internal"}
	b.ReportAllocs()
	for b.Loop() {
		res := e.HandleRoute(ctx, req, rt)
		if !res.Forward() || res.Set.Get("Dpop") == "" {
			b.Fatalf("status %d: %s", res.Status, res.Body)
		}
	}
}

// BenchmarkDPoPProof is the proof alone: parsing the session's key and
// signing one proof.
func BenchmarkDPoPProof(b *testing.B) {
	raw, _, err := newDPoPKey()
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		dk, err := parseDPoPKey(raw)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := dk.proof("GET", "https://api.internal/orders", "access-token-0123456789", "", now); err != nil {
			b.Fatal(err)
		}
	}
}
