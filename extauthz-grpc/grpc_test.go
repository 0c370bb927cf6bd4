package extauthzgrpc

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"

	"github.com/bffgate/bffgate/core/bff"
	"github.com/bffgate/bffgate/internal/extauthz"
	"github.com/bffgate/bffgate/tests/op"
)

// These tests send CheckRequests shaped as Envoy's ext_authz filter sends
// them (attributes.request.http: method, path with query, host, lower-case
// headers; the shared secret in the gRPC metadata, as grpc_service's
// initial_metadata sets it) over a real gRPC connection, through the whole
// flow against the real test OpenID Provider. Envoy itself cannot be
// installed here.

const (
	testSecret = "test-shared-secret-0123456789"
	testKey    = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
)

type env struct {
	t      *testing.T
	op     *op.Server
	site   *url.URL // the host Envoy serves; nothing listens there
	client authv3.AuthorizationClient
	conn   *grpc.ClientConn
}

func newEnv(t *testing.T) *env { t.Helper(); return newEnvWith(t, nil, nil) }

// newEnvWith is newEnv with the OP's options and the app edited before
// they start.
func newEnvWith(t *testing.T, opEdit func(*op.Options), appEdit func(*extauthz.App)) *env {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t}
	e.site, _ = url.Parse(fmt.Sprintf("http://127.0.0.1:%d", freePort(t)))
	opts := op.Options{
		RedirectURIs:           []string{e.site.String() + "/oauth/callback"},
		PostLogoutRedirectURIs: []string{e.site.String() + "/logout/callback"},
		// With refresh_skew 1 s a token is fresh for 3 s, so the 30
		// parallel checks after it expired share one refresh however late
		// a loaded machine schedules the last of them (with the default
		// skew of 30 s every request would refresh).
		AccessTokenTTL: 4 * time.Second,
		Stderr:         io.Discard,
	}
	if opEdit != nil {
		opEdit(&opts)
	}
	e.op = op.StartT(t, opts)
	app := extauthz.App{BFF: bff.Config{
		Issuer: e.op.Issuer, ClientID: e.op.ClientID, ClientSecret: e.op.ClientSecret,
		RedirectURL:           e.site.String() + "/oauth/callback",
		PostLogoutRedirectURL: e.site.String() + "/logout/callback",
		CookieKeys:            []string{testKey},
		IdentityHeaders:       []bff.IdentityHeader{{Header: "X-User", Claim: "sub"}},
		RefreshSkew:           1,
		Logger:                slog.New(slog.DiscardHandler),
	}}
	if appEdit != nil {
		appEdit(&app)
	}
	s, err := extauthz.New(&extauthz.Config{Secret: testSecret, Apps: []extauthz.App{app}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, s, ln, nil) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
		s.Close()
	})
	e.conn, err = grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.conn.Close() })
	e.client = authv3.NewAuthorizationClient(e.conn)
	return e
}

