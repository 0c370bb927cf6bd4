package bff_test

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/bffgate/bffgate/core/bff"
	"github.com/bffgate/bffgate/core/session"
	"github.com/bffgate/bffgate/core/session/sessiontest"
	"github.com/bffgate/bffgate/tests/flowtest"
	"github.com/bffgate/bffgate/tests/op"
)

// Attacks found by running `bffgate serve` against hostile clients (issue
// #11), each shown here on the engine behind its middleware.

// unsafePaths are paths some server reads as another path: the class of
// D1, where "/public/../api/secret" was decided on as public and then
// served by the upstream as /api/secret.
var unsafePaths = []string{
	"/public/../api/secret",
	"/public/./../api/secret",
	"/public/%2e%2e/api/secret",
	"/public/%2E%2E/api/secret",
	"/public/.%2e/api/secret",
	"/public%2f..%2fapi%2fsecret",
	"/public/%2E%2E%2Fapi/secret",
	"/public/..%2fapi/secret",
	"/public/../../api/secret",
	"/public/..;/api/secret",
	"/public/..%3b/api/secret",
	"/public/%252e%252e/api/secret",
	"/public/%25252e%25252e/api/secret",
	"/public/%5c..%5capi/secret",
	"/public/..%5capi/secret",
	"/public/%c0%ae%c0%ae/api/secret",
	"/public/%00/../api",
	"/public/%0d%0aX-Injected:1",
	"/public/.",
	"/public/..",
	"/api/secret/%",
}

func TestSafePath(t *testing.T) {
	for _, p := range unsafePaths {
		if bff.SafePath(p) {
			t.Errorf("SafePath(%q) = true, want false", p)
		}
	}
	for _, p := range []string{
		"/", "/api/orders", "/api/orders/", "/static/app.3f2a.js", "/a/.well-known/x",
		"/api/files/my%20report.pdf", "/api/users/%40alice", "/api/v1.2/...", "/api/..x",
		"/api/x..", "/api/;jsessionid=1", "/api/caf%C3%A9", "/api//double",
	} {
		if !bff.SafePath(p) {
			t.Errorf("SafePath(%q) = false, want true", p)
		}
	}
}

// rawRequest sends a request with the path exactly as given, as curl's
// --path-as-is does.
func (e *env) rawRequest(c *http.Client, method, path string, header http.Header) *flowtest.Response {
	e.t.Helper()
	return flowtest.DoRaw(e.t, c, method, e.bff.URL, path, header)
}

func TestUnsafePathsRefused(t *testing.T) {
	e := newEnv(t, func(c *bff.Config) { c.PublicPaths = []string{"/public/"} })
	c := e.browser()
	e.login(c, op.AliceUser, op.AlicePassword)
	for _, p := range unsafePaths {
		// Without a session (D1), and with one: the path is refused
		// before any route or public prefix is chosen.
		for _, cl := range []*http.Client{e.browser(), c} {
			r := e.rawRequest(cl, "GET", p, http.Header{"X-Csrf": {"1"}})
			if r.Status != http.StatusBadRequest {
				t.Errorf("GET %s: status %d, want 400 (body %s)", p, r.Status, r.Body)
			}
		}
	}
	if n := e.up.Count(); n != 0 {
		t.Fatalf("the upstream received %d requests with unsafe paths", n)
	}
	// The same prefix with a plain path is public.
	if r := e.rawRequest(e.browser(), "GET", "/public/app.js", nil); r.Status != http.StatusOK {
		t.Fatalf("GET /public/app.js: status %d (body %s)", r.Status, r.Body)
	}
}

