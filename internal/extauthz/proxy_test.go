package extauthz

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/bffgate/bffgate/core/bff"
	"github.com/bffgate/bffgate/internal/extauthz/extauthztest"
	"github.com/bffgate/bffgate/tests/flowtest"
	"github.com/bffgate/bffgate/tests/op"
)

// These tests run the whole flow through a REAL nginx (auth_request) and
// a REAL Caddy (reverse_proxy with handle_response, as forward_auth is
// built), Debian's packages, which the tests start on loopback ports with
// the configurations of docs/extauthz.md, in front of the echo API, with
// bffgate extauthz and the real test OpenID Provider. Traefik and Envoy
// cannot be installed here: extauthz_test.go tests their contracts
// against the handler.

const testSecret = "test-shared-secret-0123456789"

type stack struct {
	t     *testing.T
	op    *op.Server
	authz *httptest.Server
	api   *extauthztest.API
	url   string // the proxy's base URL
	// authzConns counts the connections bffgate extauthz accepted.
	authzConns atomic.Int64
}

// newStack starts the echo API, the OP and bffgate extauthz (with the
// shared secret) for a proxy that will listen on port.
func newStack(t *testing.T, port int) *stack {
	t.Helper()
	s := &stack{t: t, url: fmt.Sprintf("http://127.0.0.1:%d", port)}
	s.api = extauthztest.StartAPI(t, func() *op.Server { return s.op })
	s.op = op.StartT(t, op.Options{
		RedirectURIs:           []string{s.url + "/oauth/callback"},
		PostLogoutRedirectURIs: []string{s.url + "/logout/callback"},
		Stderr:                 io.Discard,
	})
	srv, err := New(&Config{Secret: testSecret, Apps: []App{{BFF: bff.Config{
		Issuer: s.op.Issuer, ClientID: s.op.ClientID, ClientSecret: s.op.ClientSecret,
		RedirectURL:           s.url + "/oauth/callback",
		PostLogoutRedirectURL: s.url + "/logout/callback",
		CookieKeys:            []string{testKey},
		IdentityHeaders:       []bff.IdentityHeader{{Header: "X-User", Claim: "sub"}},
		Logger:                slog.New(slog.DiscardHandler),
	}}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	s.authz = httptest.NewUnstartedServer(srv)
	s.authz.Config.ConnState = extauthztest.CountConns(&s.authzConns)
	s.authz.Start()
	t.Cleanup(s.authz.Close)
	return s
}

// do sends a request through the proxy; header pairs are name, value, ...
// A raw path (dot segments) is sent as written.
func (s *stack) do(c *http.Client, method, target, body string, header ...string) *flowtest.Response {
	s.t.Helper()
	if strings.HasPrefix(target, "/") {
		target = s.url + target
	}
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, target, rd)
	if err != nil {
		s.t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header[header[i]] = append(req.Header[header[i]], header[i+1])
	}
	return flowtest.Send(s.t, c, req)
}

// flow runs the browser's part through the proxy and checks what reached
// the API.
func (s *stack) flow(t *testing.T) {
	c := op.Browser()
	// Cookies for this origin only: the OP's own cookies live on the same
	// host (another port), and a plain cookie the API may see.
	u, _ := url.Parse(s.url)
	c.Jar.SetCookies(u, []*http.Cookie{{Name: "theme", Value: "dark", Path: "/"}})

	t.Run("no session: nothing reaches the API", func(t *testing.T) {
		before := s.api.Count()
		r := s.do(c, "GET", "/api/orders", "", "X-CSRF", "1")
		if r.Status != http.StatusUnauthorized {
			t.Fatalf("status = %d, want 401 (body %s)", r.Status, r.Body)
		}
		if got := r.JSON(t)["error"]; got != "unauthenticated" {
			t.Fatalf("error = %v, want unauthenticated (body %s)", got, r.Body)
		}
		if s.api.Count() != before {
			t.Fatal("the API was reached without a session")
		}
	})

	// Login: /login and /oauth/callback are routed to bffgate directly.
	r := s.do(c, "GET", "/login?returnTo=%2Fapp", "")
	if r.Status != http.StatusFound {
		t.Fatalf("/login status = %d, want 302 (body %s)", r.Status, r.Body)
	}
	cb, err := s.op.Login(context.Background(), c, r.Header.Get("Location"), op.AliceUser, op.AlicePassword)
	if err != nil {
		t.Fatalf("login at the provider: %v", err)
	}
	if !strings.HasPrefix(cb.String(), s.url+"/oauth/callback?") {
		t.Fatalf("the provider sent the browser to %s", cb)
	}
	r = s.do(c, "GET", cb.String(), "")
	if r.Status != http.StatusFound || r.Header.Get("Location") != "/app" {
		t.Fatalf("callback: %d to %q, want 302 to /app (body %s)", r.Status, r.Header.Get("Location"), r.Body)
	}
	if !strings.Contains(strings.Join(r.Header.Values("Set-Cookie"), "\n"), "__Host-bffgate=") {
		t.Fatalf("callback set no session cookie: %q", r.Header.Values("Set-Cookie"))
	}
	r = s.do(c, "GET", "/session", "")
	if r.Status != http.StatusOK || r.JSON(t)["authenticated"] != true {
		t.Fatalf("/session: %d %s", r.Status, r.Body)
	}

	t.Run("API gets the bearer, never the session cookie", func(t *testing.T) {
		r := s.do(c, "POST", "/api/orders?page=2", "order-body", "X-CSRF", "1", "X-User", "admin")
		if r.Status != http.StatusOK {
			t.Fatalf("status = %d (body %s)", r.Status, r.Body)
		}
		got := r.JSON(t)
		if a, _ := got["authorization"].(string); !strings.HasPrefix(a, "Bearer (a ") {
			t.Fatalf("the API got authorization %v", got["authorization"])
		}
		tok, _ := got["token"].(map[string]any)
		if tok["active"] != true {
			t.Fatalf("the API's bearer is not an active token of the OP: %v", got["token"])
		}
		if id, _ := got["identity"].(map[string]any); id["X-User"] != tok["sub"] || id["X-User"] == "admin" {
			t.Fatalf("the API got X-User %v, want the session's sub %v", id["X-User"], tok["sub"])
		}
		if got["method"] != "POST" || got["path"] != "/api/orders" {
			t.Fatalf("the API got %v %v", got["method"], got["path"])
		}
		if body := s.api.LastBody(); body != "order-body" {
			t.Fatalf("the API got body %q, want the client's", body)
		}
		// The client's other cookies go on (theme, and the OP's own, which
		// the browser sends to every port of 127.0.0.1); the BFF's do not.
		cookies, _ := got["cookies"].([]any)
		theme := false
		for _, name := range cookies {
			if strings.HasPrefix(name.(string), "__Host-bffgate") {
				t.Fatalf("the API got the cookie %s", name)
			}
			theme = theme || name == "theme"
		}
		if !theme {
			t.Fatalf("the API got cookies %v, want the client's theme among them", cookies)
		}
	})

	t.Run("only the session cookie: the API gets none", func(t *testing.T) {
		before := s.api.Count()
		r := s.do(http.DefaultClient, "GET", "/api/orders", "", "Cookie", sessionCookie(t, c, u), "X-CSRF", "1", "X-User", "admin")
		if r.Status != http.StatusOK {
			t.Fatalf("status = %d (body %s)", r.Status, r.Body)
		}
		reqs := s.api.Requests()
		if len(reqs) != before+1 {
			t.Fatalf("the API got %d requests, want 1", len(reqs)-before)
		}
		got := reqs[before].Header
		if v := got.Get("Cookie"); v != "" {
			t.Fatalf("the API got Cookie %q, want none", v)
		}
		t.Logf("Cookie header present (empty): %v", got["Cookie"] != nil)
		if got.Get("X-User") == "admin" || !strings.HasPrefix(got.Get("Authorization"), "Bearer ") {
			t.Fatalf("the API got X-User %q, Authorization %.7q", got.Get("X-User"), got.Get("Authorization"))
		}
	})

	refused := []struct {
		name, method, path string
		header             []string
		status             int
		code               string
	}{
		{"CSRF header missing", "GET", "/api/orders", nil, 403, "csrf_header_missing"},
		{"foreign Origin", "POST", "/api/orders", []string{"X-CSRF", "1", "Origin", "https://evil.example"}, 403, "origin_not_allowed"},
		{"dot segments", "GET", "/api/../admin", []string{"X-CSRF", "1"}, 0, ""},
		{"encoded dot segments", "GET", "/api/%2e%2e/admin", []string{"X-CSRF", "1"}, 0, ""},
		{"encoded slash", "GET", "/api%2fadmin", []string{"X-CSRF", "1"}, 0, ""},
		{"forged look-alike identity header", "GET", "/api/orders", []string{"X-CSRF", "1", "X_User", "admin"}, 0, ""},
		{"unknown method", "BREW", "/api/orders", []string{"X-CSRF", "1"}, 0, ""},
	}
	for _, tt := range refused {
		t.Run("refused: "+tt.name, func(t *testing.T) {
			before := s.api.Count()
			r := s.do(c, tt.method, tt.path, "", tt.header...)
			if tt.name == "forged look-alike identity header" && r.Status == http.StatusOK {
				// nginx drops header names with "_" (underscores_in_headers
				// off) before anything sees them, Envoy removes the one
				// bffgate names in x-envoy-auth-headers-to-remove: allowed,
				// without it.
				for _, req := range s.api.Requests()[before:] {
					for name, v := range req.Header {
						if strings.EqualFold(strings.ReplaceAll(name, "_", "-"), "X-User") && strings.Join(v, "") == "admin" {
							t.Fatalf("the API got %s: admin", name)
						}
					}
				}
				return
			}
			if s.api.Count() != before {
				t.Fatalf("the API was reached (status %d)", r.Status)
			}
			if r.Status < 400 {
				t.Fatalf("status = %d, want a refusal (body %s)", r.Status, r.Body)
			}
			if tt.status != 0 {
				if r.Status != tt.status || r.JSON(t)["error"] != tt.code {
					t.Fatalf("got %d %s, want %d %s", r.Status, r.Body, tt.status, tt.code)
				}
			}
			t.Logf("%s %s: %d %.100s", tt.method, tt.path, r.Status, r.Body)
		})
	}

	t.Run("a subrequest without the secret is refused", func(t *testing.T) {
		sess := sessionCookie(t, c, u)
		for _, target := range []string{PathNginx, PathForward, PathEnvoy + "/api/orders", "/session"} {
			r := s.do(http.DefaultClient, "GET", s.authz.URL+target, "", "Cookie", sess, "X-CSRF", "1",
				"X-Original-Method", "GET", "X-Original-URI", "/api/orders",
				"X-Forwarded-Method", "GET", "X-Forwarded-Uri", "/api/orders", "X-Forwarded-Host", u.Host)
			if r.Status != http.StatusForbidden || r.Header.Get("Authorization") != "" {
				t.Fatalf("%s without the secret: %d %s", target, r.Status, r.Body)
			}
		}
	})

	t.Run("connections to bffgate and the API are reused", func(t *testing.T) {
		// The documented configurations keep their connections open:
		// requests one after another reuse them (one connection per
		// request would be n new connections each). Every other one is a
		// POST with a chunked body: the auth subrequest, which carries no
		// body, must say so, or bffgate would read the next request on
		// the connection as its body.
		const n = 10
		sess := sessionCookie(t, c, u)
		authz, api := s.authzConns.Load(), s.api.Conns()
		for i := range n {
			req, err := http.NewRequest("GET", s.url+"/api/orders", nil)
			if err != nil {
				t.Fatal(err)
			}
			body := fmt.Sprintf("order-%d", i)
			if i%2 == 1 {
				// A reader of unknown length: the client sends it chunked.
				req, err = http.NewRequest("POST", s.url+"/api/orders", io.MultiReader(strings.NewReader(body)))
				if err != nil {
					t.Fatal(err)
				}
			}
			req.Header.Set("Cookie", sess)
			req.Header.Set("X-CSRF", "1")
			if r := flowtest.Send(t, http.DefaultClient, req); r.Status != http.StatusOK {
				t.Fatalf("%s: status = %d (body %s)", req.Method, r.Status, r.Body)
			}
			if got := s.api.LastBody(); i%2 == 1 && got != body {
				t.Fatalf("the API got body %q, want %q", got, body)
			}
		}
		if got := s.authzConns.Load() - authz; got > 1 {
			t.Errorf("bffgate got %d new connections for %d requests, want at most 1", got, n)
		}
		if got := s.api.Conns() - api; got > 1 {
			t.Errorf("the API got %d new connections for %d requests, want at most 1", got, n)
		}
	})

	t.Run("logout", func(t *testing.T) {
		r := s.do(c, "POST", "/logout", "", "X-CSRF", "1")
		if r.Status != http.StatusOK {
			t.Fatalf("/logout status = %d (body %s)", r.Status, r.Body)
		}
		before := s.api.Count()
		r = s.do(c, "GET", "/api/orders", "", "X-CSRF", "1")
		if r.Status != http.StatusUnauthorized || s.api.Count() != before {
			t.Fatalf("after logout: %d, API reached: %v", r.Status, s.api.Count() != before)
		}
	})

	// What reached the API, ever: the bearer, never a BFF cookie or the
	// secret.
	for _, req := range s.api.Requests() {
		if strings.Contains(req.Header.Get("Cookie"), "__Host-bffgate") {
			t.Errorf("the API got the BFF's cookie: %s %s", req.Method, req.URL)
		}
		if req.Header.Get(DefaultSecretHeader) != "" {
			t.Errorf("the API got the shared secret")
		}
		if !strings.HasPrefix(req.Header.Get("Authorization"), "Bearer ") {
			t.Errorf("the API got a request without a bearer: %s %s", req.Method, req.URL)
		}
	}
	if s.api.Count() == 0 {
		t.Error("the API was never reached")
	}
}

// sessionCookie returns the browser's session cookie, name=value.
func sessionCookie(t *testing.T, c *http.Client, u *url.URL) string {
	t.Helper()
	for _, ck := range c.Jar.Cookies(u) {
		if ck.Name == "__Host-bffgate" {
			return ck.Name + "=" + ck.Value
		}
	}
	t.Fatal("no session cookie in the jar")
	return ""
}

func TestNginx(t *testing.T) {
	port := extauthztest.FreePort(t)
	s := newStack(t, port)
	extauthztest.Start(t, "nginx", port, s.vars())
	s.flow(t)
}

func TestCaddy(t *testing.T) {
	port := extauthztest.FreePort(t)
	s := newStack(t, port)
	extauthztest.Start(t, "caddy", port, s.vars())
	s.flow(t)
}

func (s *stack) vars() extauthztest.Vars {
	return extauthztest.Vars{Authz: extauthztest.HostOf(s.authz.URL), API: extauthztest.HostOf(s.api.URL), Secret: testSecret}
}
