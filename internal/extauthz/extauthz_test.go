package extauthz

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bffgate/bffgate/core/bff"
	"github.com/bffgate/bffgate/core/session"
	"github.com/bffgate/bffgate/core/session/memstore"
)

// These tests drive the handler directly, with engines whose provider is
// unreachable (nothing here needs it) and sessions written to the store
// as the engine writes them. proxy_test.go runs the whole flow through
// real nginx and Caddy and the real test OpenID Provider.

const testKey = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="

func testBFF(store session.Store) bff.Config {
	return bff.Config{
		Issuer: "http://127.0.0.1:1", ClientID: "c", ClientSecret: "s",
		RedirectURL:     "http://app.example/oauth/callback",
		CookieKeys:      []string{testKey},
		IdentityHeaders: []bff.IdentityHeader{{Header: "X-User", Claim: "sub"}},
		Store:           store,
		HTTPTimeout:     1,
		Logger:          slog.New(slog.DiscardHandler),
	}
}

// fixture is a Server with one app and one live session.
type fixture struct {
	s      *Server
	cookie string // the session cookie, name=value
}

func newFixture(t testing.TB, edit func(c *Config)) *fixture {
	t.Helper()
	st := memstore.New(nil)
	c := &Config{Apps: []App{{BFF: testBFF(st)}}}
	if edit != nil {
		edit(c)
	}
	s, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	id, err := session.NewID()
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	m := &session.Manager{Store: st, Idle: time.Hour, Max: time.Hour}
	err = m.Save(context.Background(), id, &session.Session{
		Issuer: "http://127.0.0.1:1", Subject: "alice", Claims: `{"sub":"alice"}`, Identity: "sub\x00alice\x00",
		IDToken: "h.p.s", AccessToken: "access-token-0123456789", TokenType: "Bearer",
		RefreshToken: "refresh-token", Expiry: now.Add(time.Hour), Created: now,
	})
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{s: s, cookie: "__Host-bffgate=" + id.String()}
}

// check sends a request to the server from a loopback peer; header pairs
// are name, value, ...
func (f *fixture) check(method, target string, header ...string) *httptest.ResponseRecorder {
	var r *http.Request
	if strings.HasPrefix(target, "/") {
		r = httptest.NewRequest(method, "http://bffgate.internal"+target, nil)
		r.RequestURI = target // origin-form, as a server reads it
	} else {
		r = httptest.NewRequest(method, target, nil) // absolute-form
	}
	r.RemoteAddr = "127.0.0.1:40000"
	for i := 0; i+1 < len(header); i += 2 {
		if header[i] == "Host" {
			r.Host = header[i+1] // as net/http reads it
			continue
		}
		r.Header.Add(header[i], header[i+1])
	}
	w := httptest.NewRecorder()
	f.s.ServeHTTP(w, r)
	return w
}

