package bff_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bffgate/bffgate/core/bff"
	"github.com/bffgate/bffgate/core/session"
	"github.com/bffgate/bffgate/core/session/memstore"
	"github.com/bffgate/bffgate/core/session/sessiontest"
	"github.com/bffgate/bffgate/tests/flowtest"
	"github.com/bffgate/bffgate/tests/op"
)

// These tests run the engine behind its net/http middleware, in front of
// an httptest upstream, against the real OpenID Provider of tests/op.

const cookieKey = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="

type env struct {
	t     *testing.T
	op    *op.Server
	bff   *httptest.Server
	up    *flowtest.Upstream
	upURL string
	clock *sessiontest.OffsetClock
	store *memstore.Store
	eng   *bff.Engine
	// handler serves the BFF's requests: the engine's Middleware in
	// front of the upstream, unless a test puts another in place.
	handler http.Handler
}

// newEnv starts an OP, an upstream and the BFF in front of it. edit may
// change the config before the engine is built.
func newEnv(t *testing.T, edit func(c *bff.Config)) *env {
	t.Helper()
	var edit2 func(*bff.Config, *op.Server)
	if edit != nil {
		edit2 = func(c *bff.Config, _ *op.Server) { edit(c) }
	}
	return newEnvOP(t, nil, edit2)
}

// newEnvOP is newEnv with an OP of its own options: opEdit may change
// them before the OP starts, and edit sees the started OP.
func newEnvOP(t *testing.T, opEdit func(o *op.Options), edit func(c *bff.Config, s *op.Server)) *env {
	t.Helper()
	e := &env{t: t, clock: &sessiontest.OffsetClock{}, up: &flowtest.Upstream{}}
	upSrv := httptest.NewServer(e.up)
	t.Cleanup(upSrv.Close)
	e.upURL = upSrv.URL
	e.bff = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { e.handler.ServeHTTP(w, r) }))
	t.Cleanup(e.bff.Close)
	opts := op.Options{
		RedirectURIs:           []string{e.bff.URL + "/oauth/callback"},
		PostLogoutRedirectURIs: []string{e.bff.URL + "/logout/callback"},
		BackchannelLogoutURI:   e.bff.URL + "/backchannel-logout",
		Stderr:                 io.Discard,
	}
	if opEdit != nil {
		opEdit(&opts)
	}
	e.op = op.StartT(t, opts)
	e.store = memstore.New(e.clock.Now)
	cfg := bff.Config{
		Issuer: e.op.Issuer, ClientID: e.op.ClientID, ClientSecret: e.op.ClientSecret,
		RedirectURL:           e.bff.URL + "/oauth/callback",
		PostLogoutRedirectURL: e.bff.URL + "/logout/callback",
		CookieKeys:            []string{cookieKey},
		IdentityHeaders:       []bff.IdentityHeader{{Header: "X-User", Claim: "sub"}},
		Store:                 e.store,
		Now:                   e.clock.Now,
	}
	if edit != nil {
		edit(&cfg, e.op)
	}
	var err error
	if e.eng, err = bff.New(cfg); err != nil {
		t.Fatal(err)
	}
	target, _ := url.Parse(e.upURL)
	e.handler = e.eng.Middleware(httputil.NewSingleHostReverseProxy(target))
	return e
}

// browser is one browser profile: a cookie jar, redirects not followed.
func (e *env) browser() *http.Client { return op.Browser() }

// do sends a request to the BFF; path is a path on it or an absolute URL;
// header pairs are name, value, ...
func (e *env) do(c *http.Client, method, path string, header ...string) *flowtest.Response {
	e.t.Helper()
	return flowtest.Do(e.t, c, method, flowtest.Resolve(e.bff.URL, path), header...)
}

// startLogin GETs /login and returns the provider's authorization URL.
func (e *env) startLogin(c *http.Client, query string) string {
	e.t.Helper()
	r := e.do(c, "GET", "/login"+query)
	if r.Status != http.StatusFound {
		e.t.Fatalf("/login status = %d, want 302 (body %s)", r.Status, r.Body)
	}
	return r.Header.Get("Location")
}

