package main

import (
	"strings"
	"testing"

	"github.com/bffgate/bffgate/core/bff"
)

// The attacks of issue #11 through the Kong plugin (harness, in-process): the
// engine sees the request URI Kong got, before Kong's own path handling.

func TestKongPathTricksRefused(t *testing.T) {
	cfg, _ := newConfig(t, func(c *Config) { c.PublicPaths = []string{"/public/"} })
	b := newBrowser(t, harness(cfg))
	b.login("/")
	for _, p := range []string{
		"/public/../api/secret", "/public/%2e%2e/api/secret", "/public%2f..%2fapi",
		"/public/..;/api/secret", "/api/%252e%252e/x",
	} {
		a := b.do("GET", p, "X-CSRF", "1")
		a.wantError(t, 400, "invalid_path")
	}
}

func TestKongPublicAndLookalikes(t *testing.T) {
	cfg, _ := newConfig(t, func(c *Config) {
		c.PublicPaths = []string{"/public/"}
		c.IdentityHeaders = []bff.IdentityHeader{{Header: "X-User", Claim: "sub"}}
	})
	b := newBrowser(t, harness(cfg))
	b.login("/")
	// D2: a public path gets no session cookie, no bearer, no forged
	// identity header.
	a := b.do("GET", "/public/app.js", "X-User", "admin", "X_User", "admin")
	if a.exited {
		t.Fatalf("public path answered %d %s", a.status, a.body)
	}
	for name, v := range a.upstream {
		if strings.EqualFold(strings.ReplaceAll(name, "_", "-"), "X-User") || strings.EqualFold(name, "Authorization") || strings.Contains(strings.Join(v, ";"), "__Host-bffgate") {
			t.Errorf("public path forwarded %s: %q", name, v)
		}
	}
	// D3: look-alikes go on authenticated requests too, and the real
	// identity header is the session's.
	a = b.do("GET", "/api/x", "X-CSRF", "1", "X_User", "admin", "X-Forwarded_For", "10.0.0.1")
	if a.exited {
		t.Fatalf("API answered %d %s", a.status, a.body)
	}
	for name, v := range a.upstream {
		if strings.Contains(name, "_") {
			t.Errorf("forwarded the look-alike %s: %q", name, v)
		}
	}
	if got := a.upstream.Get("X-User"); got != "alice" {
		t.Errorf("upstream X-User = %q, want alice", got)
	}
}
