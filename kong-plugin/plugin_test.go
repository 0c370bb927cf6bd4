package main

// Kong itself (OpenResty) cannot run on the machines these tests run on.
// What stands in for it here: a fake Kong (binary_test.go) that answers
// the plugin's PDK calls as Kong 3.9's pb_rpc.lua does — every call is a
// protobuf message, counted with its bytes — against the real OpenID
// Provider of tests/op: over a pipe to the plugin in this process
// (harness), or over the built binary's unix socket (viaKong).

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Kong/go-pdk"

	"github.com/bffgate/bffgate/core/bff"
	"github.com/bffgate/bffgate/core/session/redisstore"
	"github.com/bffgate/bffgate/core/session/sessiontest"
	"github.com/bffgate/bffgate/tests/op"
)

// The app as the browser sees it through Kong. The harness never dials
// it; the OP only checks that the redirect URIs are registered.
const (
	appOrigin = "https://app.example.test"
	cookieKey = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
)

var (
	opOnce sync.Once
	opSrv  *op.Server
	opErr  error
)

func TestMain(m *testing.M) {
	if which := os.Getenv(benchServeEnv); which != "" {
		benchServe(which) // a plugin server for BenchmarkKong, until it is killed
		return
	}
	var dir string
	dir, buildErr = buildPlugin()
	code := m.Run()
	if opSrv != nil {
		opSrv.Close()
	}
	if dir != "" {
		os.RemoveAll(dir)
	}
	os.Exit(code)
}

// provider returns the test OP shared by this package's tests (one Node
// process instead of one per test).
func provider(t testing.TB) *op.Server {
	t.Helper()
	opOnce.Do(func() {
		opSrv, opErr = op.Start(op.Options{
			RedirectURIs:           []string{appOrigin + "/oauth/callback"},
			PostLogoutRedirectURIs: []string{appOrigin + "/logout/callback"},
			Stderr:                 io.Discard,
		})
	})
	if opErr != nil {
		t.Fatalf("starting the test OpenID Provider (run `npm ci --prefix tests/op` once): %v", opErr)
	}
	return opSrv
}

// newConfig is a plugin instance's config against the shared OP, with its
// own clock (which also gives it an engine of its own).
func newConfig(t *testing.T, edit func(*Config)) (*Config, *sessiontest.OffsetClock) {
	srv := provider(t)
	clk := &sessiontest.OffsetClock{}
	c := &Config{
		Issuer:                srv.Issuer,
		ClientID:              srv.ClientID,
		ClientSecret:          srv.ClientSecret,
		RedirectURL:           appOrigin + "/oauth/callback",
		PostLogoutRedirectURL: appOrigin + "/logout/callback",
		CookieKeys:            []string{cookieKey},
		IdentityHeaders:       []bff.IdentityHeader{{Header: "X-User", Claim: "sub"}},
		Now:                   clk.Now,
	}
	if edit != nil {
		edit(c)
	}
	return c, clk
}

// answer is what became of one request.
type answer struct {
	exited   bool
	status   int
	header   http.Header
	body     []byte
	upstream http.Header // the service request's headers, when forwarded
	calls    []string    // the PDK calls the plugin made, without "kong."
	// roundTrips is how many times the plugin waited for Kong's answers:
	// calls it writes together before it waits are one round trip.
	roundTrips int
	toKong     int      // bytes of those calls on the wire: method and argument frames
	fromKong   int      // bytes of Kong's answers to them
	logged     []string // the kong.log.err lines
}

func (a *answer) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(a.body, &m); err != nil {
		t.Fatalf("body %q is not JSON: %v", a.body, err)
	}
	return m
}

// wantError asserts an answer with this status and JSON error code.
func (a *answer) wantError(t *testing.T, status int, code string) {
	t.Helper()
	if !a.exited || a.status != status {
		t.Fatalf("status = %d (exited %v), want %d (body %s)", a.status, a.exited, status, a.body)
	}
	if got := a.json(t)["error"]; got != code {
		t.Fatalf("error = %v, want %q (body %s)", got, code, a.body)
	}
	if a.upstream != nil {
		t.Fatal("an answered request was also forwarded")
	}
}