// authorize logs user in at the provider for authURL and returns the
// callback URL, not yet requested.
func (e *env) authorize(c *http.Client, authURL, user, password string) string {
	e.t.Helper()
	return flowtest.Authorize(e.t, e.op, c, authURL, user, password)
}

// login runs the whole flow for user and returns where the callback sent
// the browser.
func (e *env) login(c *http.Client, user, password string) string {
	e.t.Helper()
	return flowtest.Login(e.t, e.op, c, e.bff.URL+"/login?returnTo=%2Fapp%3Fx%3D1", user, password)
}

func (e *env) sessionCookie(c *http.Client) string {
	return flowtest.Cookie(c, e.bff.URL, "__Host-bffgate")
}

// sessionOf reads the session of a browser from the store, as the test
// owner of the store can.
func (e *env) sessionOf(c *http.Client) *session.Session {
	e.t.Helper()
	id, err := session.ParseID(e.sessionCookie(c))
	if err != nil {
		e.t.Fatalf("session cookie: %v", err)
	}
	raw, err := e.store.Get(context.Background(), id.StoreKey(), 0)
	if err != nil {
		e.t.Fatalf("session not in the store: %v", err)
	}
	s, err := session.Open(id, raw)
	if err != nil {
		e.t.Fatal(err)
	}
	return s
}

func (e *env) grants(kind string) int {
	e.t.Helper()
	return flowtest.Grants(e.t, e.op, kind)
}