func freePort(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// check sends one CheckRequest for the browser c (its cookies, merged as
// Envoy merges them) plus the header pairs given, lower-cased.
func (e *env) check(c *http.Client, method, path string, header ...string) *authv3.CheckResponse {
	e.t.Helper()
	return e.checkWith(metadata.Pairs("x-bffgate-secret", testSecret), c, method, path, header...)
}

func (e *env) checkWith(md metadata.MD, c *http.Client, method, path string, header ...string) *authv3.CheckResponse {
	e.t.Helper()
	h := map[string]string{":authority": e.site.Host, ":method": method, ":path": path, "user-agent": "test"}
	if c != nil {
		var cookies []string
		for _, ck := range c.Jar.Cookies(e.site) {
			cookies = append(cookies, ck.Name+"="+ck.Value)
		}
		if len(cookies) > 0 {
			h["cookie"] = strings.Join(cookies, "; ")
		}
	}
	for i := 0; i+1 < len(header); i += 2 {
		h[strings.ToLower(header[i])] = header[i+1]
	}
	req := &authv3.CheckRequest{Attributes: &authv3.AttributeContext{Request: &authv3.AttributeContext_Request{
		Http: &authv3.AttributeContext_HttpRequest{Method: method, Path: path, Host: e.site.Host, Scheme: "http", Protocol: "HTTP/1.1", Headers: h},
	}}}
	ctx := metadata.NewOutgoingContext(context.Background(), md)
	res, err := e.client.Check(ctx, req)
	if err != nil {
		e.t.Fatalf("Check: %v", err)
	}
	return res
}

// denial returns the denied answer's status, headers and body, failing
// the test on an allow; Set-Cookie goes into the browser's jar.
func (e *env) denial(c *http.Client, res *authv3.CheckResponse) (int, http.Header, []byte) {
	e.t.Helper()
	d := res.GetDeniedResponse()
	if d == nil || res.GetOkResponse() != nil {
		e.t.Fatalf("want a denial, got %v", res)
	}
	h := http.Header{}
	for _, o := range d.GetHeaders() {
		h.Add(o.GetHeader().GetKey(), o.GetHeader().GetValue())
	}
	if c != nil {
		c.Jar.SetCookies(e.site, (&http.Response{Header: h}).Cookies())
	}
	return int(d.GetStatus().GetCode()), h, []byte(d.GetBody())
}

func wantCode(t *testing.T, status int, body []byte, wantStatus int, code string) {
	t.Helper()
	var b struct {
		Error string `json:"error"`
	}
	json.Unmarshal(body, &b)
	if status != wantStatus || b.Error != code {
		t.Fatalf("denial %d %s, want %d %s", status, body, wantStatus, code)
	}
}

// upstream applies an OkHttpResponse to the client's headers as Envoy
// does and returns what the API gets.
func upstream(t *testing.T, client map[string]string, res *authv3.CheckResponse) map[string]string {
	t.Helper()
	ok := res.GetOkResponse()
	if ok == nil || res.GetDeniedResponse() != nil {
		t.Fatalf("want an allow, got %v", res)
	}
	up := map[string]string{}
	for k, v := range client {
		up[k] = v
	}
	for _, o := range ok.GetHeaders() {
		up[o.GetHeader().GetKey()] = o.GetHeader().GetValue()
	}
	for _, k := range ok.GetHeadersToRemove() {
		delete(up, k)
	}
	return up
}

func (e *env) login(c *http.Client) {
	e.t.Helper()
	status, h, body := e.denial(c, e.check(c, "GET", "/login?returnTo=%2Fapp"))
	if status != http.StatusFound {
		e.t.Fatalf("/login: %d %s", status, body)
	}
	cb, err := e.op.Login(context.Background(), c, h.Get("Location"), op.AliceUser, op.AlicePassword)
	if err != nil {
		e.t.Fatalf("login at the provider: %v", err)
	}
	status, h, body = e.denial(c, e.check(c, "GET", cb.RequestURI()))
	if status != http.StatusFound || h.Get("Location") != "/app" {
		e.t.Fatalf("callback: %d to %q (%s)", status, h.Get("Location"), body)
	}
}

func TestFlow(t *testing.T) {
	e := newEnv(t)
	c := op.Browser()
	c.Jar.SetCookies(e.site, []*http.Cookie{{Name: "theme", Value: "dark", Path: "/"}})

	status, _, body := e.denial(c, e.check(c, "GET", "/api/orders", "x-csrf", "1"))
	wantCode(t, status, body, http.StatusUnauthorized, "unauthenticated")

	e.login(c)
	status, _, body = e.denial(c, e.check(c, "GET", "/session"))
	if status != http.StatusOK || !strings.Contains(string(body), `"authenticated":true`) {
		t.Fatalf("/session: %d %s", status, body)
	}

	client := map[string]string{"x-csrf": "1", "x-user": "admin", "x_user": "admin", "cookie": "theme=dark; " + sessionCookie(t, c, e.site)}
	res := e.check(nil, "GET", "/api/orders?page=2", "x-csrf", "1", "x-user", "admin", "x_user", "admin", "cookie", client["cookie"])
	up := upstream(t, client, res)
	tok, ok := strings.CutPrefix(up["authorization"], "Bearer ")
	if !ok {
		t.Fatalf("the API gets authorization %q", up["authorization"])
	}
	info, err := e.op.Introspect(context.Background(), tok)
	if err != nil || info["active"] != true {
		t.Fatalf("the bearer is not an active token of the OP: %v %v", info, err)
	}
	if up["x-user"] != info["sub"] || up["cookie"] != "theme=dark" {
		t.Fatalf("the API gets x-user %q (want %v), cookie %q (want theme=dark)", up["x-user"], info["sub"], up["cookie"])
	}
	if _, ok := up["x_user"]; ok {
		t.Fatal("the API gets the look-alike x_user")
	}

	// Only the session cookie: Envoy removes the cookie header.
	only := map[string]string{"x-csrf": "1", "cookie": sessionCookie(t, c, e.site)}
	res = e.check(nil, "GET", "/api/orders", "x-csrf", "1", "cookie", only["cookie"])
	if up = upstream(t, only, res); up["cookie"] != "" || !slices.Contains(res.GetOkResponse().GetHeadersToRemove(), "cookie") {
		t.Fatalf("the API gets cookie %q; headers_to_remove %q", up["cookie"], res.GetOkResponse().GetHeadersToRemove())
	}

	t.Run("refresh once under 30 parallel checks", func(t *testing.T) {
		before := grants(t, e.op, op.GrantRefreshToken)
		time.Sleep(3500 * time.Millisecond) // the access token expires
		var wg sync.WaitGroup
		bearers := make([]string, 30)
		for i := range bearers {
			wg.Go(func() {
				res := e.check(c, "GET", "/api/orders", "x-csrf", "1")
				if ok := res.GetOkResponse(); ok != nil {
					for _, o := range ok.GetHeaders() {
						if o.GetHeader().GetKey() == "authorization" {
							bearers[i] = o.GetHeader().GetValue()
						}
					}
				}
			})
		}
		wg.Wait()
		for i, b := range bearers {
			if b == "" || b != bearers[0] || b == "Bearer "+tok {
				t.Fatalf("check %d: bearer %.12q, want the same new one for all", i, b)
			}
		}
		if got := grants(t, e.op, op.GrantRefreshToken) - before; got != 1 {
			t.Fatalf("%d refresh grants, want 1", got)
		}
	})

	refused := []struct {
		name, method, path string
		header             []string
		status             int
		code               string
	}{
		{"CSRF header missing", "GET", "/api/orders", nil, 403, "csrf_header_missing"},
		{"foreign Origin", "POST", "/api/orders", []string{"x-csrf", "1", "origin", "https://evil.example"}, 403, "origin_not_allowed"},
		{"dot segments", "GET", "/api/../admin", []string{"x-csrf", "1"}, 400, "invalid_path"},
		{"encoded slash", "GET", "/api%2fadmin", []string{"x-csrf", "1"}, 400, "invalid_path"},
		{"unknown method", "BREW", "/api/orders", []string{"x-csrf", "1"}, 405, "method_not_allowed"},
		{"empty method", "", "/api/orders", []string{"x-csrf", "1"}, 400, "invalid_request"},
		{"empty path", "GET", "", []string{"x-csrf", "1"}, 400, "invalid_request"},
		{"absolute path", "GET", "http://evil.example/api", []string{"x-csrf", "1"}, 400, "invalid_request"},
		{"64 KiB header", "GET", "/api/orders", []string{"x-csrf", "1", "x-big", strings.Repeat("a", 64<<10)}, 431, "invalid_request"},
		{"64 KiB path", "GET", "/api/" + strings.Repeat("a", 64<<10), []string{"x-csrf", "1"}, 414, "uri_too_long"},
	}
	for _, tt := range refused {
		t.Run("refused: "+tt.name, func(t *testing.T) {
			status, _, body := e.denial(nil, e.check(c, tt.method, tt.path, tt.header...))
			wantCode(t, status, body, tt.status, tt.code)
		})
	}

	t.Run("refused: no secret, wrong secret", func(t *testing.T) {
		for _, md := range []metadata.MD{nil, metadata.Pairs("x-bffgate-secret", testSecret+"x"), metadata.Pairs("x-bffgate-secret", testSecret, "x-bffgate-secret", testSecret)} {
			status, _, body := e.denial(nil, e.checkWith(md, c, "GET", "/api/orders", "x-csrf", "1"))
			wantCode(t, status, body, http.StatusForbidden, "invalid_request")
		}
	})

	t.Run("refused: missing attributes", func(t *testing.T) {
		ctx := metadata.AppendToOutgoingContext(context.Background(), "x-bffgate-secret", testSecret)
		for _, req := range []*authv3.CheckRequest{{}, {Attributes: &authv3.AttributeContext{}}, {Attributes: &authv3.AttributeContext{Request: &authv3.AttributeContext_Request{}}}} {
			res, err := e.client.Check(ctx, req)
			if err != nil {
				t.Fatal(err)
			}
			status, _, body := e.denial(nil, res)
			wantCode(t, status, body, http.StatusBadRequest, "invalid_request")
		}
	})

	t.Run("health", func(t *testing.T) {
		res, err := healthpb.NewHealthClient(e.conn).Check(context.Background(), &healthpb.HealthCheckRequest{Service: authv3.Authorization_ServiceDesc.ServiceName})
		if err != nil || res.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			t.Fatalf("health: %v %v", res, err)
		}
	})

	t.Run("logout", func(t *testing.T) {
		status, _, body := e.denial(c, e.check(c, "POST", "/logout", "x-csrf", "1"))
		if status != http.StatusOK || !strings.Contains(string(body), "end_session") && !strings.Contains(string(body), "http") {
			t.Fatalf("/logout: %d %s", status, body)
		}
		status, _, body = e.denial(c, e.check(c, "GET", "/api/orders", "x-csrf", "1"))
		if status != http.StatusUnauthorized {
			t.Fatalf("after logout: %d %s", status, body)
		}
	})
}

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

func grants(t *testing.T, s *op.Server, kind string) int {
	t.Helper()
	st, err := s.Stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return st.Grants[kind]
}