// trip sends one request to the plugin and reports what became of it:
// through the fake Kong of binary_test.go, to the plugin in this process
// (harness) or to the built binary over its socket (viaKong).
type trip func(t testing.TB, method, target string, h http.Header, body []byte) *answer

// harness is the trip to one plugin instance in this process: the
// plugin server's connection handling (kongConn) on one end of a pipe
// runs the plugin's access phase, as it does for Kong's
// cmd_handle_event, and the fake Kong answers its PDK calls on the other
// end. (go-pdk's own test harness does not serve kong.nginx.get_var,
// the plugin's first call.)
func harness(cfg *Config) trip {
	return pipeTrip(func(pluginEnd net.Conn) {
		if k := newKongConn(pluginEnd); k.access(cfg) {
			_ = k.flush() // the event's end: an empty method frame
		}
	})
}

// goPDKHarness is harness with go-pdk's PDK on the plugin's end of the
// pipe, as go-pdk's server runs Config.Access.
func goPDKHarness(cfg *Config) trip {
	return pipeTrip(func(pluginEnd net.Conn) {
		cfg.Access(pdk.Init(pluginEnd))
		// go-pdk's end of the event: an empty method frame. After an
		// exit the pipe is closed and the write fails, as it does in
		// go-pdk's server.
		_, _ = pluginEnd.Write([]byte{0, 0, 0, 0})
	})
}

// pipeTrip is the trip through a pipe whose plugin end plugin serves
// for one event, the fake Kong on the other.
func pipeTrip(plugin func(pluginEnd net.Conn)) trip {
	return func(t testing.TB, method, target string, h http.Header, body []byte) *answer {
		t.Helper()
		kongEnd, pluginEnd := net.Pipe()
		done := make(chan struct{})
		go func() {
			defer close(done)
			defer pluginEnd.Close()
			plugin(pluginEnd)
		}()
		_ = kongEnd.SetDeadline(time.Now().Add(30 * time.Second))
		a := &answer{}
		_, err := (&fakeKong{t: t}).pdk(newKongSide(kongEnd), a, method, target, h, body)
		kongEnd.Close()
		<-done
		if err != nil {
			t.Fatalf("after PDK calls %v: %v", a.calls, err)
		}
		return a
	}
}

// TestGoPDKAccess runs requests through Config.Access, the access phase
// as go-pdk's server runs it: the same calls, one round trip each.
func TestGoPDKAccess(t *testing.T) {
	cfg, _ := newConfig(t, nil)
	b := newBrowser(t, harness(cfg))
	b.login("/")
	b.trip = goPDKHarness(cfg)
	a := b.do("GET", "/api/orders", "X-CSRF", "1")
	want := []string{"nginx.get_var", "request.get_headers", "service.request.set_headers"}
	if a.exited || !strings.HasPrefix(a.upstream.Get("Authorization"), "Bearer ") {
		t.Fatalf("API request through go-pdk: exited %v %d %s", a.exited, a.status, a.body)
	}
	if !reflect.DeepEqual(a.calls, want) || a.roundTrips != 3 {
		t.Fatalf("PDK calls %v in %d round trips, want %v in 3", a.calls, a.roundTrips, want)
	}
	b.do("GET", "/api/orders").wantError(t, http.StatusForbidden, "csrf_header_missing")
}

// browser sends requests to the plugin, keeping cookies like a browser.
type browser struct {
	t    testing.TB
	trip trip
	jar  http.CookieJar
	http *http.Client // the same jar, for the OP's pages
}

func newBrowser(t testing.TB, via trip) *browser {
	jar := op.NewJar()
	return &browser{t: t, trip: via, jar: jar, http: &http.Client{
		Jar:           jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Timeout:       30 * time.Second,
	}}
}