func TestFlow(t *testing.T) {
	e := newEnv(t, nil)
	c := e.browser()

	if got := e.login(c, op.AliceUser, op.AlicePassword); got != "/app?x=1" {
		t.Fatalf("after login the browser goes to %q, want /app?x=1", got)
	}

	// The session endpoint shows the user, and nothing of the tokens.
	r := e.do(c, "GET", "/session")
	if r.Status != http.StatusOK {
		t.Fatalf("/session status = %d (body %s)", r.Status, r.Body)
	}
	info := r.JSON(t)
	user, _ := info["user"].(map[string]any)
	if info["authenticated"] != true || user["name"] != "Alice Example" || user["email"] != "alice@example.com" || info["mode"] != "bff" {
		t.Fatalf("/session = %s", r.Body)
	}
	s := e.sessionOf(c)
	for _, secret := range []string{s.AccessToken, s.RefreshToken} {
		if secret == "" || strings.Contains(string(r.Body), secret) {
			t.Fatalf("/session reveals a token, or the session lacks one: %s", r.Body)
		}
	}
	if s.IDToken != "" {
		t.Fatal("the session keeps the ID token without logout_id_token_hint")
	}

	// An API request reaches the upstream with the bearer, without the
	// session cookie, with the client's other cookies, and with the real
	// identity header in place of a forged one.
	u, _ := url.Parse(e.bff.URL)
	c.Jar.SetCookies(u, []*http.Cookie{{Name: "theme", Value: "dark"}})
	r = e.do(c, "POST", "/api/orders?page=2", "X-CSRF", "1", "X-User", "admin")
	if r.Status != http.StatusOK {
		t.Fatalf("API status = %d (body %s)", r.Status, r.Body)
	}
	got := e.up.Last(t)
	if want := "Bearer " + s.AccessToken; got.Header.Get("Authorization") != want {
		t.Fatalf("upstream Authorization = %q, want the session's access token", got.Header.Get("Authorization"))
	}
	if ck := got.Header.Get("Cookie"); strings.Contains(ck, "bffgate") || !strings.Contains(ck, "theme=dark") {
		t.Fatalf("upstream Cookie = %q, want theme=dark only", ck)
	}
	if v := got.Header.Values("X-User"); len(v) != 1 || v[0] != "alice" {
		t.Fatalf("upstream X-User = %q, want [alice] (the forged value removed)", v)
	}
	if got.URL.Path != "/api/orders" || got.URL.RawQuery != "page=2" || got.Method != "POST" {
		t.Fatalf("upstream got %s %s", got.Method, got.URL)
	}

	// The access token nears expiry (the OP issues 60 s tokens): the next
	// request refreshes it, and concurrent requests share one refresh.
	e.clock.Advance(45 * time.Second)
	before := e.grants(op.GrantRefreshToken)
	var wg sync.WaitGroup
	statuses := make(chan int, 20)
	for range 20 {
		wg.Go(func() {
			req, _ := http.NewRequest("GET", e.bff.URL+"/api/orders", nil)
			req.Header.Set("X-CSRF", "1")
			resp, err := c.Do(req)
			if err != nil {
				statuses <- 0
				return
			}
			resp.Body.Close()
			statuses <- resp.StatusCode
		})
	}
	wg.Wait()
	close(statuses)
	for st := range statuses {
		if st != http.StatusOK {
			t.Fatalf("an API request during refresh got %d, want 200", st)
		}
	}
	if n := e.grants(op.GrantRefreshToken) - before; n != 1 {
		t.Fatalf("the provider saw %d refresh grants for 20 concurrent requests, want 1", n)
	}
	s2 := e.sessionOf(c)
	if s2.AccessToken == s.AccessToken || s2.RefreshToken == s.RefreshToken {
		t.Fatal("refresh did not replace the access token and the rotated refresh token")
	}
	if got := e.up.Last(t).Header.Get("Authorization"); got != "Bearer "+s2.AccessToken {
		t.Fatal("the upstream did not get the refreshed access token")
	}
	if e.sessionCookie(c) == "" {
		t.Fatal("refresh lost the session cookie")
	}

	// The token endpoint is off in bff mode.
	e.do(c, "GET", "/token", "X-CSRF", "1").WantError(t, http.StatusNotFound, "not_found")

	// Logout needs the CSRF header, ends the session, clears the cookie and
	// gives the provider's end-session URL.
	e.do(c, "POST", "/logout").WantError(t, http.StatusForbidden, "csrf_header_missing")
	r = e.do(c, "POST", "/logout", "X-CSRF", "1")
	if r.Status != http.StatusOK {
		t.Fatalf("/logout status = %d (body %s)", r.Status, r.Body)
	}
	lu, _ := url.Parse(r.JSON(t)["logoutUrl"].(string))
	if !strings.HasPrefix(lu.String(), e.op.Issuer) || lu.Query().Get("client_id") != e.op.ClientID ||
		lu.Query().Get("post_logout_redirect_uri") != e.bff.URL+"/logout/callback" {
		t.Fatalf("logoutUrl = %s", lu)
	}
	if !strings.Contains(r.Header.Get("Set-Cookie"), "Max-Age=0") {
		t.Fatalf("logout did not clear the cookie: %q", r.Header.Values("Set-Cookie"))
	}
	if lu.Query().Has("id_token_hint") {
		t.Fatal("logout handed the ID token to the browser without logout_id_token_hint")
	}
	if e.store.Len() != 0 {
		t.Fatalf("the store still holds %d sessions after logout", e.store.Len())
	}
	e.do(c, "GET", "/api/orders", "X-CSRF", "1").WantError(t, http.StatusUnauthorized, "unauthenticated")
	back, err := e.op.ConfirmLogout(context.Background(), c, lu.String())
	if err != nil {
		t.Fatal(err)
	}
	r = e.do(c, "GET", back.String())
	if r.Status != http.StatusFound || r.Header.Get("Location") != "/" {
		t.Fatalf("logout callback = %d %q, want 302 to /", r.Status, r.Header.Get("Location"))
	}
}

func TestLogoutIDTokenHint(t *testing.T) {
	e := newEnv(t, func(c *bff.Config) { c.LogoutIDTokenHint = true })
	c := e.browser()
	e.login(c, op.AliceUser, op.AlicePassword)
	idToken := e.sessionOf(c).IDToken
	r := e.do(c, "POST", "/logout", "X-CSRF", "1")
	lu, _ := url.Parse(r.JSON(t)["logoutUrl"].(string))
	if lu.Query().Get("id_token_hint") != idToken {
		t.Fatalf("logoutUrl %s lacks the id_token_hint asked for", lu)
	}
	back, err := e.op.ConfirmLogout(context.Background(), c, lu.String())
	if err != nil || back.String() != e.bff.URL+"/logout/callback" {
		t.Fatalf("logout with the hint came back to %v, %v", back, err)
	}
}

