package serve

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/bffgate/bffgate/core/bff"
	"github.com/bffgate/bffgate/tests/op"
)

// TestRoutePolicies runs bffgate serve with per-route policies in front of
// a counting upstream, against the real test OP: a request that lacks the
// route's claim or acr never reaches the upstream, a step-up opens it,
// and an upstream's RFC 9470 challenge reaches the browser as the engine's
// JSON.
func TestRoutePolicies(t *testing.T) {
	var hits atomic.Int64
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if r.URL.Path == "/api/challenge" {
			w.Header().Set("WWW-Authenticate", `Bearer error="insufficient_user_authentication", error_description="more", acr_values="`+op.ACRMFA+`", max_age=60`)
			w.WriteHeader(http.StatusUnauthorized)
			io.WriteString(w, "upstream body: must not reach the browser")
			return
		}
		io.WriteString(w, "upstream "+r.URL.Path)
	}))
	defer up.Close()

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	o := op.StartT(t, op.Options{RedirectURIs: []string{base + "/oauth/callback"}, Stderr: io.Discard})
	cfg := &Config{
		BFF: bff.Config{
			Issuer: o.Issuer, ClientID: o.ClientID, ClientSecret: o.ClientSecret,
			RedirectURL: base + "/oauth/callback",
			CookieKeys:  []string{"MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="},
		},
		Routes: []Route{
			{Path: "/api/", Upstream: up.URL},
			{Path: "/api/admin/", Upstream: up.URL, Policy: &bff.Policy{
				Claims: []bff.ClaimRule{{Claim: "groups", Values: []string{"admin"}}}, ACRValues: []string{op.ACRMFA}}},
		},
		AccessLog: "off",
	}
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: p.Handler}
	go srv.Serve(ln)
	defer srv.Close()

	do := func(c *http.Client, path string) (int, http.Header, map[string]any, string) {
		t.Helper()
		req, _ := http.NewRequest("GET", base+path, nil)
		req.Header.Set("X-CSRF", "1")
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		var m map[string]any
		_ = json.Unmarshal(raw, &m)
		return resp.StatusCode, resp.Header, m, string(raw)
	}
	login := func(c *http.Client, query, user, password string, opts op.LoginOptions) {
		t.Helper()
		resp, err := c.Get(base + "/login" + query)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		cb, err := o.LoginWith(context.Background(), c, resp.Header.Get("Location"), user, password, opts)
		if err != nil {
			t.Fatal(err)
		}
		resp, err = c.Get(cb.String())
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusFound {
			t.Fatalf("callback: %d", resp.StatusCode)
		}
	}

	alice, bob := op.Browser(), op.Browser()
	login(alice, "", op.AliceUser, op.AlicePassword, op.LoginOptions{})
	login(bob, "", op.BobUser, op.BobPassword, op.LoginOptions{OTP: op.BobOTP})

	if st, _, _, body := do(alice, "/api/x"); st != 200 || hits.Load() != 1 {
		t.Fatalf("route without policy: %d %s, upstream %d", st, body, hits.Load())
	}
	// bob has MFA but not the admin group: 403, whatever his acr.
	if st, _, m, _ := do(bob, "/api/admin/x"); st != 403 || m["error"] != "insufficient_scope" || hits.Load() != 1 {
		t.Fatalf("bob on the admin route: %d %v, upstream %d", st, m, hits.Load())
	}
	// alice is an admin with a password login: step-up needed.
	st, _, m, _ := do(alice, "/api/admin/x")
	if st != 401 || m["error"] != "insufficient_user_authentication" || m["acr_values"] != op.ACRMFA || hits.Load() != 1 {
		t.Fatalf("alice before step-up: %d %v, upstream %d", st, m, hits.Load())
	}
	login(alice, "?acr_values="+url.QueryEscape(op.ACRMFA), op.AliceUser, op.AlicePassword, op.LoginOptions{OTP: op.AliceOTP})
	if st, _, _, body := do(alice, "/api/admin/x"); st != 200 || body != "upstream /api/admin/x" || hits.Load() != 2 {
		t.Fatalf("alice after step-up: %d %q, upstream %d", st, body, hits.Load())
	}

	// The upstream's own challenge becomes the engine's answer.
	st, h, m, body := do(alice, "/api/challenge")
	if st != 401 || m["error"] != "insufficient_user_authentication" || m["acr_values"] != op.ACRMFA || m["max_age"] != 60.0 ||
		m["authenticated"] != true || strings.Contains(body, "upstream body") {
		t.Fatalf("translated challenge: %d %s", st, body)
	}
	if !strings.HasPrefix(h.Get("Content-Type"), "application/json") || !strings.Contains(h.Get("WWW-Authenticate"), "insufficient_user_authentication") {
		t.Fatalf("translated challenge headers: %v", h)
	}
}

func TestRoutePolicyRejects(t *testing.T) {
	for _, tt := range []struct {
		name string
		edit func(c *Config)
		want string
	}{
		{"bad claim", func(c *Config) { c.Routes[0].Policy = &bff.Policy{Claims: []bff.ClaimRule{{}}} }, "routes[0].policy.claims[0].claim"},
		{"bad max_age", func(c *Config) { c.Routes[0].Policy = &bff.Policy{MaxAge: -5} }, "routes[0].policy.max_age"},
		{"public route", func(c *Config) { c.Routes[1].Policy = &bff.Policy{Scopes: []string{"a"}} }, "routes[1].policy"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := testConfig(t, "http://127.0.0.1:1")
			tt.edit(c)
			if _, err := New(c); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("New error = %v, want one naming %s", err, tt.want)
			}
		})
	}
}
