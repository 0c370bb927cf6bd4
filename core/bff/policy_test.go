package bff_test

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/bffgate/bffgate/core/bff"
	"github.com/bffgate/bffgate/core/session"
	"github.com/bffgate/bffgate/tests/flowtest"
	"github.com/bffgate/bffgate/tests/op"
)

// These tests hold route policies and step-up to the real test OP, which
// issues acr (password, or password and one-time code), amr, auth_time
// and groups (alice: admin, staff; bob: staff).

// loginWith runs the whole flow with the login options and returns the
// callback's answer.
func (e *env) loginWith(c *http.Client, query, user, password string, opts op.LoginOptions) *flowtest.Response {
	e.t.Helper()
	cb, err := e.op.LoginWith(context.Background(), c, e.startLogin(c, query), user, password, opts)
	if err != nil {
		e.t.Fatalf("login at the provider: %v", err)
	}
	return e.do(c, "GET", cb.String())
}

// api calls the API through the BFF.
func (e *env) api(c *http.Client) *flowtest.Response {
	e.t.Helper()
	return e.do(c, "GET", "/api/admin", "X-CSRF", "1")
}

// wantRefused asserts a policy refusal that did not reach the upstream.
func (e *env) wantRefused(r *flowtest.Response, upBefore, status int, code string) map[string]any {
	e.t.Helper()
	r.WantError(e.t, status, code)
	if n := e.up.Count(); n != upBefore {
		e.t.Fatalf("the upstream received %d requests, want %d: a refused request was forwarded", n, upBefore)
	}
	body := r.JSON(e.t)
	if body["authenticated"] != true {
		e.t.Errorf("authenticated = %v, want true: the session stays valid", body["authenticated"])
	}
	if www := r.Header.Get("WWW-Authenticate"); !strings.Contains(www, `error="`+code+`"`) {
		e.t.Errorf("WWW-Authenticate = %q, want error=%q", www, code)
	}
	return body
}

func TestPolicyClaimsAndScopes(t *testing.T) {
	e := newEnv(t, func(c *bff.Config) {
		c.Policy = bff.Policy{Claims: []bff.ClaimRule{{Claim: "groups", Values: []string{"admin"}}, {Claim: "email_verified"}}, Scopes: []string{"email"}}
	})
	alice, bob := e.browser(), e.browser()
	e.login(alice, op.AliceUser, op.AlicePassword)
	e.login(bob, op.BobUser, op.BobPassword)

	if r := e.api(alice); r.Status != http.StatusOK || e.up.Count() != 1 {
		t.Fatalf("alice (admin): status %d, upstream saw %d, want 200 and 1 (body %s)", r.Status, e.up.Count(), r.Body)
	}
	body := e.wantRefused(e.api(bob), 1, http.StatusForbidden, "insufficient_scope")
	if cl, _ := body["claims"].([]any); len(cl) != 1 || cl[0] != "groups" {
		t.Errorf("claims = %v, want [groups]", body["claims"])
	}
	if strings.Contains(string(body["error_description"].(string)), "admin") {
		t.Error("the answer names the value the policy wants")
	}

	// A scope the token was not granted: refused for everyone.
	e2 := newEnv(t, func(c *bff.Config) { c.Policy = bff.Policy{Scopes: []string{"email", "admin:write"}} })
	c := e2.browser()
	e2.login(c, op.AliceUser, op.AlicePassword)
	body = e2.wantRefused(e2.api(c), 0, http.StatusForbidden, "insufficient_scope")
	if body["scope"] != "admin:write" {
		t.Errorf("scope = %v, want the missing one only", body["scope"])
	}
}

