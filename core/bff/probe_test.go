package bff

import (
	"context"
	"errors"
	"io"
	"testing"

	"github.com/bffgate/bffgate/tests/op"
)

// ProbeClient against the real test OP: its client's credentials are
// accepted, a wrong secret is rejected, an unreachable provider is an
// error of its own.
func TestProbeClient(t *testing.T) {
	o := op.StartT(t, op.Options{RedirectURIs: []string{"http://127.0.0.1:8080/oauth/callback"}, Stderr: io.Discard})
	probe := func(issuer, secret string) error {
		b, err := New(Config{Issuer: issuer, ClientID: o.ClientID, ClientSecret: secret,
			RedirectURL: "http://127.0.0.1:8080/oauth/callback", CookieKeys: []string{"MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="}})
		if err != nil {
			t.Fatal(err)
		}
		return b.ProbeClient(context.Background())
	}
	if err := probe(o.Issuer, o.ClientSecret); err != nil {
		t.Errorf("the right secret: %v, want accepted", err)
	}
	if err := probe(o.Issuer, "wrong-secret"); !errors.Is(err, ErrClientRejected) {
		t.Errorf("a wrong secret: %v, want ErrClientRejected", err)
	}
	if err := probe("http://127.0.0.1:1", o.ClientSecret); !errors.Is(err, ErrDiscoveryFailed) {
		t.Errorf("no provider: %v, want a discovery error", err)
	}
}