// do sends one request; target is a path on the app or an absolute URL;
// header pairs are name, value, ... (an empty value removes the header).
// The harness needs a body on POST, PUT and PATCH; do gives them "{}".
func (b *browser) do(method, target string, header ...string) *answer {
	b.t.Helper()
	if strings.HasPrefix(target, "/") {
		target = appOrigin + target
	}
	u, err := url.Parse(target)
	if err != nil {
		b.t.Fatal(err)
	}
	h := http.Header{"Host": {u.Host}}
	var pairs []string
	for _, c := range b.jar.Cookies(u) {
		pairs = append(pairs, c.Name+"="+c.Value)
	}
	if len(pairs) > 0 {
		h.Set("Cookie", strings.Join(pairs, "; "))
	}
	for i := 0; i+1 < len(header); i += 2 {
		if header[i+1] == "" {
			h.Del(header[i])
			continue
		}
		h.Set(header[i], header[i+1])
	}
	var body []byte
	switch method {
	case "POST", "PUT", "PATCH":
		body = []byte("{}")
	}
	a := b.trip(b.t, method, target, h, body)
	if a.exited {
		b.jar.SetCookies(u, (&http.Response{Header: a.header}).Cookies())
	}
	return a
}

// login runs the code flow for alice and returns where the callback sends
// the browser.
func (b *browser) login(returnTo string) string {
	b.t.Helper()
	a := b.do("GET", "/login?returnTo="+url.QueryEscape(returnTo))
	if a.status != http.StatusFound {
		b.t.Fatalf("/login = %d, want 302 (body %s)", a.status, a.body)
	}
	cb, err := provider(b.t).Login(context.Background(), b.http, a.header.Get("Location"), op.AliceUser, op.AlicePassword)
	if err != nil {
		b.t.Fatalf("login at the provider: %v", err)
	}
	a = b.do("GET", cb.String())
	if a.status != http.StatusFound {
		b.t.Fatalf("callback = %d, want 302 (body %s)", a.status, a.body)
	}
	return a.header.Get("Location")
}

func (b *browser) sessionCookie() string {
	u, _ := url.Parse(appOrigin)
	for _, c := range b.jar.Cookies(u) {
		if c.Name == "__Host-bffgate" {
			return c.Value
		}
	}
	return ""
}

func grants(t *testing.T, kind string) int {
	t.Helper()
	st, err := provider(t).Stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return st.Grants[kind]
}

// budget is the most PDK calls each kind of request may cost.
const budget = 3

func wantCalls(t *testing.T, what string, a *answer, want int) {
	t.Helper()
	if len(a.calls) != want {
		t.Errorf("%s made %d PDK calls %v, want %d", what, len(a.calls), a.calls, want)
	}
}