// TestRoutePolicy: a Request's policy is checked on top of the engine's,
// and only on the request that carries it.
func TestRoutePolicy(t *testing.T) {
	e := newEnv(t, nil)
	c := e.browser()
	e.login(c, op.BobUser, op.BobPassword)
	req := &bff.Request{Method: "GET", Host: strings.TrimPrefix(e.bff.URL, "http://"), Path: "/api/admin",
		Header: http.Header{"X-Csrf": {"1"}, "Cookie": {"__Host-bffgate=" + e.sessionCookie(c)}}}
	if r := e.eng.Handle(context.Background(), req); !r.Forward() {
		t.Fatalf("no route policy: status %d %s, want forwarded", r.Status, r.Body)
	}
	req.Policy = &bff.Policy{Claims: []bff.ClaimRule{{Claim: "groups", Values: []string{"admin", "ops"}}}}
	if r := e.eng.Handle(context.Background(), req); r.Forward() || r.Status != http.StatusForbidden {
		t.Fatalf("route policy bob lacks: status %d, want 403", r.Status)
	}
	req.Policy = &bff.Policy{Claims: []bff.ClaimRule{{Claim: "groups", Values: []string{"ops", "staff"}}}}
	if r := e.eng.Handle(context.Background(), req); !r.Forward() {
		t.Fatalf("one of the values: status %d %s, want forwarded", r.Status, r.Body)
	}
}

func TestStepUpACR(t *testing.T) {
	e := newEnv(t, func(c *bff.Config) { c.Policy = bff.Policy{ACRValues: []string{op.ACRMFA}} })
	c := e.browser()
	e.login(c, op.AliceUser, op.AlicePassword) // password only
	body := e.wantRefused(e.api(c), 0, http.StatusUnauthorized, "insufficient_user_authentication")
	if body["acr_values"] != op.ACRMFA {
		t.Fatalf("acr_values = %v, want %q", body["acr_values"], op.ACRMFA)
	}
	old := e.sessionCookie(c)

	// The step-up: the OP asks for a new login because the session's acr
	// is not among the acr_values (which went to it, pushed with PAR).
	r := e.loginWith(c, "?acr_values="+url.QueryEscape(op.ACRMFA), op.AliceUser, op.AlicePassword, op.LoginOptions{OTP: op.AliceOTP})
	if r.Status != http.StatusFound {
		t.Fatalf("step-up callback: %d %s", r.Status, r.Body)
	}
	if now := e.sessionCookie(c); now == old || now == "" {
		t.Fatal("the step-up kept the session ID: fixation")
	}
	if !e.gone(old) {
		t.Fatal("the session before the step-up still lives")
	}
	if r := e.api(c); r.Status != http.StatusOK || e.up.Count() != 1 {
		t.Fatalf("after step-up: status %d, upstream %d (body %s)", r.Status, e.up.Count(), r.Body)
	}
	if s := e.sessionOf(c); s.Subject != "alice" || time.Since(s.Created) > time.Minute {
		t.Fatalf("stepped-up session: sub %q, created %v; want alice, now", s.Subject, s.Created)
	}
}

// gone reports whether the session of a cookie value has left the store.
func (e *env) gone(cookie string) bool {
	e.t.Helper()
	id, err := session.ParseID(cookie)
	if err != nil {
		e.t.Fatal(err)
	}
	_, err = e.store.Get(context.Background(), id.StoreKey(), 0)
	return errors.Is(err, session.ErrNotFound)
}