// TestPublicPathsStripForgeries is D2: on a public path the client's
// identity headers (and their look-alikes) and the BFF's cookies are
// removed, and no bearer is added; a client's own Authorization (a
// token-mediating SPA calling an API that takes bearer tokens) passes.
func TestPublicPathsStripForgeries(t *testing.T) {
	e := newEnv(t, func(c *bff.Config) { c.PublicPaths = []string{"/public/"} })
	c := e.browser()
	e.login(c, op.AliceUser, op.AlicePassword)
	u, _ := url.Parse(e.bff.URL)
	c.Jar.SetCookies(u, []*http.Cookie{{Name: "theme", Value: "dark"}})
	r := e.do(c, "GET", "/public/x", "X-User", "admin", "X_User", "admin", "x-uSER", "admin",
		"X_Forwarded_For", "10.0.0.1", "Authorization", "Bearer app-token")
	if r.Status != http.StatusOK {
		t.Fatalf("status %d (body %s)", r.Status, r.Body)
	}
	got := e.up.Last(t)
	for name := range got.Header {
		if n := strings.ToLower(strings.ReplaceAll(name, "_", "-")); n == "x-user" || (n == "x-forwarded-for" && name != "X-Forwarded-For") {
			t.Errorf("upstream got %s: %q", name, got.Header[name])
		}
	}
	if ck := got.Header.Get("Cookie"); strings.Contains(ck, "bffgate") || !strings.Contains(ck, "theme=dark") {
		t.Errorf("upstream Cookie = %q, want theme=dark and none of the BFF's", ck)
	}
	if a := got.Header.Get("Authorization"); a != "Bearer app-token" {
		t.Errorf("upstream Authorization = %q, want the client's own", a)
	}
}

// TestManagedHeadersCannotBeUndone is D3: a client naming the BFF's
// headers in Connection would have a proxy remove them after the BFF set
// them, and a look-alike of an identity header reaches CGI-style
// upstreams as the same header.
func TestManagedHeadersCannotBeUndone(t *testing.T) {
	e := newEnv(t, nil)
	c := e.browser()
	e.login(c, op.AliceUser, op.AlicePassword)
	s := e.sessionOf(c)
	r := e.do(c, "GET", "/api/x", "X-CSRF", "1", "Connection", "Authorization, X-User, keep-alive",
		"X_User", "admin", "X-Forwarded_Host", "evil.example")
	if r.Status != http.StatusOK {
		t.Fatalf("status %d (body %s)", r.Status, r.Body)
	}
	got := e.up.Last(t)
	if a := got.Header.Get("Authorization"); a != "Bearer "+s.AccessToken {
		t.Errorf("upstream Authorization = %q, want the session's bearer", a)
	}
	if v := got.Header.Values("X-User"); len(v) != 1 || v[0] != "alice" {
		t.Errorf("upstream X-User = %q, want [alice]", v)
	}
	for name, v := range got.Header {
		if strings.Contains(name, "_") {
			t.Errorf("upstream got the look-alike %s: %q", name, v)
		}
	}
}

// TestMethodsRefused is D12: TRACE would have the upstream reflect the
// bearer to the browser.
func TestMethodsRefused(t *testing.T) {
	e := newEnv(t, func(c *bff.Config) { c.PublicPaths = []string{"/public/"} })
	c := e.browser()
	e.login(c, op.AliceUser, op.AlicePassword)
	for _, m := range []string{"TRACE", "TRACK", "CONNECT", "PROPFIND", "FOO"} {
		for _, p := range []string{"/api/x", "/public/x"} {
			r := e.rawRequest(c, m, p, http.Header{"X-Csrf": {"1"}})
			if r.Status != http.StatusMethodNotAllowed {
				t.Errorf("%s %s: status %d, want 405", m, p, r.Status)
			}
		}
	}
	if n := e.up.Count(); n != 0 {
		t.Fatalf("the upstream received %d requests", n)
	}
	if _, err := bff.New(bff.Config{Issuer: "https://idp.example", ClientID: "c", ClientSecret: "s",
		RedirectURL: "https://app.example/oauth/callback", CookieKeys: []string{cookieKey},
		AllowedMethods: []string{"GET", "TRACE"}}); err == nil || !strings.Contains(err.Error(), "allowed_methods[1]") {
		t.Fatalf("allowed_methods with TRACE: err = %v, want an error naming allowed_methods[1]", err)
	}
}

// TestOriginScheme is D13: an Origin with this host but another scheme is
// another origin.
func TestOriginScheme(t *testing.T) {
	e := newEnv(t, nil)
	c := e.browser()
	e.login(c, op.AliceUser, op.AlicePassword)
	host := strings.TrimPrefix(e.bff.URL, "http://")
	for _, o := range []string{"https://" + host, "evil://" + host, "HTTP://" + host + ".evil"} {
		r := e.do(c, "GET", "/api/x", "X-CSRF", "1", "Origin", o)
		r.WantError(t, http.StatusForbidden, "origin_not_allowed")
	}
	if r := e.do(c, "GET", "/api/x", "X-CSRF", "1", "Origin", "http://"+host); r.Status != http.StatusOK {
		t.Fatalf("same origin: status %d (body %s)", r.Status, r.Body)
	}
}