func TestFlow(t *testing.T) {
	cfg, clk := newConfig(t, nil)
	b := newBrowser(t, harness(cfg))

	// Login: a redirect to the provider with a login cookie.
	a := b.do("GET", "/login?returnTo=%2Fapp%3Fx%3D1")
	if !a.exited || a.status != http.StatusFound || !strings.HasPrefix(a.header.Get("Location"), provider(t).Issuer) {
		t.Fatalf("/login = %d %q", a.status, a.header.Get("Location"))
	}
	if sc := a.header.Get("Set-Cookie"); !strings.HasPrefix(sc, "__Host-bffgate-login-") || !strings.Contains(sc, "HttpOnly") {
		t.Fatalf("/login Set-Cookie = %q, want a login cookie", sc)
	}
	wantCalls(t, "/login", a, budget)

	// Callback: a fresh session cookie, back to returnTo.
	cb, err := provider(t).Login(context.Background(), b.http, a.header.Get("Location"), op.AliceUser, op.AlicePassword)
	if err != nil {
		t.Fatal(err)
	}
	a = b.do("GET", cb.String())
	if a.status != http.StatusFound || a.header.Get("Location") != "/app?x=1" {
		t.Fatalf("callback = %d %q, want 302 to /app?x=1 (body %s)", a.status, a.header.Get("Location"), a.body)
	}
	var sessionSet bool
	for _, sc := range a.header.Values("Set-Cookie") {
		if strings.HasPrefix(sc, "__Host-bffgate=") && strings.Contains(sc, "Secure") && strings.Contains(sc, "HttpOnly") {
			sessionSet = true
		}
	}
	if !sessionSet || b.sessionCookie() == "" {
		t.Fatalf("callback Set-Cookie = %q, want the session cookie", a.header.Values("Set-Cookie"))
	}
	wantCalls(t, "callback", a, budget)

	// The session endpoint shows the user and no token.
	a = b.do("GET", "/session")
	if a.status != http.StatusOK {
		t.Fatalf("/session = %d (body %s)", a.status, a.body)
	}
	info := a.json(t)
	if user, _ := info["user"].(map[string]any); info["authenticated"] != true || user["sub"] != "alice" {
		t.Fatalf("/session = %s", a.body)
	}
	if strings.Contains(string(a.body), "eyJ") {
		t.Fatalf("/session reveals a token: %s", a.body)
	}
	wantCalls(t, "/session", a, budget)

	// An API request goes upstream with the bearer, without the session
	// cookie but with the app's own, and with the real identity header in
	// place of a forged one.
	a = b.do("GET", "/api/orders?page=2", "X-CSRF", "1", "X-User", "admin",
		"Cookie", "theme=dark; __Host-bffgate="+b.sessionCookie())
	if a.exited {
		t.Fatalf("API request answered %d (body %s), want forwarded", a.status, a.body)
	}
	bearer := a.upstream.Get("Authorization")
	if !strings.HasPrefix(bearer, "Bearer ") || len(bearer) < 20 {
		t.Fatalf("upstream Authorization = %q, want a bearer token", bearer)
	}
	if got := a.upstream.Values("Cookie"); len(got) != 1 || got[0] != "theme=dark" {
		t.Fatalf("upstream Cookie = %q, want [theme=dark]", got)
	}
	if got := a.upstream.Values("X-User"); len(got) != 1 || got[0] != "alice" {
		t.Fatalf("upstream X-User = %q, want [alice]", got)
	}
	wantCalls(t, "an authenticated API request", a, budget)

	// With only the session cookie, the upstream gets no Cookie at all
	// (the empty list in set_headers removes the header).
	a = b.do("PUT", "/api/orders/1", "X-CSRF", "1")
	if a.exited {
		t.Fatalf("PUT answered %d (body %s), want forwarded", a.status, a.body)
	}
	if _, has := a.upstream["Cookie"]; has || a.upstream.Get("Authorization") != bearer {
		t.Fatalf("upstream headers = %v, want the same bearer and no Cookie", a.upstream)
	}
	wantCalls(t, "an authenticated API request", a, budget)

	// Near expiry (the OP issues 60 s tokens) the next request refreshes:
	// one refresh grant, a new bearer upstream.
	clk.Advance(45 * time.Second)
	before := grants(t, op.GrantRefreshToken)
	a = b.do("GET", "/api/orders", "X-CSRF", "1")
	if a.exited {
		t.Fatalf("API request during refresh answered %d (body %s)", a.status, a.body)
	}
	if got := a.upstream.Get("Authorization"); got == bearer || !strings.HasPrefix(got, "Bearer ") {
		t.Fatalf("after refresh the upstream got %q, want a new bearer", got)
	}
	if n := grants(t, op.GrantRefreshToken) - before; n != 1 {
		t.Fatalf("the provider saw %d refresh grants, want 1", n)
	}
	wantCalls(t, "an API request that refreshes", a, budget)

	// The token endpoint is off in bff mode.
	b.do("GET", "/token", "X-CSRF", "1").wantError(t, http.StatusNotFound, "not_found")

	// Logout needs the CSRF header; it ends the session, clears the
	// cookie and gives the provider's end-session URL. It does not read
	// the body.
	b.do("POST", "/logout").wantError(t, http.StatusForbidden, "csrf_header_missing")
	a = b.do("POST", "/logout", "X-CSRF", "1")
	if a.status != http.StatusOK {
		t.Fatalf("/logout = %d (body %s)", a.status, a.body)
	}
	if lu, _ := a.json(t)["logoutUrl"].(string); !strings.HasPrefix(lu, provider(t).Issuer) || !strings.Contains(lu, "client_id=") || strings.Contains(lu, "id_token_hint=") {
		t.Fatalf("logoutUrl = %q", lu)
	}
	if sc := a.header.Get("Set-Cookie"); !strings.Contains(sc, "Max-Age=0") {
		t.Fatalf("/logout Set-Cookie = %q, want the cookie cleared", sc)
	}
	wantCalls(t, "/logout", a, budget)
	if b.sessionCookie() != "" {
		t.Fatal("the browser still has the session cookie")
	}
	b.do("GET", "/api/orders", "X-CSRF", "1").wantError(t, http.StatusUnauthorized, "unauthenticated")

	// The provider sends the browser back; the app's page is next.
	a = b.do("GET", "/logout/callback")
	if a.status != http.StatusFound || a.header.Get("Location") != "/" {
		t.Fatalf("logout callback = %d %q, want 302 to /", a.status, a.header.Get("Location"))
	}
}