// TestStepUpNotMet: the callback checks the acr and auth_time it got, not
// just that the provider answered; a failed step-up keeps the old session.
func TestStepUpNotMet(t *testing.T) {
	e := newEnv(t, func(c *bff.Config) { c.Policy = bff.Policy{ACRValues: []string{op.ACRMFA}} })
	c := e.browser()
	e.login(c, op.AliceUser, op.AlicePassword)
	old := e.sessionCookie(c)
	// The OP prompts, and the user logs in with the password only: the
	// provider answers acr pwd, which the login did not ask for.
	r := e.loginWith(c, "?acr_values="+url.QueryEscape(op.ACRMFA), op.AliceUser, op.AlicePassword, op.LoginOptions{})
	r.WantError(t, http.StatusUnauthorized, "insufficient_user_authentication")
	if e.sessionCookie(c) != old || e.gone(old) {
		t.Fatal("a failed step-up changed or ended the session")
	}
	e.wantRefused(e.api(c), 0, http.StatusUnauthorized, "insufficient_user_authentication")

	// A page load lands in the app with the code.
	cb, err := e.op.LoginWith(context.Background(), c, e.startLogin(c, "?acr_values="+url.QueryEscape(op.ACRMFA)), op.AliceUser, op.AlicePassword, op.LoginOptions{})
	if err != nil {
		t.Fatal(err)
	}
	r = e.do(c, "GET", cb.String(), "Sec-Fetch-Mode", "navigate")
	if loc := r.Header.Get("Location"); r.Status != http.StatusFound || !strings.Contains(loc, "error=insufficient_user_authentication") {
		t.Fatalf("navigation: %d to %q", r.Status, loc)
	}
}

// TestStepUpMaxAge: a login older than the policy's max_age needs a new
// one; a step-up answered with a stale auth_time is refused.
func TestStepUpMaxAge(t *testing.T) {
	e := newEnv(t, func(c *bff.Config) { c.Policy = bff.Policy{MaxAge: 300} })
	c := e.browser()
	if r := e.loginWith(c, "", op.AliceUser, op.AlicePassword, op.LoginOptions{AuthAge: 10 * time.Minute}); r.Status != http.StatusFound {
		t.Fatalf("login: %d %s", r.Status, r.Body)
	}
	body := e.wantRefused(e.api(c), 0, http.StatusUnauthorized, "insufficient_user_authentication")
	if body["max_age"] != 300.0 || body["acr_values"] != nil {
		t.Fatalf("body = %v, want max_age 300 and no acr_values", body)
	}
	// The OP prompts (its session is older than max_age), and the user
	// logs in again, but the provider still says ten minutes ago.
	r := e.loginWith(c, "?max_age=300", op.AliceUser, op.AlicePassword, op.LoginOptions{AuthAge: 10 * time.Minute})
	r.WantError(t, http.StatusUnauthorized, "insufficient_user_authentication")
	e.wantRefused(e.api(c), 0, http.StatusUnauthorized, "insufficient_user_authentication")

	if r := e.loginWith(c, "?max_age=300", op.AliceUser, op.AlicePassword, op.LoginOptions{}); r.Status != http.StatusFound {
		t.Fatalf("step-up: %d %s", r.Status, r.Body)
	}
	if r := e.api(c); r.Status != http.StatusOK || e.up.Count() != 1 {
		t.Fatalf("after step-up: %d, upstream %d", r.Status, e.up.Count())
	}
	// Time passes: the same session goes stale, with no new request to the OP.
	e.clock.Advance(301 * time.Second)
	e.wantRefused(e.api(c), 1, http.StatusUnauthorized, "insufficient_user_authentication")
}

// TestStepUpOtherUser: a step-up answered by another user's login gives
// that user a fresh session; nothing of the first user's is kept.
func TestStepUpOtherUser(t *testing.T) {
	e := newEnv(t, func(c *bff.Config) {
		c.IdentityHeaders = []bff.IdentityHeader{{Header: "X-User", Claim: "sub"}, {Header: "X-Groups", Claim: "email"}}
	})
	c := e.browser()
	e.login(c, op.AliceUser, op.AlicePassword)
	old := e.sessionCookie(c)
	r := e.loginWith(c, "?acr_values="+url.QueryEscape(op.ACRMFA), op.BobUser, op.BobPassword, op.LoginOptions{OTP: op.BobOTP})
	if r.Status != http.StatusFound {
		t.Fatalf("callback: %d %s", r.Status, r.Body)
	}
	if e.sessionCookie(c) == old || !e.gone(old) {
		t.Fatal("alice's session lives on after bob's login")
	}
	s := e.sessionOf(c)
	if s.Subject != "bob" || strings.Contains(s.Claims+s.Identity+s.TokenClaims, "alice") {
		t.Fatalf("bob's session holds alice's data: sub %q claims %s identity %q token claims %s", s.Subject, s.Claims, s.Identity, s.TokenClaims)
	}
	if !strings.Contains(s.TokenClaims, op.ACRMFA) {
		t.Fatalf("token claims %s lack the new acr", s.TokenClaims)
	}
	if r := e.api(c); r.Status != http.StatusOK || e.up.Last(t).Header.Get("X-User") != "bob" {
		t.Fatalf("API as bob: %d, X-User %q", r.Status, e.up.Last(t).Header.Get("X-User"))
	}
}