func errorCode(t *testing.T, w *httptest.ResponseRecorder) string {
	t.Helper()
	var body struct {
		Error string `json:"error"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
		t.Fatalf("body %q is not JSON: %v", w.Body.Bytes(), err)
	}
	return body.Error
}

// wantDenied asserts a clean denial: not 2xx, a JSON error code, and no
// header a proxy would copy upstream.
func wantDenied(t *testing.T, w *httptest.ResponseRecorder, status int, code string) {
	t.Helper()
	if w.Code != status {
		t.Fatalf("status = %d, want %d (body %s)", w.Code, status, w.Body.Bytes())
	}
	if got := errorCode(t, w); got != code {
		t.Fatalf("error = %q, want %q", got, code)
	}
	for _, h := range []string{"Authorization", "X-User", HeaderRemove} {
		if v := w.Header().Get(h); v != "" {
			t.Fatalf("denial carries %s: %q", h, v)
		}
	}
}

func TestNginxAllow(t *testing.T) {
	f := newFixture(t, nil)
	w := f.check("GET", PathNginx, "X-Original-Method", "GET", "X-Original-URI", "/api/orders?page=2",
		"Host", "app.example", "Cookie", "theme=dark; "+f.cookie, "X-Csrf", "1", "X-User", "admin")
	if w.Code != http.StatusOK {
		t.Fatalf("status = %d, want 200 (body %s)", w.Code, w.Body.Bytes())
	}
	want := map[string]string{
		"Authorization": "Bearer access-token-0123456789",
		"Cookie":        "theme=dark", // the client's cookies less the session cookie
		"X-User":        "alice",      // the session's claim, not the forged "admin"
		"Cache-Control": "no-store",
	}
	for name, v := range want {
		if got := w.Header().Get(name); got != v {
			t.Errorf("%s = %q, want %q", name, got, v)
		}
	}
	if w.Body.Len() != 0 {
		t.Errorf("allow has a body: %q", w.Body.Bytes())
	}
}

func TestForwardAllowOnlySessionCookie(t *testing.T) {
	f := newFixture(t, nil)
	w := f.check("GET", PathForward, "X-Forwarded-Method", "DELETE", "X-Forwarded-Uri", "/api/orders/7",
		"X-Forwarded-Host", "app.example", "X-Forwarded-Proto", "https", "Cookie", f.cookie, "X-Csrf", "1")
	if w.Code != http.StatusOK {
		t.Fatalf("status = %d, want 200 (body %s)", w.Code, w.Body.Bytes())
	}
	// No cookie is left for the upstream: an empty Cookie header, which
	// the proxy sets (nginx: removes) in place of the client's.
	if v, ok := w.Header()["Cookie"]; !ok || len(v) != 1 || v[0] != "" {
		t.Fatalf("Cookie = %q (present %v), want one empty value", v, ok)
	}
	if got := w.Header().Get("Authorization"); got != "Bearer access-token-0123456789" {
		t.Fatalf("Authorization = %q", got)
	}
}

// TestEnvoyHTTPContract checks the contract of Envoy's HTTP ext_authz
// (http_service with path_prefix /_bffgate/envoy), which cannot be
// installed here: the check request has the original method, the prefixed
// original path with its query, and the original Host; an allow is 200
// with headers to set and x-envoy-auth-headers-to-remove.
func TestEnvoyHTTPContract(t *testing.T) {
	f := newFixture(t, nil)
	w := f.check("POST", PathEnvoy+"/api/orders?x=1", "Host", "app.example", "Cookie", f.cookie,
		"X-Csrf", "1", "X-User", "admin", "X_User", "admin")
	if w.Code != http.StatusOK {
		t.Fatalf("status = %d, want 200 (body %s)", w.Code, w.Body.Bytes())
	}
	if got := w.Header().Get("Authorization"); got != "Bearer access-token-0123456789" {
		t.Fatalf("Authorization = %q", got)
	}
	if got := w.Header().Get("X-User"); got != "alice" {
		t.Fatalf("X-User = %q", got)
	}
	remove := strings.Split(w.Header().Get(HeaderRemove), ", ")
	for _, want := range []string{"cookie", "x_user"} {
		if !slices.Contains(remove, want) {
			t.Errorf("%s = %q, want it to list %q", HeaderRemove, remove, want)
		}
	}
	if slices.Contains(remove, "x-user") || slices.Contains(remove, "authorization") {
		t.Errorf("%s = %q removes a header it sets", HeaderRemove, remove)
	}

	// Without a session: the engine's 401, which Envoy sends to the client.
	w = f.check("GET", PathEnvoy+"/api/orders", "Host", "app.example", "X-Csrf", "1")
	wantDenied(t, w, http.StatusUnauthorized, "unauthenticated")
}

// TestTraefikContract checks Traefik's forwardAuth contract (Traefik
// cannot be installed here): X-Forwarded-Method, -Uri, -Host and -Proto on
// a GET; the headers in authResponseHeaders are deleted from the request
// and copied from a 2xx answer, so every managed header is present when
// the upstream must get it and absent when it must not.
func TestTraefikContract(t *testing.T) {
	f := newFixture(t, nil)
	client := http.Header{"Cookie": {"a=1; " + f.cookie + "; b=2"}, "X-Csrf": {"1"}, "X-User": {"admin"}, "Authorization": {"Basic Zm9yZ2Vk"}}
	w := f.check("GET", PathForward, "X-Forwarded-Method", "GET", "X-Forwarded-Uri", "/api/x",
		"X-Forwarded-Host", "app.example", "X-Forwarded-Proto", "https",
		"Cookie", client.Get("Cookie"), "X-Csrf", "1", "X-User", "admin", "Authorization", "Basic Zm9yZ2Vk")
	if w.Code != http.StatusOK {
		t.Fatalf("status = %d (body %s)", w.Code, w.Body.Bytes())
	}
	// Traefik's copy, authResponseHeaders: [Authorization, Cookie, X-User].
	up := client.Clone()
	for _, name := range []string{"Authorization", "Cookie", "X-User"} {
		up.Del(name)
		if v := w.Header().Values(name); len(v) > 0 {
			up[name] = v
		}
	}
	want := http.Header{"Authorization": {"Bearer access-token-0123456789"}, "Cookie": {"a=1; b=2"}, "X-User": {"alice"}, "X-Csrf": {"1"}}
	for name, v := range want {
		if got := up.Get(name); got != v[0] {
			t.Errorf("upstream %s = %q, want %q", name, got, v[0])
		}
	}
}

func TestDenials(t *testing.T) {
	f := newFixture(t, nil)
	big := strings.Repeat("a", 64<<10)
	nginxCheck := func(method, uri string, more ...string) []string {
		return append([]string{"X-Original-Method", method, "X-Original-URI", uri, "Host", "app.example", "Cookie", f.cookie, "X-Csrf", "1"}, more...)
	}
	tests := []struct {
		name   string
		method string
		target string
		header []string
		status int
		code   string
	}{
		{"no session", "GET", PathNginx, []string{"X-Original-Method", "GET", "X-Original-URI", "/api/x", "Host", "app.example", "X-Csrf", "1"}, 401, "unauthenticated"},
		{"no CSRF header", "GET", PathNginx, []string{"X-Original-Method", "GET", "X-Original-URI", "/api/x", "Host", "app.example", "Cookie", f.cookie}, 403, "csrf_header_missing"},
		{"foreign origin", "GET", PathNginx, nginxCheck("POST", "/api/x", "Origin", "https://evil.example"), 403, "origin_not_allowed"},
		{"dot segments", "GET", PathNginx, nginxCheck("GET", "/api/../x"), 400, "invalid_path"},
		{"encoded dot segments", "GET", PathForward, []string{"X-Forwarded-Method", "GET", "X-Forwarded-Uri", "/api/%2e%2e/x", "X-Forwarded-Host", "app.example", "Cookie", f.cookie, "X-Csrf", "1"}, 400, "invalid_path"},
		{"encoded slash", "GET", PathEnvoy + "/api%2fx", []string{"Host", "app.example", "Cookie", f.cookie, "X-Csrf", "1"}, 400, "invalid_path"},
		{"envoy dot segments", "GET", PathEnvoy + "/api/../admin", []string{"Host", "app.example", "Cookie", f.cookie, "X-Csrf", "1"}, 400, "invalid_path"},
		{"missing method", "GET", PathNginx, []string{"X-Original-URI", "/api/x", "Cookie", f.cookie, "X-Csrf", "1"}, 400, "invalid_request"},
		{"missing URI", "GET", PathNginx, []string{"X-Original-Method", "GET", "Cookie", f.cookie, "X-Csrf", "1"}, 400, "invalid_request"},
		{"missing forwarded headers", "GET", PathForward, []string{"Cookie", f.cookie, "X-Csrf", "1"}, 400, "invalid_request"},
		{"two URIs", "GET", PathNginx, nginxCheck("GET", "/api/x", "X-Original-URI", "/admin"), 400, "invalid_request"},
		{"absolute URI", "GET", PathNginx, nginxCheck("GET", "http://evil.example/api/x"), 400, "invalid_request"},
		{"asterisk", "GET", PathNginx, nginxCheck("OPTIONS", "*"), 400, "invalid_request"},
		{"space in URI", "GET", PathNginx, nginxCheck("GET", "/api/x HTTP/1.1"), 400, "invalid_request"},
		{"fragment", "GET", PathNginx, nginxCheck("GET", "/api/x#y"), 400, "invalid_request"},
		{"unknown method", "GET", PathNginx, nginxCheck("BREW", "/api/x"), 405, "method_not_allowed"},
		{"malformed method", "GET", PathNginx, nginxCheck("GE T", "/api/x"), 400, "invalid_request"},
		{"long method", "GET", PathNginx, nginxCheck(strings.Repeat("G", 100), "/api/x"), 400, "invalid_request"},
		{"64 KiB URI", "GET", PathNginx, nginxCheck("GET", "/api/"+big), 414, "uri_too_long"},
		{"64 KiB cookie", "GET", PathNginx, nginxCheck("GET", "/api/x", "Cookie", "junk="+big), 431, "cookie_too_large"},
		{"64 KiB host", "GET", PathForward, []string{"X-Forwarded-Method", "GET", "X-Forwarded-Uri", "/api/x", "X-Forwarded-Host", big, "Cookie", f.cookie, "X-Csrf", "1"}, 400, "invalid_request"},
		{"look-alike identity header", "GET", PathNginx, nginxCheck("GET", "/api/x", "X_User", "admin"), 400, "invalid_request"},
		{"look-alike gateway header", "GET", PathForward, []string{"X-Forwarded-Method", "GET", "X-Forwarded-Uri", "/api/x", "X-Forwarded-Host", "app.example", "Cookie", f.cookie, "X-Csrf", "1", "X_Forwarded_For", "10.0.0.1"}, 400, "invalid_request"},
		{"BFF endpoint with a 2xx through the subrequest", "GET", PathNginx, nginxCheck("GET", "/session"), 404, "not_found"},
		{"logout through the subrequest", "GET", PathForward, []string{"X-Forwarded-Method", "POST", "X-Forwarded-Uri", "/logout", "X-Forwarded-Host", "app.example", "Cookie", f.cookie, "X-Csrf", "1"}, 404, "not_found"},
		{"absolute-form request line", "GET", "http://app.example/api/x", []string{"Host", "app.example", "Cookie", f.cookie, "X-Csrf", "1"}, 400, "invalid_request"},
		{"API request routed directly", "GET", "/api/x", []string{"Host", "app.example", "Cookie", f.cookie, "X-Csrf", "1"}, 404, "not_found"},
		{"unknown bffgate path", "GET", "/_bffgate/other", nil, 404, "not_found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantDenied(t, f.check(tt.method, tt.target, tt.header...), tt.status, tt.code)
		})
	}
	// Nothing above ended the session: /logout through the subrequest
	// was refused before the engine saw it.
	if w := f.check("GET", PathNginx, nginxCheck("GET", "/api/x")...); w.Code != http.StatusOK {
		t.Fatalf("after the denials: status = %d (body %s)", w.Code, w.Body.Bytes())
	}
}

func TestTrust(t *testing.T) {
	const secret = "0123456789abcdef-secret"
	t.Run("loopback only", func(t *testing.T) {
		f := newFixture(t, nil)
		for _, remote := range []string{"192.0.2.1:5000", "[2001:db8::1]:5000", "garbage", ""} {
			r := httptest.NewRequest("GET", "http://bffgate.internal"+PathNginx, nil)
			r.RemoteAddr = remote
			r.Header.Set("X-Original-Method", "GET")
			r.Header.Set("X-Original-URI", "/api/x")
			r.Header.Set("Cookie", f.cookie)
			r.Header.Set("X-Csrf", "1")
			w := httptest.NewRecorder()
			f.s.ServeHTTP(w, r)
			wantDenied(t, w, http.StatusForbidden, "invalid_request")
		}
	})
	t.Run("secret", func(t *testing.T) {
		f := newFixture(t, func(c *Config) { c.Secret = secret })
		allow := []string{"X-Original-Method", "GET", "X-Original-URI", "/api/x", "Host", "app.example", "Cookie", f.cookie, "X-Csrf", "1"}
		for name, extra := range map[string][]string{
			"missing":  nil,
			"wrong":    {DefaultSecretHeader, secret + "x"},
			"prefix":   {DefaultSecretHeader, secret[:16]},
			"repeated": {DefaultSecretHeader, secret, DefaultSecretHeader, secret},
		} {
			wantDenied(t, f.check("GET", PathNginx, append(allow, extra...)...), http.StatusForbidden, "invalid_request")
			_ = name
		}
		w := f.check("GET", PathNginx, append(allow, DefaultSecretHeader, secret)...)
		if w.Code != http.StatusOK {
			t.Fatalf("with the secret: status = %d (body %s)", w.Code, w.Body.Bytes())
		}
		if v := w.Header().Get(DefaultSecretHeader); v != "" {
			t.Fatal("the secret is echoed")
		}
		// The secret is not one of the client's headers: it never ends up
		// in a header the proxy copies upstream.
		for name, v := range w.Header() {
			if strings.Contains(strings.Join(v, ","), secret) {
				t.Fatalf("%s carries the secret", name)
			}
		}
	})
}

// TestApps selects the app by host, then by the longest path prefix.
func TestApps(t *testing.T) {
	st := memstore.New(nil)
	only := func(methods ...string) bff.Config {
		c := testBFF(st)
		c.AllowedMethods = methods
		return c
	}
	bCfg := only("GET")
	bCfg.CookieName = "__Host-b"
	cCfg := only("PUT")
	cCfg.CookieName = "__Host-c"
	s, err := New(&Config{Apps: []App{
		{Name: "any", BFF: only("DELETE")},
		{Name: "b", Hosts: []string{"b.example"}, BFF: bCfg},
		{Name: "c", Hosts: []string{"b.example:8443"}, PathPrefix: "/c/", BFF: cCfg},
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	f := &fixture{s: s}
	tests := []struct {
		host, uri, app string
	}{
		{"a.example", "/x", "any"},
		{"B.Example", "/x", "b"},
		{"b.example:8443", "/x", "b"},
		{"b.example:8443", "/c/x", "c"},
		{"b.example", "/c/x", "b"},
	}
	allowed := map[string]string{"any": "DELETE", "b": "GET", "c": "PUT"}
	for _, tt := range tests {
		// Each app allows one method: the one that reaches the session
		// check (401) names the app, the others get 405.
		for app, m := range allowed {
			w := f.check("GET", PathForward, "X-Forwarded-Method", m, "X-Forwarded-Uri", tt.uri, "X-Forwarded-Host", tt.host, "X-Csrf", "1")
			want := http.StatusMethodNotAllowed
			if app == tt.app {
				want = http.StatusUnauthorized
			}
			if w.Code != want {
				t.Errorf("%s %s%s: status %d, want %d (app %s)", m, tt.host, tt.uri, w.Code, want, tt.app)
			}
		}
	}
}

// TestOtherAppsCookies: on a shared host the browser sends every app's
// session cookie to every path; none reaches another app's upstream.
func TestOtherAppsCookies(t *testing.T) {
	f := newFixture(t, func(c *Config) {
		other := testBFF(nil)
		other.CookieName = "__Host-other"
		c.Apps[0].Hosts = []string{"app.example"}
		c.Apps = append(c.Apps, App{Hosts: []string{"app.example"}, PathPrefix: "/other/", BFF: other})
	})
	cookie := "theme=dark; __Host-other=abc; " + f.cookie + "; __Host-other-login-x=y"
	w := f.check("GET", PathNginx, "X-Original-Method", "GET", "X-Original-URI", "/api/x", "Host", "app.example", "Cookie", cookie, "X-Csrf", "1")
	if w.Code != http.StatusOK || w.Header().Get("Cookie") != "theme=dark" {
		t.Fatalf("nginx: %d, Cookie %q, want 200 and theme=dark", w.Code, w.Header().Get("Cookie"))
	}
	w = f.check("GET", PathEnvoy+"/api/x", "Host", "app.example", "Cookie", "__Host-other=abc; "+f.cookie, "X-Csrf", "1")
	if w.Code != http.StatusOK || w.Header().Get("Cookie") != "" || !strings.Contains(w.Header().Get(HeaderRemove), "cookie") {
		t.Fatalf("envoy: %d, Cookie %q, remove %q, want the cookie removed", w.Code, w.Header().Get("Cookie"), w.Header().Get(HeaderRemove))
	}
}

func TestConfig(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "extauthz.json")
	write := func(s string) {
		if err := os.WriteFile(file, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(`{"apps": [{"bff": {"issuer": "http://127.0.0.1:1"}}], "lisen": "x"}`)
	if _, err := Load(file); err == nil || !strings.Contains(err.Error(), "lisen") {
		t.Fatalf("unknown field: err = %v", err)
	}
	write(`{"apps": [{"bff": {"issuer": "http://127.0.0.1:1", "isuer": "x"}}]}`)
	if _, err := Load(file); err == nil || !strings.Contains(err.Error(), "isuer") {
		t.Fatalf("unknown field in bff: err = %v", err)
	}
	write(`{"apps": []} {"apps": []}`)
	if _, err := Load(file); err == nil {
		t.Fatal("two JSON values: no error")
	}
	write(`{"secret": "env:BFFGATE_TEST_EXTAUTHZ_SECRET", "apps": [{"hosts": ["app.example"], "path_prefix": "/app/", "bff": {"issuer": "http://127.0.0.1:1"}}]}`)
	c, err := Load(file)
	if err != nil {
		t.Fatal(err)
	}
	if c.Secret != "env:BFFGATE_TEST_EXTAUTHZ_SECRET" || c.Apps[0].PathPrefix != "/app/" || c.Apps[0].BFF.Issuer != "http://127.0.0.1:1" {
		t.Fatalf("loaded %+v", c)
	}

	good := func() *Config { return &Config{Apps: []App{{BFF: testBFF(nil)}}} }
	bad := []struct {
		name, want string
		edit       func(c *Config)
	}{
		{"no apps", "apps", func(c *Config) { c.Apps = nil }},
		{"short secret", "secret", func(c *Config) { c.Secret = "short" }},
		{"unset env secret", "BFFGATE_TEST_EXTAUTHZ_UNSET", func(c *Config) { c.Secret = "env:BFFGATE_TEST_EXTAUTHZ_UNSET" }},
		{"bad secret header", "secret_header", func(c *Config) { c.SecretHeader = "X Secret" }},
		{"relative prefix", "path_prefix", func(c *Config) { c.Apps[0].PathPrefix = "app/" }},
		{"unsafe prefix", "path_prefix", func(c *Config) { c.Apps[0].PathPrefix = "/a/../b/" }},
		{"reserved prefix", "path_prefix", func(c *Config) { c.Apps[0].PathPrefix = "/_bffgate/envoy/" }},
		{"bad host", "hosts", func(c *Config) { c.Apps[0].Hosts = []string{"a.example/x"} }},
		{"same app twice", "same hosts", func(c *Config) { c.Apps = append(c.Apps, App{BFF: testBFF(nil)}) }},
		{"bad bff config", "apps[0]", func(c *Config) { c.Apps[0].BFF.Issuer = "" }},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			c := good()
			tt.edit(c)
			s, err := New(c)
			if err == nil {
				s.Close()
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to name %q", err, tt.want)
			}
		})
	}
	t.Setenv("BFFGATE_TEST_EXTAUTHZ_SECRET", "a-secret-of-enough-length")
	c = good()
	c.Secret = "env:BFFGATE_TEST_EXTAUTHZ_SECRET"
	s, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if string(s.secret) != "a-secret-of-enough-length" {
		t.Fatal("env: secret not read")
	}

	for _, tt := range []struct {
		listen string
		secret bool
		ok     bool
	}{
		{"", false, true}, {"127.0.0.1:9191", false, true}, {"[::1]:9191", false, true},
		{"0.0.0.0:9191", false, false}, {":9191", false, false}, {"10.0.0.1:9191", false, false}, {"localhost:9191", false, false},
		{"0.0.0.0:9191", true, true},
	} {
		_, err := (&Config{Listen: tt.listen}).listen("", tt.secret)
		if (err == nil) != tt.ok {
			t.Errorf("listen %q, secret %v: err = %v, want ok %v", tt.listen, tt.secret, err, tt.ok)
		}
	}
}

// FuzzServe throws hostile subrequests at every contract: never a panic,
// every answer is an allow or a JSON denial, and an allow only for a
// request that carries the session cookie and the CSRF header and whose
// path is safe.
func FuzzServe(f *testing.F) {
	fx := newFixture(f, nil)
	f.Add(0, "GET", "/api/x?a=1", "app.example", fx.cookie, "1", "")
	f.Add(1, "POST", "/api/../x", "app.example", fx.cookie, "1", "X_User")
	f.Add(2, "DELETE", "/api/%2e%2e/x", "", fx.cookie, "", "")
	f.Add(3, "GET", "/session", "app.example", "", "", "")
	f.Add(0, "BREW", "*", "a b", "__Host-bffgate=\x00", "1", "X-User")
	f.Fuzz(func(t *testing.T, kind int, method, uri, host, cookie, csrf, extra string) {
		r := httptest.NewRequest("GET", "http://bffgate.internal/", nil)
		r.RemoteAddr = "127.0.0.1:40000"
		set := func(name, v string) {
			if v != "" {
				r.Header[name] = []string{v}
			}
		}
		switch kind & 3 {
		case 0:
			r.URL.Path, r.RequestURI = PathNginx, PathNginx
			set("X-Original-Method", method)
			set("X-Original-Uri", uri)
			r.Host = host
		case 1:
			r.URL.Path, r.RequestURI = PathForward, PathForward
			set("X-Forwarded-Method", method)
			set("X-Forwarded-Uri", uri)
			set("X-Forwarded-Host", host)
		case 2:
			r.Method, r.RequestURI, r.Host = method, PathEnvoy+uri, host
			r.URL.Path = PathEnvoy + "/"
		default:
			r.Method, r.RequestURI, r.Host = method, uri, host
			r.URL.Path = "/"
		}
		set("Cookie", cookie)
		set("X-Csrf", csrf)
		if extra != "" {
			r.Header[extra] = []string{"admin"}
		}
		w := httptest.NewRecorder()
		fx.s.ServeHTTP(w, r)
		if w.Code == http.StatusOK && w.Header().Get("Authorization") != "" {
			if !strings.Contains(cookie, fx.cookie) || csrf != "1" || kind&3 == 3 {
				t.Fatalf("allowed kind %d %q %q with cookie %q csrf %q", kind&3, method, uri, cookie, csrf)
			}
			path, _, _ := strings.Cut(uri, "?")
			if !bff.SafePath(path) {
				t.Fatalf("allowed the unsafe path %q", uri)
			}
			if w.Header().Get("X-User") != "alice" {
				t.Fatalf("allowed with X-User %q", w.Header().Get("X-User"))
			}
			return
		}
		if w.Code >= 200 && w.Code < 300 && w.Header().Get("Content-Type") != "application/json" {
			t.Fatalf("a 2xx that is not JSON and not an allow: %d %q", w.Code, w.Body.Bytes())
		}
		if w.Code >= 400 {
			var body struct {
				Error string `json:"error"`
			}
			if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil || body.Error == "" {
				t.Fatalf("%d without a JSON error code: %q", w.Code, w.Body.Bytes())
			}
		}
	})
}

func TestRun(t *testing.T) {
	file := filepath.Join(t.TempDir(), "extauthz.json")
	os.WriteFile(file, []byte(`{"listen": "127.0.0.1:0", "apps": [{"bff": {
		"issuer": "http://127.0.0.1:1", "client_id": "c", "client_secret": "s",
		"redirect_url": "http://app.example/oauth/callback", "cookie_keys": ["`+testKey+`"]}}]}`), 0o600)
	for _, args := range [][]string{nil, {"-config", file + ".missing"}, {"-config", file, "-listen", "0.0.0.0:0"}} {
		if err := run(context.Background(), args, io.Discard, nil); err == nil {
			t.Errorf("run %q: no error", args)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	addr := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"-config", file}, io.Discard, func(a string) { addr <- a }) }()
	var base string
	select {
	case a := <-addr:
		base = "http://" + a
	case err := <-done:
		t.Fatalf("run: %v", err)
	}
	req, _ := http.NewRequest("GET", base+PathNginx, nil)
	req.Header.Set("X-Original-Method", "GET")
	req.Header.Set("X-Original-URI", "/api/x")
	req.Header.Set("X-CSRF", "1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("status = %d, want 401", resp.StatusCode)
	}
	// A header over the listener's 64 KiB limit: refused by the server.
	req.Header.Set("X-Big", strings.Repeat("a", 70<<10))
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
			t.Fatalf("70 KiB header: status = %d, want 431", resp.StatusCode)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("run after shutdown: %v", err)
	}
}

// TestCheck is the entry of transports that carry the whole request
// (the gRPC service in its own module, tested there end to end).
func TestCheck(t *testing.T) {
	f := newFixture(t, func(c *Config) {
		other := testBFF(nil)
		other.CookieName = "__Host-other"
		c.Apps = append(c.Apps, App{PathPrefix: "/other/", BFF: other})
	})
	ctx := context.Background()
	// The BFF's own paths are answered, not refused as in a subrequest.
	if res := f.s.Check(ctx, "GET", "/session", "app.example", http.Header{}, nil); res.Status != http.StatusUnauthorized {
		t.Fatalf("/session: %d %s", res.Status, res.Body)
	}
	h := http.Header{"Cookie": {"__Host-other=x; " + f.cookie}, "X-Csrf": {"1"}, DefaultSecretHeader: {"s"}}
	res := f.s.Check(ctx, "GET", "/api/x?y=1", "app.example", h, nil)
	if !res.Forward() || res.Set.Get("Authorization") != "Bearer access-token-0123456789" || !slices.Contains(res.Del, "Cookie") {
		t.Fatalf("API request: %+v", res)
	}
	if _, ok := h[DefaultSecretHeader]; ok {
		t.Fatal("the secret header is passed on")
	}
	if res := f.s.Check(ctx, "GET", "/api/../x", "app.example", http.Header{"Cookie": {f.cookie}, "X-Csrf": {"1"}}, nil); res.Status != http.StatusBadRequest {
		t.Fatalf("dot segments: %d", res.Status)
	}
	if !f.s.Trusted("127.0.0.1:1", nil) || f.s.Trusted("192.0.2.1:1", nil) {
		t.Fatal("Trusted: loopback rule")
	}
	if f.s.MayListen("127.0.0.1:9192") != nil || f.s.MayListen("0.0.0.0:9192") == nil {
		t.Fatal("MayListen: loopback rule")
	}
}