func TestTokenMediating(t *testing.T) {
	cfg, _ := newConfig(t, func(c *Config) { c.Mode = bff.ModeTokenMediating })
	b := newBrowser(t, harness(cfg))
	b.login("/")

	b.do("GET", "/token").wantError(t, http.StatusForbidden, "csrf_header_missing")
	a := b.do("GET", "/token", "X-CSRF", "1")
	if a.status != http.StatusOK {
		t.Fatalf("/token = %d (body %s)", a.status, a.body)
	}
	tok := a.json(t)
	if at, _ := tok["access_token"].(string); at == "" || tok["token_type"] != "Bearer" {
		t.Fatalf("/token = %s", a.body)
	}
	if exp, _ := tok["expires_in"].(float64); exp <= 0 || exp > 60 {
		t.Fatalf("expires_in = %v, want within the token's 60 s", tok["expires_in"])
	}
	if _, has := tok["refresh_token"]; has {
		t.Fatal("/token handed out the refresh token")
	}
	if a.header.Get("Cache-Control") != "no-store" {
		t.Fatalf("/token Cache-Control = %q, want no-store", a.header.Get("Cache-Control"))
	}
	wantCalls(t, "/token", a, budget)

	// The API path still takes the cookie in this mode, with the same
	// access token as the one handed out.
	a = b.do("GET", "/api/x", "X-CSRF", "1")
	if a.exited || a.upstream.Get("Authorization") != "Bearer "+tok["access_token"].(string) {
		t.Fatalf("API request: exited %v, upstream Authorization %q", a.exited, a.upstream.Get("Authorization"))
	}
}

