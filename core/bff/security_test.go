package bff_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bffgate/bffgate/core/bff"
	"github.com/bffgate/bffgate/core/session"
	"github.com/bffgate/bffgate/tests/flowtest"
	"github.com/bffgate/bffgate/tests/op"
)

// Negative tests: every attack gets the status and error code it should,
// and nothing reaches the upstream.

// editURL changes query parameters of a URL (a value of "" deletes).
func editURL(t *testing.T, raw string, kv ...string) string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == "" {
			q.Del(kv[i])
		} else {
			q.Set(kv[i], kv[i+1])
		}
	}
	u.RawQuery = q.Encode()
	return u.String()
}

func TestCallbackRejects(t *testing.T) {
	e := newEnv(t, nil)
	// Without PAR (RFC 9126) the authorization request passes through the
	// browser, which can change it: the nonce and PKCE checks catch that.
	plain := newEnv(t, func(c *bff.Config) { c.PushedAuthorization = bff.PAROff })
	tests := []struct {
		name string
		// run returns the callback response to check.
		run        func(c *http.Client) *flowtest.Response
		wantStatus int
		wantCode   string
	}{
		{"missing state", func(c *http.Client) *flowtest.Response {
			cb := e.authorize(c, e.startLogin(c, ""), op.AliceUser, op.AlicePassword)
			return e.do(c, "GET", editURL(t, cb, "state", ""))
		}, 400, "invalid_state"},
		{"wrong state", func(c *http.Client) *flowtest.Response {
			cb := e.authorize(c, e.startLogin(c, ""), op.AliceUser, op.AlicePassword)
			return e.do(c, "GET", editURL(t, cb, "state", "forged-state"))
		}, 400, "invalid_state"},
		{"state of another browser", func(c *http.Client) *flowtest.Response {
			other := e.browser()
			cb := e.authorize(other, e.startLogin(other, ""), op.AliceUser, op.AlicePassword)
			return e.do(c, "GET", cb) // c has no login cookie for that state
		}, 400, "invalid_state"},
		{"tampered login cookie", func(c *http.Client) *flowtest.Response {
			cb := e.authorize(c, e.startLogin(c, ""), op.AliceUser, op.AlicePassword)
			tamperCookies(t, e, c, "__Host-bffgate-login-", func(v string) string { return flip(v) })
			return e.do(c, "GET", cb)
		}, 400, "invalid_state"},
		{"login cookie sealed with another key", func(c *http.Client) *flowtest.Response {
			other := newEnvSharingOP(t, e, "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=")
			cb := e.authorize(c, other.startLogin(c, ""), op.AliceUser, op.AlicePassword)
			return e.do(c, "GET", strings.Replace(cb, other.bff.URL, e.bff.URL, 1))
		}, 400, "invalid_state"},
		{"expired login", func(c *http.Client) *flowtest.Response {
			cb := e.authorize(c, e.startLogin(c, ""), op.AliceUser, op.AlicePassword)
			e.clock.Advance(11 * time.Minute)
			defer e.clock.Advance(-11 * time.Minute)
			return e.do(c, "GET", cb)
		}, 400, "invalid_state"},
		{"iss of another issuer", func(c *http.Client) *flowtest.Response {
			cb := e.authorize(c, e.startLogin(c, ""), op.AliceUser, op.AlicePassword)
			return e.do(c, "GET", editURL(t, cb, "iss", "https://evil.example"))
		}, 400, "invalid_issuer"},
		{"iss missing", func(c *http.Client) *flowtest.Response {
			cb := e.authorize(c, e.startLogin(c, ""), op.AliceUser, op.AlicePassword)
			return e.do(c, "GET", editURL(t, cb, "iss", ""))
		}, 400, "invalid_issuer"},
		{"nonce mismatch", func(c *http.Client) *flowtest.Response {
			auth := editURL(t, plain.startLogin(c, ""), "nonce", "attacker-nonce")
			return plain.do(c, "GET", plain.authorize(c, auth, op.AliceUser, op.AlicePassword))
		}, 400, "invalid_nonce"},
		{"PKCE verifier mismatch", func(c *http.Client) *flowtest.Response {
			auth := editURL(t, plain.startLogin(c, ""), "code_challenge", "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM")
			return plain.do(c, "GET", plain.authorize(c, auth, op.AliceUser, op.AlicePassword))
		}, 400, "invalid_grant"},
		{"forged code", func(c *http.Client) *flowtest.Response {
			cb := e.authorize(c, e.startLogin(c, ""), op.AliceUser, op.AlicePassword)
			return e.do(c, "GET", editURL(t, cb, "code", "forged-code"))
		}, 400, "invalid_grant"},
		{"replayed code", func(c *http.Client) *flowtest.Response {
			cb := e.authorize(c, e.startLogin(c, ""), op.AliceUser, op.AlicePassword)
			u, _ := url.Parse(e.bff.URL)
			saved := c.Jar.Cookies(u) // the login cookie, which the callback deletes
			if r := e.do(c, "GET", cb); r.Status != http.StatusFound {
				t.Fatalf("first use of the code: %d %s", r.Status, r.Body)
			}
			c.Jar.SetCookies(u, saved)
			return e.do(c, "GET", cb)
		}, 400, "invalid_grant"},
		{"replayed callback without its login cookie", func(c *http.Client) *flowtest.Response {
			cb := e.authorize(c, e.startLogin(c, ""), op.AliceUser, op.AlicePassword)
			e.do(c, "GET", cb)
			return e.do(c, "GET", cb)
		}, 400, "invalid_state"},
		{"error from the provider", func(c *http.Client) *flowtest.Response {
			cb := e.authorize(c, e.startLogin(c, ""), op.AliceUser, op.AlicePassword)
			return e.do(c, "GET", editURL(t, cb, "code", "", "error", "access_denied"))
		}, 400, "login_failed"},
		{"oversized state", func(c *http.Client) *flowtest.Response {
			return e.do(c, "GET", "/oauth/callback?state="+strings.Repeat("s", 300)+"&code=x")
		}, 400, "invalid_state"},
		{"POST", func(c *http.Client) *flowtest.Response { return e.do(c, "POST", "/oauth/callback") }, 405, "method_not_allowed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := e.browser()
			r := tt.run(c)
			r.WantError(t, tt.wantStatus, tt.wantCode)
			if strings.Contains(strings.Join(r.Header.Values("Set-Cookie"), ";"), "__Host-bffgate=") &&
				!strings.Contains(strings.Join(r.Header.Values("Set-Cookie"), ";"), "__Host-bffgate=;") {
				t.Fatal("a failed callback set a session cookie")
			}
			if e.sessionCookie(c) != "" && tt.name != "replayed code" && tt.name != "replayed callback without its login cookie" {
				t.Fatal("the browser holds a session after a failed callback")
			}
		})
	}
	if e.up.Count() != 0 {
		t.Fatalf("the upstream received %d requests", e.up.Count())
	}
}