func TestCookieAttributes(t *testing.T) {
	e := newEnv(t, nil)
	c := e.browser()
	r := e.do(c, "GET", e.authorize(c, e.startLogin(c, ""), op.AliceUser, op.AlicePassword))
	var sessionCookie string
	for _, sc := range r.Header.Values("Set-Cookie") {
		if strings.HasPrefix(sc, "__Host-bffgate=") {
			sessionCookie = sc
		}
	}
	for _, attr := range []string{"; Path=/", "; Secure", "; HttpOnly", "; SameSite=Lax"} {
		if !strings.Contains(sessionCookie, attr) {
			t.Errorf("session cookie %q lacks %q", sessionCookie, attr)
		}
	}
	if strings.Contains(strings.ToLower(sessionCookie), "domain=") {
		t.Errorf("session cookie %q has a Domain", sessionCookie)
	}
	if v := e.sessionCookie(c); len(v) != 43 {
		t.Errorf("session cookie value %q is not a 256-bit ID", v)
	}
}

func TestTokenMediating(t *testing.T) {
	e := newEnv(t, func(c *bff.Config) { c.Mode = bff.ModeTokenMediating })
	c := e.browser()
	e.login(c, op.AliceUser, op.AlicePassword)
	s := e.sessionOf(c)
	ctx := context.Background()

	e.do(c, "GET", "/token").WantError(t, http.StatusForbidden, "csrf_header_missing")

	// The session's own token is short-lived enough: handed out as is.
	r := e.do(c, "GET", "/token", "X-CSRF", "1")
	if r.Status != http.StatusOK {
		t.Fatalf("/token status = %d (body %s)", r.Status, r.Body)
	}
	tok := r.JSON(t)
	if tok["access_token"] != s.AccessToken || tok["token_type"] != "Bearer" {
		t.Fatalf("/token = %v, want the session's access token", tok)
	}
	if exp, _ := tok["expires_in"].(float64); exp <= 0 || exp > 60 {
		t.Fatalf("expires_in = %v, want within the token's 60 s", tok["expires_in"])
	}
	if _, has := tok["refresh_token"]; has || strings.Contains(string(r.Body), s.RefreshToken) {
		t.Fatal("/token revealed the refresh token")
	}
	if r.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("/token Cache-Control = %q, want no-store", r.Header.Get("Cache-Control"))
	}

	// Asking for less scope gets a narrower token by RFC 8693 exchange.
	before := e.grants(op.GrantTokenExchange)
	r = e.do(c, "GET", "/token?scope=openid", "X-CSRF", "1")
	if r.Status != http.StatusOK {
		t.Fatalf("/token?scope=openid status = %d (body %s)", r.Status, r.Body)
	}
	narrow := r.JSON(t)
	if narrow["access_token"] == s.AccessToken || narrow["scope"] != "openid" {
		t.Fatalf("narrowed token = %v", narrow)
	}
	if e.grants(op.GrantTokenExchange) != before+1 {
		t.Fatal("the provider saw no token exchange")
	}
	intro, err := e.op.Introspect(ctx, narrow["access_token"].(string))
	if err != nil {
		t.Fatal(err)
	}
	if intro["active"] != true || intro["scope"] != "openid" || intro["sub"] != "alice" {
		t.Fatalf("introspection of the narrowed token = %v", intro)
	}

	// More scope than the session has is refused before asking anyone.
	e.do(c, "GET", "/token?scope=openid+admin", "X-CSRF", "1").WantError(t, http.StatusBadRequest, "invalid_scope")

	// The API path still works with the cookie in this mode.
	if r := e.do(c, "GET", "/api/x", "X-CSRF", "1"); r.Status != http.StatusOK {
		t.Fatalf("API status = %d", r.Status)
	}
}