// TestRefused: what the plugin answers itself instead of forwarding.
func TestRefused(t *testing.T) {
	cfg, _ := newConfig(t, func(c *Config) { c.AllowedOrigins = []string{"https://spa.example.test"} })
	b := newBrowser(t, harness(cfg))
	b.login("/")
	anon := newBrowser(t, harness(cfg))
	forged := "__Host-bffgate=" + strings.Repeat("A", 43)

	for _, tt := range []struct {
		name   string
		b      *browser
		method string
		target string
		header []string
		status int
		code   string
	}{
		{"no session", anon, "GET", "/api/orders", []string{"X-CSRF", "1"}, http.StatusUnauthorized, "unauthenticated"},
		{"no session, POST", anon, "POST", "/api/orders", []string{"X-CSRF", "1"}, http.StatusUnauthorized, "unauthenticated"},
		{"missing CSRF header", b, "GET", "/api/orders", nil, http.StatusForbidden, "csrf_header_missing"},
		{"wrong CSRF value", b, "PATCH", "/api/orders", []string{"X-CSRF", "0"}, http.StatusForbidden, "csrf_header_missing"},
		{"foreign Origin", b, "POST", "/api/orders", []string{"X-CSRF", "1", "Origin", "https://evil.example"}, http.StatusForbidden, "origin_not_allowed"},
		{"forged cookie", anon, "GET", "/api/orders", []string{"X-CSRF", "1", "Cookie", forged}, http.StatusUnauthorized, "invalid_session"},
		{"malformed cookie", anon, "GET", "/api/orders", []string{"X-CSRF", "1", "Cookie", "__Host-bffgate=%%%"}, http.StatusUnauthorized, "invalid_session"},
		{"open redirect", anon, "GET", "/login?returnTo=https%3A%2F%2Fevil.example%2F", nil, http.StatusBadRequest, "invalid_return_to"},
		{"scheme-relative redirect", anon, "GET", "/login?returnTo=%2F%2Fevil.example%2F", nil, http.StatusBadRequest, "invalid_return_to"},
		{"callback without state", anon, "GET", "/oauth/callback?code=abc", nil, http.StatusBadRequest, ""},
		{"logout without CSRF", b, "POST", "/logout", nil, http.StatusForbidden, "csrf_header_missing"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			a := tt.b.do(tt.method, tt.target, tt.header...)
			if tt.code == "" {
				if !a.exited || a.status != tt.status || a.upstream != nil {
					t.Fatalf("status = %d (exited %v), want %d (body %s)", a.status, a.exited, tt.status, a.body)
				}
				return
			}
			a.wantError(t, tt.status, tt.code)
			if a.status == http.StatusUnauthorized && a.json(t)["authenticated"] != false {
				t.Fatalf("401 body %s lacks authenticated:false", a.body)
			}
			if ct := a.header.Get("Content-Type"); ct != "application/json" {
				t.Fatalf("Content-Type = %q, want application/json", ct)
			}
			if len(a.calls) > budget {
				t.Errorf("%d PDK calls %v, want at most %d", len(a.calls), a.calls, budget)
			}
		})
	}

	// A refusal to an allowed cross-origin app carries CORS headers, so
	// the app can read why.
	a := anon.do("GET", "/api/orders", "X-CSRF", "1", "Origin", "https://spa.example.test")
	a.wantError(t, http.StatusUnauthorized, "unauthenticated")
	if a.header.Get("Access-Control-Allow-Origin") != "https://spa.example.test" || a.header.Get("Access-Control-Allow-Credentials") != "true" {
		t.Fatalf("401 to an allowed origin lacks CORS headers: %v", a.header)
	}

	// The back-channel logout endpoint is the one that reads the body: a
	// token that is not a logout token is refused, and the session lives.
	a = b.trip(t, "POST", appOrigin+"/backchannel-logout", http.Header{
		"Host":         {"app.example.test"},
		"Content-Type": {"application/x-www-form-urlencoded"},
	}, []byte("logout_token=not-a-jwt"))
	a.wantError(t, http.StatusBadRequest, "invalid_request")
	if want := []string{"nginx.get_var", "request.get_headers", "request.get_raw_body", "response.exit"}; strings.Join(a.calls, " ") != strings.Join(want, " ") || a.roundTrips != 3 {
		t.Errorf("back-channel logout PDK calls = %v in %d round trips, want %v in 3", a.calls, a.roundTrips, want)
	}
	if a := b.do("GET", "/api/orders", "X-CSRF", "1"); a.exited {
		t.Fatalf("the session did not survive a rejected logout token: %d %s", a.status, a.body)
	}
}