// TestStepUpParamsBounded: acr_values and max_age go to the provider and
// into the login cookie only when well-formed and small.
func TestStepUpParamsBounded(t *testing.T) {
	e := newEnv(t, nil)
	c := e.browser()
	for _, q := range []string{
		"acr_values=" + strings.Repeat("a", 257),
		"acr_values=" + strings.Repeat("a+", 65) + "a",
		"acr_values=%22mfa%22",
		"acr_values=a%5Cb",
		"acr_values=a%0Ab",
		"acr_values=a++b",
		"acr_values=",
		"acr_values=a&acr_values=b",
		"max_age=-1", "max_age=%2B5", "max_age=abc", "max_age=1e3", "max_age=", "max_age=99999999",
		"max_age=1&max_age=2",
	} {
		e.do(c, "GET", "/login?"+q).WantError(t, http.StatusBadRequest, "invalid_request")
	}
	for _, q := range []string{"acr_values=" + url.QueryEscape(op.ACRMFA+" "+op.ACRPassword), "max_age=0", "max_age=31622400"} {
		r := e.do(c, "GET", "/login?"+q)
		if r.Status != http.StatusFound {
			t.Errorf("/login?%s: %d %s, want 302", q, r.Status, r.Body)
		}
		// With PAR (the test OP offers it) the parameters went to the
		// provider directly; the browser carries only the request_uri.
		if loc := r.Header.Get("Location"); !strings.Contains(loc, "request_uri=") || strings.Contains(loc, "acr_values") || strings.Contains(loc, "max_age") {
			t.Errorf("/login?%s went to %s, want a pushed request", q, loc)
		}
	}
	// Not in login_params: ignored as before, not checked.
	e2 := newEnv(t, func(c *bff.Config) { c.LoginParams = []string{"prompt"} })
	if r := e2.do(e2.browser(), "GET", "/login?max_age=abc"); r.Status != http.StatusFound {
		t.Errorf("max_age outside login_params: %d, want 302", r.Status)
	}
}

func TestPolicyValidate(t *testing.T) {
	for _, tc := range []struct {
		p     bff.Policy
		field string
	}{
		{bff.Policy{Claims: []bff.ClaimRule{{Claim: ""}}}, "policy.claims[0].claim"},
		{bff.Policy{Claims: []bff.ClaimRule{{Claim: "g", Values: []string{"a\nb"}}}}, "policy.claims[0].values[0]"},
		{bff.Policy{Scopes: []string{"a b"}}, "policy.scopes[0]"},
		{bff.Policy{ACRValues: []string{`x"`}}, "policy.acr_values[0]"},
		{bff.Policy{ACRValues: []string{strings.Repeat("a", 200), strings.Repeat("b", 200)}}, "policy.acr_values"},
		{bff.Policy{MaxAge: -1}, "policy.max_age"},
	} {
		cfg := bff.Config{Issuer: "https://op.example", ClientID: "c", ClientSecret: "s", RedirectURL: "https://app.example/oauth/callback",
			CookieKeys: []string{cookieKey}, Policy: tc.p}
		_, err := bff.New(cfg)
		var ce *bff.ConfigError
		if !errors.As(err, &ce) || ce.Field != tc.field {
			t.Errorf("%+v: error %v, want one at %s", tc.p, err, tc.field)
		}
	}
}