func TestTokenMaxLifetimeExchanges(t *testing.T) {
	e := newEnv(t, func(c *bff.Config) {
		c.Mode = bff.ModeTokenMediating
		c.TokenMaxLifetime = 10 // the OP's tokens live 60 s: too long to hand out
	})
	c := e.browser()
	e.login(c, op.AliceUser, op.AlicePassword)
	r := e.do(c, "GET", "/token", "X-CSRF", "1")
	if r.Status != http.StatusOK {
		t.Fatalf("/token status = %d (body %s)", r.Status, r.Body)
	}
	if tok := r.JSON(t); tok["access_token"] == e.sessionOf(c).AccessToken {
		t.Fatal("a token living longer than token_max_lifetime was handed out instead of exchanged")
	}
}

func TestBackchannelLogout(t *testing.T) {
	e := newEnv(t, nil)
	a := e.browser()
	e.login(a, op.AliceUser, op.AlicePassword)

	// A second BFF session in another browser profile that shares the OP
	// session (the OP's cookies copied, the BFF's not).
	b := e.browser()
	opURL, _ := url.Parse(e.op.Issuer)
	var shared []*http.Cookie
	for _, ck := range a.Jar.Cookies(opURL) {
		if !strings.HasPrefix(ck.Name, "__Host-bffgate") {
			shared = append(shared, ck)
		}
	}
	b.Jar.SetCookies(opURL, shared)
	e.login(b, op.AliceUser, op.AlicePassword)
	if e.sessionCookie(a) == e.sessionCookie(b) || e.store.Len() != 2 {
		t.Fatalf("want two sessions, store has %d", e.store.Len())
	}
	if e.sessionOf(a).SID == "" || e.sessionOf(a).SID != e.sessionOf(b).SID {
		t.Fatal("the two sessions do not share the OP's sid")
	}

	r := e.do(a, "POST", "/logout", "X-CSRF", "1")
	before, _ := e.op.Stats(context.Background())
	if _, err := e.op.ConfirmLogout(context.Background(), a, r.JSON(t)["logoutUrl"].(string)); err != nil {
		t.Fatal(err)
	}
	after, _ := e.op.Stats(context.Background())
	if after.Backchannel <= before.Backchannel {
		t.Fatal("the provider sent no back-channel logout")
	}
	e.do(b, "GET", "/api/x", "X-CSRF", "1").WantError(t, http.StatusUnauthorized, "invalid_session")
	if e.store.Len() != 0 {
		t.Fatalf("store still holds %d sessions", e.store.Len())
	}
}

func TestBackchannelLogoutRejects(t *testing.T) {
	// The session keeps its ID token, which the test replays as a logout token.
	e := newEnv(t, func(c *bff.Config) { c.LogoutIDTokenHint = true })
	c := e.browser()
	e.login(c, op.AliceUser, op.AlicePassword)
	idToken := e.sessionOf(c).IDToken
	post := func(contentType, body string) *flowtest.Response {
		req, _ := http.NewRequest("POST", e.bff.URL+"/backchannel-logout", strings.NewReader(body))
		req.Header.Set("Content-Type", contentType)
		return flowtest.Send(t, http.DefaultClient, req)
	}
	for _, tt := range []struct{ name, contentType, body string }{
		{"no token", "application/x-www-form-urlencoded", ""},
		{"not a JWT", "application/x-www-form-urlencoded", "logout_token=abc"},
		// A real, validly signed ID token is not a logout token (no event).
		{"ID token", "application/x-www-form-urlencoded", "logout_token=" + idToken},
		{"JSON body", "application/json", `{"logout_token":"x"}`},
		{"too large", "application/x-www-form-urlencoded", "logout_token=" + strings.Repeat("a", 70<<10)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			post(tt.contentType, tt.body).WantError(t, http.StatusBadRequest, "invalid_request")
		})
	}
	if r := e.do(c, "GET", "/api/x", "X-CSRF", "1"); r.Status != http.StatusOK {
		t.Fatalf("the session did not survive rejected logout tokens: %d", r.Status)
	}
}