// TestCORSOnForwardedAnswers: a cross-origin SPA can read the API's answer,
// not only the BFF's own.
func TestCORSOnForwardedAnswers(t *testing.T) {
	const spa = "https://spa.example"
	e := newEnv(t, func(c *bff.Config) { c.AllowedOrigins = []string{spa} })
	c := e.browser()
	e.login(c, op.AliceUser, op.AlicePassword)
	r := e.do(c, "GET", "/api/x", "X-CSRF", "1", "Origin", spa)
	if r.Status != http.StatusOK || r.Header.Get("Access-Control-Allow-Origin") != spa || r.Header.Get("Access-Control-Allow-Credentials") != "true" {
		t.Fatalf("status %d, CORS headers %q", r.Status, r.Header)
	}
	if r := e.do(c, "GET", "/api/x", "X-CSRF", "1"); r.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("a same-origin answer got CORS headers: %q", r.Header)
	}
}

// TestReturnToCookieBomb is D7: returnTo of many "<" was sealed as six
// bytes each, and four login cookies then locked the user out with 431s
// that set no cookie.
func TestReturnToCookieBomb(t *testing.T) {
	e := newEnv(t, nil)
	c := e.browser()
	long := "/" + strings.Repeat("%3C", 470)
	for range 4 {
		e.startLogin(c, "?returnTo="+long)
	}
	u, _ := url.Parse(e.bff.URL)
	total := 0
	for _, ck := range c.Jar.Cookies(u) {
		total += len(ck.Name) + len(ck.Value) + 2
	}
	if total > 8<<10-512 {
		t.Fatalf("four login cookies are %d bytes: they must leave room under 8 KiB", total)
	}
	if r := e.do(c, "GET", "/login?returnTo=/"+strings.Repeat("a", 1100)); r.Status != http.StatusBadRequest {
		t.Fatalf("returnTo of 1100 bytes: status %d, want 400", r.Status)
	}

	// A Cookie header over the limit gets a 431 that deletes the BFF's
	// login cookies, so the browser recovers.
	req, _ := http.NewRequest("GET", e.bff.URL+"/session", nil)
	req.Header.Set("Cookie", "__Host-bffgate-login-a=1; __Host-bffgate-login-b=2; big="+strings.Repeat("x", 17<<10))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("status %d, want 431", resp.StatusCode)
	}
	cleared := map[string]bool{}
	for _, ck := range resp.Cookies() {
		if ck.MaxAge < 0 {
			cleared[ck.Name] = true
		}
	}
	if !cleared["__Host-bffgate-login-a"] || !cleared["__Host-bffgate-login-b"] || len(cleared) != 2 {
		t.Fatalf("431 deletes %v, want both login cookies and nothing else", cleared)
	}
}

// TestOutageLogsAreBounded is D10: a 12-s store outage under load wrote
// 170,111 identical ERROR lines.
func TestOutageLogsAreBounded(t *testing.T) {
	var buf bytes.Buffer
	clock := &sessiontest.OffsetClock{}
	b, err := bff.New(bff.Config{Issuer: "https://idp.example", ClientID: "c", ClientSecret: "s",
		RedirectURL: "https://app.example/oauth/callback", CookieKeys: []string{cookieKey},
		Store: failingStore{}, Now: clock.Now, Logger: slog.New(slog.NewTextHandler(&buf, nil))})
	if err != nil {
		t.Fatal(err)
	}
	id, _ := session.NewID()
	req := &bff.Request{Method: "GET", Host: "app.example", Path: "/api/x",
		Header: http.Header{"Cookie": {"__Host-bffgate=" + id.String()}, "X-Csrf": {"1"}}}
	for range 1000 {
		if r := b.Handle(context.Background(), req); r.Status != http.StatusServiceUnavailable {
			t.Fatalf("status %d, want 503", r.Status)
		}
	}
	clock.Advance(2 * time.Second)
	b.Handle(context.Background(), req)
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) > 4 || !strings.Contains(lines[len(lines)-1], "suppressed=") {
		t.Fatalf("1001 failed requests logged %d lines, want a few, the last counting the rest:\n%s", len(lines), buf.String())
	}
}

