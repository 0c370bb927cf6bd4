package main

// Kong itself (OpenResty) cannot run on the machines these tests run on.
// What stands in for it here: go-pdk's own test harness
// (github.com/Kong/go-pdk/test), which runs the plugin's Access phase
// through the real PDK surface — every call is a protobuf message over a
// pipe, answered as Kong would — against the real OpenID Provider of
// tests/op. binary_test.go drives the built binary over its unix socket.

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Kong/go-pdk"
	"github.com/Kong/go-pdk/test"

	"github.com/bffgate/bffgate/core/bff"
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
	code := m.Run()
	if opSrv != nil {
		opSrv.Close()
	}
	os.Exit(code)
}

// provider returns the test OP shared by this package's tests (one Node
// process instead of one per test).
func provider(t *testing.T) *op.Server {
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

// clock is the engine's clock: real time plus an offset the test moves.
type clock struct {
	mu     sync.Mutex // guards offset
	offset time.Duration
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.offset)
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.offset += d
}

// newConfig is a plugin instance's config against the shared OP, with its
// own clock (which also gives it an engine of its own).
func newConfig(t *testing.T, edit func(*Config)) (*Config, *clock) {
	srv := provider(t)
	clk := &clock{}
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

// counter is kong with every PDK call recorded by name.
type counter struct {
	kong  kong
	calls []string
}

func (c *counter) add(name string) { c.calls = append(c.calls, name) }

func (c *counter) GetMethod() (string, error) {
	c.add("request.get_method")
	return c.kong.GetMethod()
}

func (c *counter) GetPathWithQuery() (string, error) {
	c.add("request.get_path_with_query")
	return c.kong.GetPathWithQuery()
}

func (c *counter) GetHeaders(max int) (map[string][]string, error) {
	c.add("request.get_headers")
	return c.kong.GetHeaders(max)
}

func (c *counter) GetHost() (string, error) {
	c.add("request.get_host")
	return c.kong.GetHost()
}

func (c *counter) GetRawBody() ([]byte, error) {
	c.add("request.get_raw_body")
	return c.kong.GetRawBody()
}

func (c *counter) SetUpstreamHeaders(h map[string][]string) error {
	c.add("service.request.set_headers")
	return c.kong.SetUpstreamHeaders(h)
}

func (c *counter) Exit(status int, body []byte, header map[string][]string) {
	c.add("response.exit")
	c.kong.Exit(status, body, header)
}

func (c *counter) LogErr(msg string) error {
	c.add("log.err")
	return c.kong.LogErr(msg)
}

// counted is what the harness calls: the plugin's own Access path on the
// harness's PDK, through a counter.
type counted struct {
	cfg *Config
	n   *counter
}

func (w counted) Access(p *pdk.PDK) {
	w.n.kong = pdkKong{p}
	w.cfg.serve(w.n)
}

// answer is what became of one request.
type answer struct {
	exited   bool
	status   int
	header   http.Header
	body     []byte
	upstream http.Header // the service request's headers, when forwarded
	calls    []string    // the PDK calls the plugin made
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

// browser sends requests through the harness to one plugin instance,
// keeping cookies like a browser.
type browser struct {
	t    *testing.T
	cfg  *Config
	jar  http.CookieJar
	http *http.Client // the same jar, for the OP's pages
}

func newBrowser(t *testing.T, cfg *Config) *browser {
	jar := op.NewJar()
	return &browser{t: t, cfg: cfg, jar: jar, http: &http.Client{
		Jar:           jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Timeout:       30 * time.Second,
	}}
}

// do sends one request; target is a path on the app or an absolute URL;
// header pairs are name, value, ... The harness needs a body on POST, PUT
// and PATCH; do gives them "{}".
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
	for i := 0; i+1 < len(header); i += 2 {
		if header[i+1] == "" {
			h.Del(header[i])
			continue
		}
		h.Set(header[i], header[i+1])
	}
	var pairs []string
	for _, c := range b.jar.Cookies(u) {
		pairs = append(pairs, c.Name+"="+c.Value)
	}
	if len(pairs) > 0 && h.Get("Cookie") == "" {
		h.Set("Cookie", strings.Join(pairs, "; "))
	}
	var body []byte
	switch method {
	case "POST", "PUT", "PATCH":
		body = []byte("{}")
	}
	return b.send(test.Request{Method: method, Url: target, Headers: h, Body: body})
}

// send runs a harness request through the Access phase.
func (b *browser) send(req test.Request) *answer {
	b.t.Helper()
	env, err := test.New(b.t, req)
	if err != nil {
		b.t.Fatal(err)
	}
	n := &counter{}
	env.DoAccess(counted{b.cfg, n})
	a := &answer{calls: n.calls}
	if len(n.calls) > 0 && n.calls[len(n.calls)-1] == "response.exit" {
		a.exited, a.status, a.header, a.body = true, env.ClientRes.Status, env.ClientRes.Headers, env.ClientRes.Body
		u, _ := url.Parse(req.Url)
		b.jar.SetCookies(u, (&http.Response{Header: a.header}).Cookies())
	} else {
		a.upstream = env.ServiceReq.Headers
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
const budget = 4

func wantCalls(t *testing.T, what string, a *answer, want int) {
	t.Helper()
	if len(a.calls) != want {
		t.Errorf("%s made %d PDK calls %v, want %d", what, len(a.calls), a.calls, want)
	}
}

func TestFlow(t *testing.T) {
	cfg, clk := newConfig(t, nil)
	b := newBrowser(t, cfg)

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
	if lu, _ := a.json(t)["logoutUrl"].(string); !strings.HasPrefix(lu, provider(t).Issuer) || !strings.Contains(lu, "id_token_hint=") {
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