// newEnvSharingOP starts a second BFF, with other cookie keys, registered
// nowhere: only its /login is used, to make a login cookie the first BFF
// cannot open.
func newEnvSharingOP(t *testing.T, e *env, key string) *env {
	t.Helper()
	other := &env{t: t, clock: e.clock, op: e.op}
	var err error
	other.eng, err = bff.New(bff.Config{
		Issuer: e.op.Issuer, ClientID: e.op.ClientID, ClientSecret: e.op.ClientSecret,
		RedirectURL: e.bff.URL + "/oauth/callback", CookieKeys: []string{key}, Now: e.clock.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	// Cookies are per host, not port: the browser sends this server's
	// login cookie to the first BFF too.
	other.bff = httptest.NewServer(other.eng.Middleware(http.NotFoundHandler()))
	t.Cleanup(other.bff.Close)
	return other
}

func flip(v string) string {
	if v == "" {
		return "A"
	}
	c := v[len(v)/2]
	r := byte('A')
	if c == 'A' {
		r = 'B'
	}
	return v[:len(v)/2] + string(r) + v[len(v)/2+1:]
}

// tamperCookies rewrites the browser's cookies whose name starts with
// prefix.
func tamperCookies(t *testing.T, e *env, c *http.Client, prefix string, fn func(string) string) {
	t.Helper()
	u, _ := url.Parse(e.bff.URL)
	var changed []*http.Cookie
	for _, ck := range c.Jar.Cookies(u) {
		if strings.HasPrefix(ck.Name, prefix) {
			changed = append(changed, &http.Cookie{Name: ck.Name, Value: fn(ck.Value), Path: "/", Secure: true})
		}
	}
	if len(changed) == 0 {
		t.Fatalf("no cookie starts with %q", prefix)
	}
	c.Jar.SetCookies(u, changed)
}

func TestOpenRedirects(t *testing.T) {
	e := newEnv(t, func(c *bff.Config) { c.AllowedOrigins = []string{"https://spa.example"} })
	c := e.browser()
	for _, rt := range []string{
		"//evil.example", "/\\evil.example", "\\/evil.example", "https:evil.example", "https://evil.example",
		"/%2F%2Fevil.example", "%2F%2Fevil.example", "/%5Cevil.example", "http://spa.example", "https://spa.example.evil.example",
		"https://spa.example@evil.example", "javascript:alert(document.cookie)", "/\t/evil.example", "evil.example",
	} {
		t.Run(rt, func(t *testing.T) {
			e.do(c, "GET", "/login?returnTo="+url.QueryEscape(rt)).WantError(t, http.StatusBadRequest, "invalid_return_to")
		})
	}
	// The percent-encoded form in the raw query decodes to the same check.
	e.do(c, "GET", "/login?returnTo=%2F%2Fevil.example").WantError(t, http.StatusBadRequest, "invalid_return_to")
	for _, rt := range []string{"/dashboard?tab=1", "https://spa.example/after-login"} {
		if loc := e.startLogin(c, "?returnTo="+url.QueryEscape(rt)); !strings.HasPrefix(loc, e.op.Issuer) {
			t.Fatalf("returnTo %q: login went to %q", rt, loc)
		}
	}
	// An allowed absolute returnTo is where the callback lands.
	cb := e.authorize(c, e.startLogin(c, "?returnTo="+url.QueryEscape("https://spa.example/after-login")), op.AliceUser, op.AlicePassword)
	if r := e.do(c, "GET", cb); r.Header.Get("Location") != "https://spa.example/after-login" {
		t.Fatalf("callback went to %q", r.Header.Get("Location"))
	}
}

func TestSessionFixation(t *testing.T) {
	e := newEnv(t, nil)
	// The attacker logs in as bob and plants bob's session cookie (and an
	// unknown one) in the victim's browser before the victim logs in.
	attacker := e.browser()
	e.login(attacker, op.BobUser, op.BobPassword)
	planted := e.sessionCookie(attacker)

	victim := e.browser()
	u, _ := url.Parse(e.bff.URL)
	victim.Jar.SetCookies(u, []*http.Cookie{{Name: "__Host-bffgate", Value: planted, Path: "/", Secure: true}})
	e.login(victim, op.AliceUser, op.AlicePassword)
	got := e.sessionCookie(victim)
	if got == planted || got == "" {
		t.Fatalf("the victim's session ID is %q, the planted one %q: adopted", got, planted)
	}
	if s := e.sessionOf(victim); s.Subject != "alice" {
		t.Fatalf("victim's session is %q's", s.Subject)
	}
	// The planted session ends: the attacker cannot ride the victim's login.
	e.do(attacker, "GET", "/api/x", "X-CSRF", "1").WantError(t, http.StatusUnauthorized, "invalid_session")

	// A planted ID that names no session is never adopted either.
	unknown, _ := session.NewID()
	victim2 := e.browser()
	victim2.Jar.SetCookies(u, []*http.Cookie{{Name: "__Host-bffgate", Value: unknown.String(), Path: "/", Secure: true}})
	e.login(victim2, op.AliceUser, op.AlicePassword)
	if e.sessionCookie(victim2) == unknown.String() {
		t.Fatal("an attacker-chosen session ID was adopted")
	}
}

func TestAPIRejects(t *testing.T) {
	e := newEnv(t, func(c *bff.Config) { c.AllowedOrigins = []string{"https://spa.example"} })
	c := e.browser()
	e.login(c, op.AliceUser, op.AlicePassword)
	good := e.sessionCookie(c)
	forged, _ := session.NewID()
	withCookie := func(v string) *http.Client {
		b := e.browser()
		u, _ := url.Parse(e.bff.URL)
		b.Jar.SetCookies(u, []*http.Cookie{{Name: "__Host-bffgate", Value: v, Path: "/", Secure: true}})
		return b
	}
	tests := []struct {
		name       string
		client     *http.Client
		method     string
		path       string
		header     []string
		wantStatus int
		wantCode   string
	}{
		{"no session", e.browser(), "GET", "/api/x", []string{"X-CSRF", "1"}, 401, "unauthenticated"},
		{"forged cookie", withCookie(forged.String()), "GET", "/api/x", []string{"X-CSRF", "1"}, 401, "invalid_session"},
		{"truncated cookie", withCookie(good[:20]), "GET", "/api/x", []string{"X-CSRF", "1"}, 401, "invalid_session"},
		{"altered cookie", withCookie(flip(good)), "GET", "/api/x", []string{"X-CSRF", "1"}, 401, "invalid_session"},
		{"cookie with junk", withCookie(good + "x"), "GET", "/api/x", []string{"X-CSRF", "1"}, 401, "invalid_session"},
		{"GET without CSRF header", c, "GET", "/api/x", nil, 403, "csrf_header_missing"},
		{"POST without CSRF header", c, "POST", "/api/x", nil, 403, "csrf_header_missing"},
		{"DELETE without CSRF header", c, "DELETE", "/api/x", nil, 403, "csrf_header_missing"},
		{"wrong CSRF value", c, "POST", "/api/x", []string{"X-CSRF", "0"}, 403, "csrf_header_missing"},
		{"foreign Origin", c, "POST", "/api/x", []string{"X-CSRF", "1", "Origin", "https://evil.example"}, 403, "origin_not_allowed"},
		{"null Origin", c, "POST", "/api/x", []string{"X-CSRF", "1", "Origin", "null"}, 403, "origin_not_allowed"},
		{"preflight from foreign Origin", c, "OPTIONS", "/api/x", []string{"Origin", "https://evil.example", "Access-Control-Request-Method", "POST"}, 403, "origin_not_allowed"},
		{"oversized Cookie header", c, "GET", "/api/x", []string{"X-CSRF", "1", "Cookie", "big=" + strings.Repeat("x", 20<<10)}, 431, "cookie_too_large"},
		{"oversized URI", c, "GET", "/api/x?q=" + strings.Repeat("q", 9<<10), []string{"X-CSRF", "1"}, 414, "uri_too_long"},
		{"logout without CSRF header", c, "POST", "/logout", nil, 403, "csrf_header_missing"},
		{"logout by GET", c, "GET", "/logout", []string{"X-CSRF", "1"}, 405, "method_not_allowed"},
		{"session from foreign Origin", c, "GET", "/session", []string{"Origin", "https://evil.example"}, 403, "origin_not_allowed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.do(tt.client, tt.method, tt.path, tt.header...)
			r.WantError(t, tt.wantStatus, tt.wantCode)
			if loc := r.Header.Get("Location"); loc != "" {
				t.Fatalf("an API refusal redirected to %q", loc)
			}
			if tt.wantStatus == 401 && r.JSON(t)["authenticated"] != false {
				t.Fatalf("401 body %s lacks authenticated:false", r.Body)
			}
		})
	}
	if e.up.Count() != 0 {
		t.Fatalf("the upstream received %d refused requests", e.up.Count())
	}
	// The real session survived all of that.
	if r := e.do(c, "GET", "/api/x", "X-CSRF", "1", "Origin", "https://spa.example"); r.Status != 200 {
		t.Fatalf("allowed origin: status %d (body %s)", r.Status, r.Body)
	}
	// A preflight from an allowed origin is answered here, never forwarded.
	r := e.do(c, "OPTIONS", "/api/x", "Origin", "https://spa.example", "Access-Control-Request-Method", "POST", "Access-Control-Request-Headers", "x-csrf")
	if r.Status != http.StatusNoContent || r.Header.Get("Access-Control-Allow-Origin") != "https://spa.example" ||
		r.Header.Get("Access-Control-Allow-Credentials") != "true" || r.Header.Get("Access-Control-Allow-Headers") != "x-csrf" {
		t.Fatalf("preflight = %d %v", r.Status, r.Header)
	}
	if e.up.Count() != 1 {
		t.Fatalf("upstream received %d requests, want 1", e.up.Count())
	}
	// A refusal to an allowed cross-origin caller is readable by it (CORS).
	r = e.do(e.browser(), "GET", "/session", "Origin", "https://spa.example")
	if r.Status != 401 || r.Header.Get("Access-Control-Allow-Origin") != "https://spa.example" {
		t.Fatalf("401 to an allowed origin: %d, ACAO %q", r.Status, r.Header.Get("Access-Control-Allow-Origin"))
	}
}

func TestCSRFUnsafeMethodsOnly(t *testing.T) {
	e := newEnv(t, func(c *bff.Config) { c.CSRFUnsafeMethodsOnly = true })
	c := e.browser()
	e.login(c, op.AliceUser, op.AlicePassword)
	if r := e.do(c, "GET", "/api/x"); r.Status != http.StatusOK {
		t.Fatalf("GET without the header in relaxed mode: %d (body %s)", r.Status, r.Body)
	}
	for _, m := range []string{"POST", "PUT", "PATCH", "DELETE"} {
		e.do(c, m, "/api/x").WantError(t, http.StatusForbidden, "csrf_header_missing")
	}
	// /logout and /token stay guarded in relaxed mode.
	e.do(c, "POST", "/logout").WantError(t, http.StatusForbidden, "csrf_header_missing")
}

func TestSessionTimeouts(t *testing.T) {
	e := newEnv(t, func(c *bff.Config) { c.SessionIdleTimeout, c.SessionMaxLifetime = 600, 3600 })
	c := e.browser()
	e.login(c, op.AliceUser, op.AlicePassword)
	ok := func() {
		t.Helper()
		if r := e.do(c, "GET", "/session"); r.Status != http.StatusOK {
			t.Fatalf("/session: %d (body %s)", r.Status, r.Body)
		}
	}
	// Use every 9 minutes keeps the session past its 10-minute idle time...
	for range 3 {
		e.clock.Advance(9 * time.Minute)
		ok()
	}
	// ...but 11 idle minutes end it.
	e.clock.Advance(11 * time.Minute)
	e.do(c, "GET", "/session").WantError(t, http.StatusUnauthorized, "invalid_session")

	// The absolute lifetime ends a session however busy it is.
	c = e.browser()
	e.login(c, op.AliceUser, op.AlicePassword)
	for range 6 {
		e.clock.Advance(9 * time.Minute)
		ok()
	}
	e.clock.Advance(9 * time.Minute) // 63 minutes after login
	r := e.do(c, "GET", "/session")
	r.WantError(t, http.StatusUnauthorized, "session_expired")
	if !strings.Contains(r.Header.Get("Set-Cookie"), "Max-Age=0") {
		t.Fatal("an expired session's cookie was not cleared")
	}
}

func TestRefreshRejectedEndsSession(t *testing.T) {
	e := newEnv(t, nil)
	c := e.browser()
	e.login(c, op.AliceUser, op.AlicePassword)
	// Revoke the refresh token at the provider, as an admin would.
	rt := e.sessionOf(c).RefreshToken
	form := url.Values{"token": {rt}, "token_type_hint": {"refresh_token"}}
	req, _ := http.NewRequest("POST", e.op.Issuer+"/token/revocation", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(e.op.ClientID, e.op.ClientSecret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("revocation: %v %v", resp, err)
	}
	resp.Body.Close()
	e.clock.Advance(45 * time.Second)
	e.do(c, "GET", "/api/x", "X-CSRF", "1").WantError(t, http.StatusUnauthorized, "session_expired")
	if e.store.Len() != 0 {
		t.Fatal("a session whose refresh token was rejected is still stored")
	}
}

func TestProviderDown(t *testing.T) {
	e := newEnv(t, nil)
	c := e.browser()
	e.login(c, op.AliceUser, op.AlicePassword)
	if err := e.op.Close(); err != nil {
		t.Fatal(err)
	}
	// Inside refresh_skew the refresh fails but the token still works
	// (D8): the request goes on with it.
	s := e.sessionOf(c)
	e.clock.Advance(45 * time.Second)
	if r := e.do(c, "GET", "/api/x", "X-CSRF", "1"); r.Status != http.StatusOK || e.up.Last(t).Header.Get("Authorization") != "Bearer "+s.AccessToken {
		t.Fatalf("inside the skew with the provider down: status %d, want 200 with the still valid token", r.Status)
	}
	// Expired and the provider is gone: 502, session kept.
	e.clock.Advance(16 * time.Second)
	r := e.do(c, "GET", "/api/x", "X-CSRF", "1")
	r.WantError(t, http.StatusBadGateway, "idp_unavailable")
	if e.store.Len() != 1 {
		t.Fatal("the session was dropped because the provider was down")
	}
	if e.up.Count() != 1 {
		t.Fatal("a request was forwarded with an expired token")
	}
	// A new login cannot start without discovery... on a fresh engine.
	fresh, err := bff.New(bff.Config{Issuer: e.op.Issuer, ClientID: "x", ClientSecret: "y",
		RedirectURL: e.bff.URL + "/oauth/callback", CookieKeys: []string{cookieKey}})
	if err != nil {
		t.Fatal(err)
	}
	res := fresh.Handle(context.Background(), &bff.Request{Method: "GET", Path: "/login", Header: http.Header{}})
	if res.Status != http.StatusBadGateway || !strings.Contains(string(res.Body), "idp_unavailable") {
		t.Fatalf("login with the provider down: %d %s", res.Status, res.Body)
	}
}

// failingStore is a store that cannot be reached, to show the engine fails
// closed. (A real Redis outage is tested with the Redis store.)
type failingStore struct{}

var errDown = errors.New("connection refused")

func (failingStore) Get(context.Context, string, time.Duration) ([]byte, error) { return nil, errDown }
func (failingStore) Set(context.Context, string, []byte, time.Duration, ...string) error {
	return errDown
}
func (failingStore) Delete(context.Context, ...string) error             { return errDown }
func (failingStore) TakeIndex(context.Context, string) ([]string, error) { return nil, errDown }

func TestStoreDownFailsClosed(t *testing.T) {
	e := newEnv(t, func(c *bff.Config) { c.Store = failingStore{} })
	c := e.browser()
	id, _ := session.NewID()
	u, _ := url.Parse(e.bff.URL)
	c.Jar.SetCookies(u, []*http.Cookie{{Name: "__Host-bffgate", Value: id.String(), Path: "/", Secure: true}})
	e.do(c, "GET", "/api/x", "X-CSRF", "1").WantError(t, http.StatusServiceUnavailable, "session_store_unavailable")
	e.do(c, "GET", "/session").WantError(t, http.StatusServiceUnavailable, "session_store_unavailable")
	e.do(c, "POST", "/logout", "X-CSRF", "1").WantError(t, http.StatusServiceUnavailable, "session_store_unavailable")
	// Login still starts (it needs no store) and its callback says why it
	// cannot finish.
	cb := e.authorize(c, e.startLogin(c, ""), op.AliceUser, op.AlicePassword)
	e.do(c, "GET", cb).WantError(t, http.StatusServiceUnavailable, "session_store_unavailable")
	if e.up.Count() != 0 {
		t.Fatal("a request was forwarded while the store was down")
	}
}

func TestLoginCookiesDoNotPileUp(t *testing.T) {
	e := newEnv(t, nil)
	c := e.browser()
	for range 10 {
		e.startLogin(c, "")
	}
	u, _ := url.Parse(e.bff.URL)
	n := 0
	for _, ck := range c.Jar.Cookies(u) {
		if strings.HasPrefix(ck.Name, "__Host-bffgate-login-") {
			n++
		}
	}
	if n == 0 || n > 4 {
		t.Fatalf("%d login cookies after 10 abandoned logins, want 1 to 4", n)
	}
	// The newest flow still completes.
	r := e.do(c, "GET", e.authorize(c, e.startLogin(c, ""), op.AliceUser, op.AlicePassword))
	if r.Status != http.StatusFound {
		t.Fatalf("login after abandoned ones: %d (body %s)", r.Status, r.Body)
	}
}

// A provider that hangs is asked once, not once per waiting request, and a
// failure is remembered briefly instead of retried by every request.
func TestDiscoveryIsShared(t *testing.T) {
	var mu sync.Mutex
	calls := 0
	release := make(chan struct{})
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		calls++
		mu.Unlock()
		<-release
		http.Error(w, "down", http.StatusServiceUnavailable)
	}))
	defer hang.Close()
	defer close(release)
	b, err := bff.New(bff.Config{Issuer: hang.URL, ClientID: "c", ClientSecret: "s",
		RedirectURL: "https://app.example/oauth/callback", CookieKeys: []string{cookieKey}, HTTPTimeout: 1})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 10 {
		wg.Go(func() {
			res := b.Handle(context.Background(), &bff.Request{Method: "GET", Path: "/login", Header: http.Header{}})
			if res.Status != http.StatusBadGateway {
				t.Errorf("login with the provider hanging: %d %s", res.Status, res.Body)
			}
		})
	}
	wg.Wait()
	res := b.Handle(context.Background(), &bff.Request{Method: "GET", Path: "/login", Header: http.Header{}})
	if res.Status != http.StatusBadGateway {
		t.Fatalf("login right after a failed discovery: %d", res.Status)
	}
	mu.Lock()
	defer mu.Unlock()
	if calls != 1 {
		t.Fatalf("the provider was asked %d times for discovery, want 1", calls)
	}
}
