package main

import (
	"context"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/bffgate/bffgate/tests/flowtest"
	"github.com/bffgate/bffgate/tests/op"
)

// TestDBSC: the plugin answers DBSC's endpoints through the PDK (go-pdk's
// harness, the real OP): the registration offer on the callback, the
// registration with its bound cookie, a registered session refused
// without it, the 403 challenge and the signed refresh. Not tested in a
// real Kong, which cannot run here.
func TestDBSC(t *testing.T) {
	cfg, _ := newConfig(t, func(c *Config) { c.DBSC.Enabled = true })
	b := newBrowser(t, harness(cfg))
	a := b.do("GET", "/login")
	cb, err := provider(t).Login(context.Background(), b.http, a.header.Get("Location"), op.AliceUser, op.AlicePassword)
	if err != nil {
		t.Fatal(err)
	}
	a = b.do("GET", cb.String())
	m := regexp.MustCompile(`challenge="([^"]+)";authorization="([^"]+)"`).FindStringSubmatch(a.header.Get("Secure-Session-Registration"))
	if a.status != http.StatusFound || m == nil {
		t.Fatalf("callback = %d, Secure-Session-Registration %q", a.status, a.header.Get("Secure-Session-Registration"))
	}
	key := flowtest.NewDeviceKey(t)
	a = b.do("POST", "/dbsc/register", "Secure-Session-Response", key.Proof(t, true, m[1], m[2]))
	if a.status != http.StatusOK || !strings.Contains(strings.Join(a.header.Values("Set-Cookie"), "\n"), "__Host-bffgate-bound=") {
		t.Fatalf("register = %d %s %q", a.status, a.body, a.header.Values("Set-Cookie"))
	}
	id, _ := a.json(t)["session_identifier"].(string)

	if a := b.do("GET", "/api/x", "X-CSRF", "1"); a.exited {
		t.Fatalf("API with the bound cookie = %d %s, want forwarded", a.status, a.body)
	} else if strings.Contains(a.upstream.Get("Cookie"), "bffgate") {
		t.Fatalf("upstream Cookie = %q", a.upstream.Get("Cookie"))
	}
	bare := newBrowser(t, harness(cfg))
	bare.do("GET", "/api/x", "X-CSRF", "1", "Cookie", "__Host-bffgate="+b.sessionCookie()).wantError(t, http.StatusUnauthorized, "dbsc_refresh_required")

	a = b.do("POST", "/dbsc/refresh", "Sec-Secure-Session-Id", id)
	c := regexp.MustCompile(`^"([^"]+)";id="`).FindStringSubmatch(a.header.Get("Secure-Session-Challenge"))
	if a.status != http.StatusForbidden || c == nil {
		t.Fatalf("refresh without proof = %d, Secure-Session-Challenge %q", a.status, a.header.Get("Secure-Session-Challenge"))
	}
	a = b.do("POST", "/dbsc/refresh", "Sec-Secure-Session-Id", id, "Secure-Session-Response", key.Proof(t, false, c[1], ""))
	if a.status != http.StatusOK || !strings.Contains(strings.Join(a.header.Values("Set-Cookie"), "\n"), "__Host-bffgate-bound=") {
		t.Fatalf("signed refresh = %d %s", a.status, a.body)
	}
}