func TestStepUpChallenge(t *testing.T) {
	for _, tc := range []struct {
		name      string
		status    int
		www       []string
		ok        bool
		acr       any
		maxAge    any
		challenge string
	}{
		{"rfc 9470", 401, []string{`Bearer error="insufficient_user_authentication", error_description="A different authentication level is required", acr_values="myACR"`}, true, "myACR", nil,
			`Bearer error="insufficient_user_authentication", acr_values="myACR"`},
		{"max_age token", 401, []string{`Bearer error="insufficient_user_authentication", max_age=5`}, true, nil, 5.0, ""},
		{"403, second challenge, case", 403, []string{`Basic realm="x"`, `DPoP algs="ES256", bearer Error="insufficient_user_authentication" , ACR_VALUES="a b"`}, true, "a b", nil, ""},
		{"escapes", 401, []string{`Bearer error="insufficient_user_authentication", acr_values="a\"b"`}, true, nil, nil, ""},
		{"bad max_age dropped", 401, []string{`Bearer error="insufficient_user_authentication", max_age=-3`}, true, nil, nil, ""},
		{"other error", 401, []string{`Bearer error="invalid_token"`}, false, nil, nil, ""},
		{"other scheme", 401, []string{`Basic error="insufficient_user_authentication"`}, false, nil, nil, ""},
		{"200", 200, []string{`Bearer error="insufficient_user_authentication"`}, false, nil, nil, ""},
		{"unterminated", 401, []string{`Bearer error="insufficient_user_authentication`}, false, nil, nil, ""},
		{"too long", 401, []string{`Bearer error="insufficient_user_authentication", x="` + strings.Repeat("a", 5000) + `"`}, false, nil, nil, ""},
		{"none", 401, nil, false, nil, nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, ok := bff.StepUpChallenge(tc.status, http.Header{"Www-Authenticate": tc.www})
			if ok != tc.ok {
				t.Fatalf("ok = %v, want %v", ok, tc.ok)
			}
			if !ok {
				return
			}
			body := (&flowtest.Response{Status: r.Status, Header: r.Header, Body: r.Body}).JSON(t)
			if r.Status != 401 || body["error"] != "insufficient_user_authentication" || body["authenticated"] != true ||
				body["acr_values"] != tc.acr || body["max_age"] != tc.maxAge {
				t.Fatalf("answer %d %s", r.Status, r.Body)
			}
			if tc.challenge != "" && r.Header.Get("WWW-Authenticate") != tc.challenge {
				t.Errorf("WWW-Authenticate = %q, want %q", r.Header.Get("WWW-Authenticate"), tc.challenge)
			}
		})
	}
}

// TestPolicyOldSession: a session saved before sessions kept the ID
// token's claims is asked to log in again, not refused as lacking them.
func TestPolicyOldSession(t *testing.T) {
	e := newEnv(t, func(c *bff.Config) {
		c.Policy = bff.Policy{Claims: []bff.ClaimRule{{Claim: "groups", Values: []string{"admin"}}}}
	})
	c := e.browser()
	e.login(c, op.AliceUser, op.AlicePassword)
	id, _ := session.ParseID(e.sessionCookie(c))
	s := e.sessionOf(c)
	s.TokenClaims = ""
	m := &session.Manager{Store: e.store, Idle: time.Hour, Max: 24 * time.Hour, Now: e.clock.Now}
	if err := m.Save(context.Background(), id, s); err != nil {
		t.Fatal(err)
	}
	body := e.wantRefused(e.api(c), 0, http.StatusUnauthorized, "insufficient_user_authentication")
	if body["acr_values"] != nil || body["max_age"] != nil {
		t.Fatalf("body %v: want a plain new login", body)
	}
}
