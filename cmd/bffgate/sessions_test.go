package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bffgate/bffgate/core/bff"
	"github.com/bffgate/bffgate/core/session"
	"github.com/bffgate/bffgate/core/session/redisstore"
	"github.com/bffgate/bffgate/core/session/redisstore/redistest"
	"github.com/bffgate/bffgate/tests/op"
)

// TestSessionsRevoke: `bffgate sessions revoke -sub` ends every session
// of that user made through two gateway nodes on one Redis, and no one
// else's; -sid ends that OP session's.
func TestSessionsRevoke(t *testing.T) {
	var b [6]byte
	rand.Read(b[:])
	rc := redisstore.Config{URL: redistest.URL(t), KeyPrefix: "bffgate-test:" + hex.EncodeToString(b[:]) + ":"}
	nodes := make([]*httptest.Server, 2)
	handlers := make([]http.Handler, 2)
	for i := range nodes {
		nodes[i] = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { handlers[i].ServeHTTP(w, r) }))
		t.Cleanup(nodes[i].Close)
	}
	o := op.StartT(t, op.Options{RedirectURIs: []string{nodes[0].URL + "/oauth/callback", nodes[1].URL + "/oauth/callback"},
		BackchannelLogoutURI: nodes[0].URL + "/backchannel-logout", // so ID tokens carry sid
		Stderr:               io.Discard})
	api := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	for i, n := range nodes {
		eng, err := bff.New(bff.Config{Issuer: o.Issuer, ClientID: o.ClientID, ClientSecret: o.ClientSecret,
			RedirectURL: n.URL + "/oauth/callback", CookieKeys: []string{"MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="}, Redis: rc})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { eng.Close() })
		handlers[i] = eng.Middleware(api)
	}
	login := func(node int, user, password string) *http.Client {
		t.Helper()
		c := op.Browser()
		resp, err := c.Get(nodes[node].URL + "/login")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		cb, err := o.Login(context.Background(), c, resp.Header.Get("Location"), user, password)
		if err != nil {
			t.Fatal(err)
		}
		if resp, err = c.Get(cb.String()); err != nil || resp.StatusCode != http.StatusFound {
			t.Fatalf("callback: %v, %v", resp, err)
		}
		resp.Body.Close()
		return c
	}
	status := func(node int, c *http.Client) int {
		t.Helper()
		req, _ := http.NewRequest("GET", nodes[node].URL+"/api/x", nil)
		req.Header.Set("X-CSRF", "1")
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	alice0, alice1, bob := login(0, op.AliceUser, op.AlicePassword), login(1, op.AliceUser, op.AlicePassword), login(0, op.BobUser, op.BobPassword)
	for _, s := range []int{status(0, alice0), status(1, alice1), status(1, bob)} {
		if s != http.StatusOK {
			t.Fatalf("before revoke: API status %d", s)
		}
	}

	file := filepath.Join(t.TempDir(), "bffgate.json")
	os.WriteFile(file, fmt.Appendf(nil, `{"bff":{"issuer":%q,"redis":{"url":%q,"key_prefix":%q}}}`, o.Issuer, rc.URL, rc.KeyPrefix), 0o644)
	var out strings.Builder

	// -sid: one OP session of bob's (another browser is another OP session).
	bobAgain := login(1, op.BobUser, op.BobPassword)
	sid, other := sidOf(t, rc, nodes[0].URL, bob), sidOf(t, rc, nodes[1].URL, bobAgain)
	if sid == "" || other == "" || sid == other {
		t.Fatalf("bob's two browsers have sids %q and %q, want two OP sessions", sid, other)
	}
	if err := sessions([]string{"revoke", "-config", file, "-sid", sid}, &out); err != nil || out.String() != "bffgate: ended 1 sessions\n" {
		t.Fatalf("revoke -sid: %q, %v; want that OP session's 1 session ended", out.String(), err)
	}
	if s0, s1, a := status(0, bob), status(1, bobAgain), status(0, alice0); s0 != http.StatusUnauthorized || s1 != http.StatusOK || a != http.StatusOK {
		t.Fatalf("after revoke -sid: that session %d (want 401), bob's other %d and alice's %d (want 200)", s0, s1, a)
	}
	bob = login(0, op.BobUser, op.BobPassword)

	out.Reset()
	if err := sessions([]string{"revoke", "-config", file, "-sub", "alice"}, &out); err != nil {
		t.Fatal(err)
	}
	if out.String() != "bffgate: ended 2 sessions\n" {
		t.Fatalf("revoke printed %q, want 2 sessions ended", out.String())
	}
	if s0, s1 := status(0, alice0), status(1, alice1); s0 != http.StatusUnauthorized || s1 != http.StatusUnauthorized {
		t.Fatalf("after revoke, alice's sessions answer %d (node 0) and %d (node 1), want 401 on both", s0, s1)
	}
	if s := status(1, bob); s != http.StatusOK {
		t.Fatalf("after revoking alice, bob's session answers %d", s)
	}
	out.Reset()
	if err := sessions([]string{"revoke", "-config", file, "-sub", "alice"}, &out); err != nil || out.String() != "bffgate: ended 0 sessions\n" {
		t.Fatalf("second revoke: %q, %v; want 0 sessions", out.String(), err)
	}
}

// sidOf reads the OP session (sid) of a browser's session from Redis, as
// an operator holding the store could.
func sidOf(t *testing.T, rc redisstore.Config, node string, c *http.Client) string {
	t.Helper()
	u, _ := url.Parse(node)
	var id session.ID
	for _, ck := range c.Jar.Cookies(u) {
		if ck.Name == "__Host-bffgate" {
			id, _ = session.ParseID(ck.Value)
		}
	}
	st, err := redisstore.New(rc)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	m := &session.Manager{Store: st, Idle: time.Hour, Max: time.Hour}
	s, err := m.Load(context.Background(), id, false)
	if err != nil {
		t.Fatalf("the browser's session: %v", err)
	}
	return s.SID
}

func TestSessionsRevokeRefuses(t *testing.T) {
	dir := t.TempDir()
	mem := filepath.Join(dir, "mem.json")
	os.WriteFile(mem, []byte(`{"bff":{"issuer":"https://op.example"}}`), 0o644)
	for _, tt := range []struct {
		args []string
		want string
	}{
		{nil, "usage"},
		{[]string{"revoke", "-sub", "x"}, "-config"},
		{[]string{"revoke", "-config", mem}, "one of -sub or -sid"},
		{[]string{"revoke", "-config", mem, "-sub", "a", "-sid", "b"}, "one of -sub or -sid"},
		{[]string{"revoke", "-config", mem, "-sub", "a"}, "memory"},
	} {
		if err := sessions(tt.args, io.Discard); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("sessions %q: %v, want an error saying %q", tt.args, err, tt.want)
		}
	}
}