// TestSessionProbe: the JS client's /session?probe=1 answers a signed-out
// visitor 200 {"authenticated":false} (no console error), and nothing else
// changes: plain /session is 401, and a probe with a session is the
// session.
func TestSessionProbe(t *testing.T) {
	e := newEnv(t, nil)
	c := e.browser()
	r := e.do(c, "GET", "/session?probe=1")
	if r.Status != http.StatusOK || r.JSON(t)["authenticated"] != false {
		t.Fatalf("probe signed out: %d %s", r.Status, r.Body)
	}
	e.do(c, "GET", "/session").WantError(t, http.StatusUnauthorized, "unauthenticated")
	e.login(c, op.AliceUser, op.AlicePassword)
	if r := e.do(c, "GET", "/session?probe=1"); r.Status != http.StatusOK || r.JSON(t)["authenticated"] != true {
		t.Fatalf("probe signed in: %d %s", r.Status, r.Body)
	}
}

// TestLoginErrorsLandInTheApp (issue #16): a failed callback that is a
// page load sends the browser back to the app with the error code; a
// script still gets JSON.
func TestLoginErrorsLandInTheApp(t *testing.T) {
	// Without PAR the authorization URL shows the state the test needs.
	noPAR := func(c *bff.Config) { c.PushedAuthorization = bff.PAROff }
	e := newEnv(t, noPAR)
	nav := []string{"Sec-Fetch-Mode", "navigate", "Accept", "text/html"}
	t.Run("consent denied", func(t *testing.T) {
		c := e.browser()
		state := mustQuery(t, e.startLogin(c, "?returnTo=%2Fapp%3Fx%3D1%23top"), "state")
		r := e.do(c, "GET", "/oauth/callback?error=access_denied&error_description=secret%20stuff&state="+state+"&iss="+url.QueryEscape(e.op.Issuer), nav...)
		if r.Status != http.StatusFound || r.Header.Get("Location") != "/app?x=1&error=login_failed&provider_error=access_denied#top" {
			t.Fatalf("status %d, Location %q", r.Status, r.Header.Get("Location"))
		}
		if ck := r.Header.Values("Set-Cookie"); len(ck) != 1 || !strings.Contains(ck[0], "Max-Age=0") {
			t.Fatalf("Set-Cookie %q, want the login cookie deleted", ck)
		}
	})
	t.Run("unknown state", func(t *testing.T) {
		r := e.do(e.browser(), "GET", "/oauth/callback?code=x&state=forged", nav...)
		if r.Status != http.StatusFound || r.Header.Get("Location") != "/?error=invalid_state" {
			t.Fatalf("status %d, Location %q", r.Status, r.Header.Get("Location"))
		}
	})
	t.Run("script", func(t *testing.T) {
		e.do(e.browser(), "GET", "/oauth/callback?code=x&state=forged", "Sec-Fetch-Mode", "cors").WantError(t, http.StatusBadRequest, "invalid_state")
	})
	t.Run("login_error_path", func(t *testing.T) {
		e := newEnv(t, func(c *bff.Config) { noPAR(c); c.LoginErrorPath = "/signin" })
		c := e.browser()
		state := mustQuery(t, e.startLogin(c, "?returnTo=/app"), "state")
		r := e.do(c, "GET", "/oauth/callback?error=login_required&state="+state+"&iss="+url.QueryEscape(e.op.Issuer), nav...)
		if r.Header.Get("Location") != "/signin?error=login_failed&provider_error=login_required" {
			t.Fatalf("Location %q", r.Header.Get("Location"))
		}
	})
}

func mustQuery(t *testing.T, raw, name string) string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil || u.Query().Get(name) == "" {
		t.Fatalf("%q has no %s", raw, name)
	}
	return url.QueryEscape(u.Query().Get(name))
}