// TestPDKCalls measures the PDK calls of each kind of request against the
// budget: two reads written together and one write, two round trips.
func TestPDKCalls(t *testing.T) {
	cfg, _ := newConfig(t, nil)
	b := newBrowser(t, harness(cfg))
	b.login("/")
	reads := []string{"nginx.get_var", "request.get_headers"}
	forward := append(reads[:2:2], "service.request.set_headers")
	answer := append(reads[:2:2], "response.exit")

	for _, tt := range []struct {
		name   string
		method string
		target string
		header []string
		want   []string
		trips  int
	}{
		{"authenticated API request", "GET", "/api/orders", []string{"X-CSRF", "1"}, forward, 2},
		{"authenticated API POST", "POST", "/api/orders", []string{"X-CSRF", "1"}, forward, 2},
		{"login", "GET", "/login", nil, answer, 2},
		{"session", "GET", "/session", nil, answer, 2},
		{"refused API request", "GET", "/api/orders", nil, answer, 2},
		// Without a Host header (never from HTTP/1.1 clients; nginx makes
		// one of HTTP/2's :authority) the host costs a call of its own.
		{"no Host header", "GET", "/session", []string{"Host", ""}, append(reads[:2:2], "request.get_host", "response.exit"), 3},
	} {
		t.Run(tt.name, func(t *testing.T) {
			a := b.do(tt.method, tt.target, tt.header...)
			if got, want := strings.Join(a.calls, " "), strings.Join(tt.want, " "); got != want || a.roundTrips != tt.trips {
				t.Fatalf("PDK calls = %s in %d round trips, want %s in %d", got, a.roundTrips, want, tt.trips)
			}
			t.Logf("%d PDK calls in %d round trips", len(a.calls), a.roundTrips)
		})
	}
}

func TestConfigError(t *testing.T) {
	cfg, _ := newConfig(t, func(c *Config) {
		c.ClientSecret = "s3cr3t-value"
		c.CookieKeys = []string{"not-a-key"}
	})
	b := newBrowser(t, harness(cfg))
	for i, want := range [][]string{{"log.err", "response.exit"}, {"response.exit"}} {
		a := b.do("GET", "/api/orders", "X-CSRF", "1")
		a.wantError(t, http.StatusInternalServerError, "bffgate_config_invalid")
		if desc := a.json(t)["error_description"].(string); !strings.Contains(desc, "cookie_keys[0]") {
			t.Fatalf("error_description = %q, want the field named", desc)
		}
		if strings.Contains(string(a.body), "s3cr3t") || strings.Contains(string(a.body), "not-a-key") {
			t.Fatalf("the answer reveals config values: %s", a.body)
		}
		if strings.Join(a.calls, " ") != strings.Join(want, " ") {
			t.Fatalf("request %d: PDK calls = %v, want %v (the error logged once)", i+1, a.calls, want)
		}
		// In bffgate serve's line shape, naming the field, not the value.
		for _, l := range a.logged {
			if !strings.HasPrefix(l, `msg="bffgate: engine refused" error="bffgate: config: cookie_keys[0]:`) || strings.Contains(l, "not-a-key") || strings.Contains(l, "s3cr3t") {
				t.Fatalf("kong.log.err line %q", l)
			}
		}
	}
}

