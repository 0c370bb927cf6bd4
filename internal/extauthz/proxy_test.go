package extauthz

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"text/template"
	"time"

	"github.com/bffgate/bffgate/core/bff"
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

// apiRecorder is the upstream: the echo API, recording what reached it.
type apiRecorder struct {
	mu   sync.Mutex // guards reqs, bodies
	reqs []*http.Request
	body []string
	srv  *httptest.Server
}

func (a *apiRecorder) count() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.reqs)
}

func (a *apiRecorder) all() []*http.Request {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]*http.Request(nil), a.reqs...)
}

type stack struct {
	t     *testing.T
	op    *op.Server
	authz *httptest.Server
	api   *apiRecorder
	url   string // the proxy's base URL
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// newStack starts the echo API, the OP and bffgate extauthz (with the
// shared secret) for a proxy that will listen on port.
func newStack(t *testing.T, port int) *stack {
	t.Helper()
	s := &stack{t: t, url: fmt.Sprintf("http://127.0.0.1:%d", port), api: &apiRecorder{}}
	echo := op.EchoAPI(func() *op.Server { return s.op })
	s.api.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		s.api.mu.Lock()
		s.api.reqs = append(s.api.reqs, r.Clone(context.Background()))
		s.api.body = append(s.api.body, string(body))
		s.api.mu.Unlock()
		echo.ServeHTTP(w, r)
	}))
	t.Cleanup(s.api.srv.Close)
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
	s.authz = httptest.NewServer(srv)
	t.Cleanup(s.authz.Close)
	return s
}

func hostOf(u string) string { p, _ := url.Parse(u); return p.Host }