// TestStreamsByOrigin (issue #16): a WebSocket handshake or an
// EventSource request cannot carry the CSRF header, so it is authorised
// by its Origin (or, same-origin EventSource, Fetch Metadata); a
// cross-site WebSocket hijacking attempt is refused.
func TestStreamsByOrigin(t *testing.T) {
	e := newEnv(t, nil)
	c := e.browser()
	e.login(c, op.AliceUser, op.AlicePassword)
	self := e.bff.URL
	ws := []string{"Upgrade", "websocket", "Connection", "Upgrade", "Sec-WebSocket-Version", "13", "Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="}
	for _, tt := range []struct {
		name   string
		header []string
		want   int
	}{
		{"WebSocket from this site", append([]string{"Origin", self}, ws...), http.StatusOK},
		{"WebSocket from another site (CSWSH)", append([]string{"Origin", "https://evil.example"}, ws...), http.StatusForbidden},
		{"WebSocket without Origin", ws, http.StatusForbidden},
		{"EventSource same-origin", []string{"Accept", "text/event-stream", "Sec-Fetch-Site", "same-origin"}, http.StatusOK},
		{"EventSource cross-site", []string{"Accept", "text/event-stream", "Origin", "https://evil.example", "Sec-Fetch-Site", "cross-site"}, http.StatusForbidden},
		{"EventSource without provenance", []string{"Accept", "text/event-stream"}, http.StatusForbidden},
		{"plain GET without CSRF header", []string{"Origin", self}, http.StatusForbidden},
	} {
		t.Run(tt.name, func(t *testing.T) {
			before := e.up.Count()
			r := e.do(c, "GET", "/api/stream", tt.header...)
			if r.Status != tt.want {
				t.Fatalf("status %d, want %d (body %s)", r.Status, tt.want, r.Body)
			}
			if forwarded := e.up.Count() > before; forwarded != (tt.want == http.StatusOK) {
				t.Fatalf("forwarded = %v", forwarded)
			}
		})
	}
}

// TestPushedAuthorization (RFC 9126): with a provider that offers PAR the
// browser only carries client_id and request_uri, so it can neither read
// nor change the PKCE challenge, nonce or scopes; "off" sends them as
// before.
func TestPushedAuthorization(t *testing.T) {
	e := newEnv(t, nil)
	c := e.browser()
	u, err := url.Parse(e.startLogin(c, ""))
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	if len(q) != 2 || q.Get("client_id") == "" || !strings.HasPrefix(q.Get("request_uri"), "urn:ietf:params:oauth:request_uri:") {
		t.Fatalf("authorization URL query = %v, want client_id and request_uri only", q)
	}
	if got := e.login(c, op.AliceUser, op.AlicePassword); got != "/app?x=1" {
		t.Fatalf("login with PAR ended at %q", got)
	}
	off := newEnv(t, func(c *bff.Config) { c.PushedAuthorization = bff.PAROff })
	u, _ = url.Parse(off.startLogin(off.browser(), ""))
	if q := u.Query(); q.Get("code_challenge") == "" || q.Get("request_uri") != "" {
		t.Fatalf("pushed_authorization off: query %v, want the request itself", q)
	}
	if _, err := bff.New(bff.Config{Issuer: "https://idp.example", ClientID: "c", ClientSecret: "s",
		RedirectURL: "https://app.example/oauth/callback", CookieKeys: []string{cookieKey},
		PushedAuthorization: "sometimes"}); err == nil || !strings.Contains(err.Error(), "pushed_authorization") {
		t.Fatalf("a bad pushed_authorization: err = %v", err)
	}
}

// TestLogoutRevokesRefreshToken (RFC 7009): after logout the session's
// refresh token is dead at the provider too, so a copy of the session
// (a store backup, a stolen dump) cannot be refreshed.
func TestLogoutRevokesRefreshToken(t *testing.T) {
	e := newEnv(t, nil)
	c := e.browser()
	e.login(c, op.AliceUser, op.AlicePassword)
	rt := e.sessionOf(c).RefreshToken
	ctx := context.Background()
	if in, err := e.op.Introspect(ctx, rt); err != nil || in["active"] != true {
		t.Fatalf("before logout: introspection %v, %v; want active", in, err)
	}
	if r := e.do(c, "POST", "/logout", "X-CSRF", "1"); r.Status != http.StatusOK {
		t.Fatalf("logout: %d %s", r.Status, r.Body)
	}
	eventually(t, "the refresh token revoked", func() bool {
		in, err := e.op.Introspect(ctx, rt)
		return err == nil && in["active"] == false
	})
}
