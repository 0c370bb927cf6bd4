package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/bffgate/bffgate/tests/op"
)

// TestRoutePolicies: the plugin on two routes, configured as Kong sends
// it, the same but for the admin route's policy. Both share one engine
// (a login on one route is a session on the other), and each request is
// held to its own route's policy, against the real OP: a request that
// lacks it is answered and never forwarded; a step-up on the admin route
// opens it.
func TestRoutePolicies(t *testing.T) {
	srv := provider(t)
	kongJSON := func(route, policy string) []byte {
		return []byte(fmt.Sprintf(`{"__seq__":1,"__key__":"plugins:bffgate:%s::::ws-1",
			"issuer":%q,"client_id":%q,"client_secret":%q,
			"redirect_url":"https://app.example.test/oauth/callback","cookie_keys":[%q],
			"identity_headers":[{"header":"X-User","claim":"sub"}],
			"session_idle_timeout":4321,
			"policy":%s}`, route, srv.Issuer, srv.ClientID, srv.ClientSecret, cookieKey, policy))
	}
	instance := func(raw []byte) *Config {
		c := New().(*Config)
		if err := json.Unmarshal(raw, c); err != nil {
			t.Fatal(err)
		}
		return c
	}
	api := instance(kongJSON("route-api", `{"claims":null,"scopes":null,"acr_values":null,"max_age":null}`))
	admin := instance(kongJSON("route-admin", `{"claims":[{"claim":"groups","values":["admin"]}],"scopes":null,"acr_values":[`+fmt.Sprintf("%q", op.ACRMFA)+`],"max_age":null}`))
	if engines.forConfig(api) != engines.forConfig(admin) {
		t.Fatal("routes that differ only in policy got different engines: their sessions are not shared")
	}

	login := func(b *browser, via *Config, query, user, password string, opts op.LoginOptions) {
		t.Helper()
		b.trip = harness(via)
		a := b.do("GET", "/login"+query)
		if a.status != http.StatusFound {
			t.Fatalf("/login: %d %s", a.status, a.body)
		}
		cb, err := srv.LoginWith(context.Background(), b.http, a.header.Get("Location"), user, password, opts)
		if err != nil {
			t.Fatal(err)
		}
		if a := b.do("GET", cb.String()); a.status != http.StatusFound {
			t.Fatalf("callback: %d %s", a.status, a.body)
		}
	}
	call := func(b *browser, via *Config) *answer {
		t.Helper()
		b.trip = harness(via)
		return b.do("GET", "/api/x", "X-CSRF", "1")
	}

	alice := newBrowser(t, harness(api))
	login(alice, api, "", op.AliceUser, op.AlicePassword, op.LoginOptions{})
	if a := call(alice, api); a.exited {
		t.Fatalf("route without policy: %d %s", a.status, a.body)
	}
	a := call(alice, admin)
	a.wantError(t, http.StatusUnauthorized, "insufficient_user_authentication")
	if m := a.json(t); m["acr_values"] != op.ACRMFA {
		t.Fatalf("step-up answer: %v", m)
	}
	login(alice, admin, "?acr_values="+url.QueryEscape(op.ACRMFA), op.AliceUser, op.AlicePassword, op.LoginOptions{OTP: op.AliceOTP})
	if a := call(alice, admin); a.exited || !strings.HasPrefix(a.upstream.Get("Authorization"), "Bearer ") {
		t.Fatalf("admin route after step-up: %d %s", a.status, a.body)
	}

	bob := newBrowser(t, harness(api))
	login(bob, api, "", op.BobUser, op.BobPassword, op.LoginOptions{OTP: op.BobOTP})
	call(bob, admin).wantError(t, http.StatusForbidden, "insufficient_scope")
	if a := call(bob, api); a.exited {
		t.Fatalf("bob on the API route: %d %s", a.status, a.body)
	}

	// A policy Kong's schema lets through but the engine refuses.
	bad := instance(kongJSON("route-bad", `{"claims":null,"scopes":["a b"],"acr_values":null,"max_age":null}`))
	a = call(alice, bad)
	a.wantError(t, http.StatusInternalServerError, "bffgate_config_invalid")
	if !strings.Contains(a.json(t)["error_description"].(string), "policy.scopes[0]") {
		t.Fatalf("config error: %s", a.body)
	}
}