// TestKongConfig: the JSON Kong sends a plugin instance — every schema
// field, null where unset, plus Kong's own keys — is a valid config, and
// instances with the same content share one engine while a changed
// config gets its own.
func TestKongConfig(t *testing.T) {
	srv := provider(t)
	kongJSON := func(seq int, clientID string) []byte {
		return []byte(fmt.Sprintf(`{"__seq__":%d,"__key__":"plugins:bffgate:route-1::::ws-1",
			"issuer":%q,"client_id":%q,"client_secret":%q,
			"redirect_url":"https://app.example.test/oauth/callback","cookie_keys":[%q],
			"scopes":null,"mode":null,"path_prefix":null,
			"paths":{"login":null,"callback":null,"session":null,"token":null,"logout":null,"logout_callback":null,"backchannel_logout":null},
			"cookie_name":null,"cookie_same_site":null,"session_idle_timeout":null,"session_max_lifetime":null,
			"refresh_skew":null,"csrf_header":null,"csrf_header_value":null,"csrf_unsafe_methods_only":false,
			"allowed_origins":null,"login_params":null,"default_return_to":null,"post_logout_redirect_url":null,
			"post_logout_return_to":null,"user_claims":null,"identity_headers":[{"header":"X-User","claim":"sub"}],
			"token_exchange_audience":null,"token_max_lifetime":null,"http_timeout":null}`,
			seq, srv.Issuer, clientID, srv.ClientSecret, cookieKey))
	}
	instance := func(raw []byte) *Config {
		c := New().(*Config)
		if err := json.Unmarshal(raw, c); err != nil {
			t.Fatal(err)
		}
		return c
	}
	w1, w2 := instance(kongJSON(1, srv.ClientID)), instance(kongJSON(1, srv.ClientID))
	resaved := instance(kongJSON(2, srv.ClientID)) // saved again, same content
	changed := instance(kongJSON(3, "another-client"))
	if engines.forConfig(w1) != engines.forConfig(w2) || engines.forConfig(w1) != engines.forConfig(resaved) {
		t.Fatal("instances with the same config got different engines (sessions would not be shared)")
	}
	if engines.forConfig(w1) == engines.forConfig(changed) {
		t.Fatal("a changed config kept the old engine")
	}

	// A session made through one worker's instance is good on another's.
	// The harness browser logs in through w1 and calls the API through w2.
	b := newBrowser(t, harness(w1))
	b.login("/")
	b.trip = harness(w2)
	if a := b.do("GET", "/api/x", "X-CSRF", "1"); a.exited || !strings.HasPrefix(a.upstream.Get("Authorization"), "Bearer ") {
		t.Fatalf("API request through another instance: %d %s", a.status, a.body)
	}
}

// TestRegistryBounds: superseded configurations do not pile up; the one
// attached least recently goes first.
func TestRegistryBounds(t *testing.T) {
	r := registry{byKey: map[string]*engine{}}
	cfg := func(i int) *Config {
		return &Config{Issuer: "https://idp.example.test", ClientID: fmt.Sprint("client-", i)}
	}
	first := r.forConfig(cfg(0))
	for i := 1; i <= maxEngines; i++ {
		if i == maxEngines/2 {
			if r.forConfig(cfg(0)) != first { // a new instance of config 0 attaches to it again
				t.Fatal("config 0 got a second engine")
			}
		}
		r.forConfig(cfg(i))
	}
	if len(r.byKey) != maxEngines {
		t.Fatalf("the registry holds %d engines, want at most %d", len(r.byKey), maxEngines)
	}
	if r.forConfig(cfg(0)) != first {
		t.Fatal("the recently attached config 0 was evicted")
	}
	if _, kept := r.byKey[configKey(cfg(1))]; kept {
		t.Fatal("config 1, attached least recently, was kept")
	}
	newest := r.forConfig(cfg(maxEngines))
	if again := r.forConfig(cfg(maxEngines)); again != newest {
		t.Fatal("the newest config was evicted at once")
	}
}

// TestEvictedEngineClosed: an evicted engine's instances attach to a new
// engine on their next request, and the evicted one's Redis connections
// are closed once its grace is over.
func TestEvictedEngineClosed(t *testing.T) {
	defer func(g time.Duration) { evictGrace = g }(evictGrace)
	evictGrace = 10 * time.Millisecond
	r := registry{byKey: map[string]*engine{}}
	cfg := func(i int) *Config {
		return &Config{Issuer: "https://idp.example.test", ClientID: fmt.Sprint("client-", i), ClientSecret: "s",
			RedirectURL: "https://app.example.test/oauth/callback", CookieKeys: []string{cookieKey},
			Redis: redisstore.Config{URL: "redis://127.0.0.1:6379/0"}}
	}
	old := cfg(0)
	e := r.forConfig(old)
	b, err := e.get()
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= maxEngines; i++ {
		r.forConfig(cfg(i))
	}
	if again := r.forConfig(old); again == e {
		t.Fatal("the evicted engine's instance still uses it")
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := b.Ready(context.Background())
		if err != nil && strings.Contains(err.Error(), "closed") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the evicted engine was not closed: Ready = %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
