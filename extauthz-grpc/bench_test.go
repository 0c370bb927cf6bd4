package extauthzgrpc

import (
	"context"
	"log/slog"
	"net"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc/peer"

	"github.com/bffgate/bffgate/core/bff"
	"github.com/bffgate/bffgate/core/session"
	"github.com/bffgate/bffgate/core/session/memstore"
	"github.com/bffgate/bffgate/internal/extauthz"
)

// BenchmarkCheck is one Check for an authenticated API request, shaped as
// Envoy's filter sends it (memory store, a loopback peer), answered with
// an OkHttpResponse: what bffgate adds to each request behind Envoy, less
// the gRPC transport. internal/extauthz's BenchmarkCheck is the same over
// the HTTP contract.
func BenchmarkCheck(b *testing.B) {
	st := memstore.New(nil)
	s, err := extauthz.New(&extauthz.Config{AccessLog: "off", Apps: []extauthz.App{{BFF: bff.Config{
		Issuer: "http://127.0.0.1:1", ClientID: "c", ClientSecret: "s",
		RedirectURL:     "http://app.example/oauth/callback",
		CookieKeys:      []string{testKey},
		IdentityHeaders: []bff.IdentityHeader{{Header: "X-User", Claim: "sub"}},
		Store:           st,
		Logger:          slog.New(slog.DiscardHandler),
	}}}})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	id, err := session.NewID()
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now()
	m := &session.Manager{Store: st, Idle: time.Hour, Max: time.Hour}
	if err := m.Save(context.Background(), id, &session.Session{
		Issuer: "http://127.0.0.1:1", Subject: "alice", Claims: `{"sub":"alice"}`, Identity: "sub\x00alice\x00",
		IDToken: "h.p.s", AccessToken: "access-token-0123456789", TokenType: "Bearer",
		RefreshToken: "refresh-token", Expiry: now.Add(time.Hour), Created: now,
	}); err != nil {
		b.Fatal(err)
	}
	g := New(s)
	ctx := peer.NewContext(context.Background(), &peer.Peer{Addr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000}})
	req := &authv3.CheckRequest{Attributes: &authv3.AttributeContext{Request: &authv3.AttributeContext_Request{
		Http: &authv3.AttributeContext_HttpRequest{
			Method: "GET", Path: "/api/orders?page=2", Host: "app.example", Scheme: "https", Protocol: "HTTP/1.1",
			Headers: map[string]string{
				":method": "GET", ":path": "/api/orders?page=2", ":authority": "app.example",
				"cookie": "theme=dark; __Host-bffgate=" + id.String(), "x-csrf": "1", "accept": "application/json",
				"user-agent": "bench", "x-request-id": "0123456789abcdef",
			},
		},
	}}}
	b.ReportAllocs()
	for b.Loop() {
		resp, err := g.Check(ctx, req)
		if err != nil || resp.GetOkResponse() == nil {
			b.Fatalf("not an allow: %v %v", err, resp.GetDeniedResponse())
		}
	}
}