// startProxy writes the config from tmpl and runs the proxy until the test
// ends, waiting until it accepts connections.
func startProxy(t *testing.T, s *stack, port int, name, tmpl string, args func(dir, conf string) []string) {
	t.Helper()
	bin, err := exec.LookPath(name)
	if err != nil {
		// Debian installs nginx in /usr/sbin, which a user's PATH may lack.
		if bin, err = exec.LookPath(filepath.Join("/usr/sbin", name)); err != nil {
			t.Fatalf("%s is not installed: run scripts/deps.sh debs (make test does)", name)
		}
	}
	dir := t.TempDir()
	conf := filepath.Join(dir, name+".conf")
	var buf bytes.Buffer
	err = template.Must(template.New(name).Parse(tmpl)).Execute(&buf, map[string]any{
		"Dir": dir, "Authz": hostOf(s.authz.URL), "API": hostOf(s.api.srv.URL), "Secret": testSecret,
		"Listen": fmt.Sprintf("127.0.0.1:%d", port), "Site": s.url,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(conf, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	cmd := exec.Command(bin, args(dir, conf)...)
	cmd.Env = append(os.Environ(), "HOME="+dir, "XDG_CONFIG_HOME="+dir, "XDG_DATA_HOME="+dir)
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("%s output:\n%s", name, out.String())
			if b, err := os.ReadFile(filepath.Join(dir, "error.log")); err == nil {
				t.Logf("%s error.log:\n%s", name, b)
			}
		}
	})
	deadline := time.Now().Add(15 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
		if err == nil {
			c.Close()
			return
		}
		select {
		case <-done:
			t.Fatalf("%s exited: %s", name, out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s does not listen on %d: %s", name, port, out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

type answer struct {
	status int
	header http.Header
	body   []byte
}

func (a *answer) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(a.body, &m); err != nil {
		t.Fatalf("body %q is not JSON: %v", a.body, err)
	}
	return m
}

// do sends a request through the proxy; header pairs are name, value, ...
// A raw path (dot segments) is sent as written.
func (s *stack) do(c *http.Client, method, target, body string, header ...string) *answer {
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
	resp, err := c.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return &answer{resp.StatusCode, resp.Header, b}
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
		before := s.api.count()
		r := s.do(c, "GET", "/api/orders", "", "X-CSRF", "1")
		if r.status != http.StatusUnauthorized {
			t.Fatalf("status = %d, want 401 (body %s)", r.status, r.body)
		}
		if got := r.json(t)["error"]; got != "unauthenticated" {
			t.Fatalf("error = %v, want unauthenticated (body %s)", got, r.body)
		}
		if s.api.count() != before {
			t.Fatal("the API was reached without a session")
		}
	})

	// Login: /login and /oauth/callback are routed to bffgate directly.
	r := s.do(c, "GET", "/login?returnTo=%2Fapp", "")
	if r.status != http.StatusFound {
		t.Fatalf("/login status = %d, want 302 (body %s)", r.status, r.body)
	}
	cb, err := s.op.Login(context.Background(), c, r.header.Get("Location"), op.AliceUser, op.AlicePassword)
	if err != nil {
		t.Fatalf("login at the provider: %v", err)
	}
	if !strings.HasPrefix(cb.String(), s.url+"/oauth/callback?") {
		t.Fatalf("the provider sent the browser to %s", cb)
	}
	r = s.do(c, "GET", cb.String(), "")
	if r.status != http.StatusFound || r.header.Get("Location") != "/app" {
		t.Fatalf("callback: %d to %q, want 302 to /app (body %s)", r.status, r.header.Get("Location"), r.body)
	}
	if !strings.Contains(strings.Join(r.header.Values("Set-Cookie"), "\n"), "__Host-bffgate=") {
		t.Fatalf("callback set no session cookie: %q", r.header.Values("Set-Cookie"))
	}
	r = s.do(c, "GET", "/session", "")
	if r.status != http.StatusOK || r.json(t)["authenticated"] != true {
		t.Fatalf("/session: %d %s", r.status, r.body)
	}

	t.Run("API gets the bearer, never the session cookie", func(t *testing.T) {
		r := s.do(c, "POST", "/api/orders?page=2", "order-body", "X-CSRF", "1", "X-User", "admin")
		if r.status != http.StatusOK {
			t.Fatalf("status = %d (body %s)", r.status, r.body)
		}
		got := r.json(t)
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
		a := s.api
		a.mu.Lock()
		body := a.body[len(a.body)-1]
		a.mu.Unlock()
		if body != "order-body" {
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
		before := s.api.count()
		r := s.do(http.DefaultClient, "GET", "/api/orders", "", "Cookie", sessionCookie(t, c, u), "X-CSRF", "1", "X-User", "admin")
		if r.status != http.StatusOK {
			t.Fatalf("status = %d (body %s)", r.status, r.body)
		}
		reqs := s.api.all()
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
			before := s.api.count()
			r := s.do(c, tt.method, tt.path, "", tt.header...)
			if tt.name == "forged look-alike identity header" && r.status == http.StatusOK {
				// nginx drops header names with "_" (underscores_in_headers
				// off) before anything sees them, Envoy removes the one
				// bffgate names in x-envoy-auth-headers-to-remove: allowed,
				// without it.
				for _, req := range s.api.all()[before:] {
					for name, v := range req.Header {
						if strings.EqualFold(strings.ReplaceAll(name, "_", "-"), "X-User") && strings.Join(v, "") == "admin" {
							t.Fatalf("the API got %s: admin", name)
						}
					}
				}
				return
			}
			if s.api.count() != before {
				t.Fatalf("the API was reached (status %d)", r.status)
			}
			if r.status < 400 {
				t.Fatalf("status = %d, want a refusal (body %s)", r.status, r.body)
			}
			if tt.status != 0 {
				if r.status != tt.status || r.json(t)["error"] != tt.code {
					t.Fatalf("got %d %s, want %d %s", r.status, r.body, tt.status, tt.code)
				}
			}
			t.Logf("%s %s: %d %.100s", tt.method, tt.path, r.status, r.body)
		})
	}

	t.Run("a subrequest without the secret is refused", func(t *testing.T) {
		sess := sessionCookie(t, c, u)
		for _, target := range []string{PathNginx, PathForward, PathEnvoy + "/api/orders", "/session"} {
			r := s.do(http.DefaultClient, "GET", s.authz.URL+target, "", "Cookie", sess, "X-CSRF", "1",
				"X-Original-Method", "GET", "X-Original-URI", "/api/orders",
				"X-Forwarded-Method", "GET", "X-Forwarded-Uri", "/api/orders", "X-Forwarded-Host", u.Host)
			if r.status != http.StatusForbidden || r.header.Get("Authorization") != "" {
				t.Fatalf("%s without the secret: %d %s", target, r.status, r.body)
			}
		}
	})

	t.Run("logout", func(t *testing.T) {
		r := s.do(c, "POST", "/logout", "", "X-CSRF", "1")
		if r.status != http.StatusOK {
			t.Fatalf("/logout status = %d (body %s)", r.status, r.body)
		}
		before := s.api.count()
		r = s.do(c, "GET", "/api/orders", "", "X-CSRF", "1")
		if r.status != http.StatusUnauthorized || s.api.count() != before {
			t.Fatalf("after logout: %d, API reached: %v", r.status, s.api.count() != before)
		}
	})

	// What reached the API, ever: the bearer, never a BFF cookie or the
	// secret.
	for _, req := range s.api.all() {
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
	if s.api.count() == 0 {
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
	port := freePort(t)
	s := newStack(t, port)
	startProxy(t, s, port, "nginx", NginxTestConfig, func(dir, conf string) []string {
		return []string{"-p", dir, "-c", conf, "-e", filepath.Join(dir, "error.log")}
	})
	s.flow(t)
}

func TestCaddy(t *testing.T) {
	port := freePort(t)
	s := newStack(t, port)
	startProxy(t, s, port, "caddy", CaddyTestConfig, func(dir, conf string) []string {
		return []string{"run", "--config", conf, "--adapter", "caddyfile"}
	})
	s.flow(t)
}

// NginxServer is the server block of docs/extauthz.md's nginx
// configuration (TestDocs holds the doc to it).
const NginxServer = `server {
    listen {{.Listen}};

    # The BFF's own endpoints go to bffgate directly.
    location ~ ^/(login|oauth/callback|session|token|logout|logout/callback|backchannel-logout)$ {
        proxy_pass http://{{.Authz}};
        proxy_set_header Host $http_host;
        proxy_set_header X-Forwarded-Proto $scheme;
        proxy_set_header X-Bffgate-Secret "{{.Secret}}";
    }

    # Everything else asks bffgate first.
    location / {
        auth_request /_bffgate/auth;
        auth_request_set $bff_authorization $upstream_http_authorization;
        auth_request_set $bff_cookie $upstream_http_cookie;
        auth_request_set $bff_user $upstream_http_x_user;
        # Replaced, or removed when bffgate sent none (an empty value).
        proxy_set_header Authorization $bff_authorization;
        proxy_set_header Cookie $bff_cookie;
        proxy_set_header X-User $bff_user;
        # A refusal: bffgate answers the request itself, with its own
        # status, headers and JSON body.
        error_page 401 403 500 = @bffgate;
        proxy_pass http://{{.API}};
    }

    location = /_bffgate/auth {
        internal;
        proxy_pass http://{{.Authz}}/_bffgate/nginx;
        proxy_pass_request_body off;
        proxy_set_header Content-Length "";
        proxy_set_header X-Original-URI $request_uri;
        proxy_set_header X-Original-Method $request_method;
        proxy_set_header Host $http_host;
        proxy_set_header X-Forwarded-Proto $scheme;
        proxy_set_header X-Bffgate-Secret "{{.Secret}}";
    }

    location @bffgate {
        proxy_pass http://{{.Authz}};
        proxy_set_header Host $http_host;
        proxy_set_header X-Forwarded-Proto $scheme;
        proxy_set_header X-Bffgate-Secret "{{.Secret}}";
    }
}
`

// NginxTestConfig makes NginxServer a complete file for a test: files in
// the test's directory.
const NginxTestConfig = `daemon off;
worker_processes 1;
pid {{.Dir}}/nginx.pid;
error_log {{.Dir}}/error.log warn;
events { worker_connections 64; }
http {
access_log off;
client_body_temp_path {{.Dir}}/body;
proxy_temp_path {{.Dir}}/proxy;
fastcgi_temp_path {{.Dir}}/fastcgi;
uwsgi_temp_path {{.Dir}}/uwsgi;
scgi_temp_path {{.Dir}}/scgi;
` + NginxServer + `}
`

// CaddySite is the site block of docs/extauthz.md's Caddyfile.
const CaddySite = `{{.Site}} {
	# The BFF's own endpoints go to bffgate directly.
	@bff path /login /oauth/callback /session /token /logout /logout/callback /backchannel-logout
	handle @bff {
		reverse_proxy {{.Authz}} {
			header_up X-Bffgate-Secret "{{.Secret}}"
		}
	}

	# Everything else asks bffgate first: forward_auth spelled out, so
	# that each header bffgate manages is replaced, also by nothing.
	handle {
		reverse_proxy {{.Authz}} {
			method GET
			rewrite /_bffgate/forward
			header_up X-Forwarded-Method {method}
			header_up X-Forwarded-Uri {uri}
			header_up X-Bffgate-Secret "{{.Secret}}"
			@allowed status 2xx
			handle_response @allowed {
				request_header Authorization {http.reverse_proxy.header.Authorization}
				request_header Cookie {http.reverse_proxy.header.Cookie}
				request_header X-User {http.reverse_proxy.header.X-User}
				reverse_proxy {{.API}}
			}
		}
	}
}
`

// CaddyTestConfig makes CaddySite a complete Caddyfile for a test.
const CaddyTestConfig = `{
	admin off
	auto_https off
}

` + CaddySite
