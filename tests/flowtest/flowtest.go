// Package flowtest drives a BFF as a browser does, for the tests of every
// adapter: the engine behind its net/http middleware (core/bff), the Tyk
// test host, `bffgate serve` and the forward-auth proxies. It sends
// requests with a cookie jar that does not follow redirects (op.Browser),
// runs the code flow against the test OpenID Provider of tests/op, and
// records what reached the API behind the BFF.
//
// The Kong suite drives the plugin through go-pdk's harness rather than
// HTTP; it shares Response and the OP's login, not Do.
package flowtest

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/bffgate/bffgate/tests/op"
)

// Response is what the BFF (or the gateway in front of it) answered.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// JSON decodes the body as one JSON object, failing the test if it is not.
func (r *Response) JSON(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.Body, &m); err != nil {
		t.Fatalf("body %q is not JSON: %v", r.Body, err)
	}
	return m
}

// WantError asserts the BFF's JSON error answer: this status, this error
// code, Content-Type application/json.
func (r *Response) WantError(t testing.TB, status int, code string) {
	t.Helper()
	if r.Status != status {
		t.Fatalf("status = %d, want %d (body %s)", r.Status, status, r.Body)
	}
	if got := r.JSON(t)["error"]; got != code {
		t.Fatalf("error = %v, want %q (body %s)", got, code, r.Body)
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type = %q, want application/json", ct)
	}
}

// Do sends one request without a body; header holds name, value pairs,
// each set on the request (replacing an earlier value of the name).
func Do(t testing.TB, c *http.Client, method, target string, header ...string) *Response {
	t.Helper()
	req, err := http.NewRequest(method, target, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	return Send(t, c, req)
}

// DoRaw sends a request to base with the path exactly as given, dot
// segments and encodings included, as curl's --path-as-is does.
func DoRaw(t testing.TB, c *http.Client, method, base, path string, h http.Header) *Response {
	t.Helper()
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	if h == nil {
		h = http.Header{}
	}
	return Send(t, c, &http.Request{Method: method, URL: &url.URL{Scheme: u.Scheme, Host: u.Host, Opaque: path}, Header: h, Host: u.Host})
}

// Send sends req and reads the whole answer.
func Send(t testing.TB, c *http.Client, req *http.Request) *Response {
	t.Helper()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading the answer to %s %s: %v", req.Method, req.URL.Path, err)
	}
	return &Response{resp.StatusCode, resp.Header, body}
}

// Authorize logs user in at the provider for the authorization URL the
// BFF's /login redirected to, and returns the callback URL the provider
// sends the browser to, not yet requested.
func Authorize(t testing.TB, p *op.Server, c *http.Client, authURL, user, password string) string {
	t.Helper()
	cb, err := p.Login(context.Background(), c, authURL, user, password)
	if err != nil {
		t.Fatalf("login at the provider: %v", err)
	}
	return cb.String()
}

// Login runs the whole code flow as a browser: GET loginURL (a 302 to the
// provider), log user in there, GET the callback (a 302 back into the
// app). It returns where the callback sent the browser.
func Login(t testing.TB, p *op.Server, c *http.Client, loginURL, user, password string) string {
	t.Helper()
	r := Do(t, c, "GET", loginURL)
	if r.Status != http.StatusFound {
		t.Fatalf("GET %s: status = %d, want 302 (body %s)", loginURL, r.Status, r.Body)
	}
	r = Do(t, c, "GET", Authorize(t, p, c, r.Header.Get("Location"), user, password))
	if r.Status != http.StatusFound {
		t.Fatalf("callback status = %d, want 302 (body %s)", r.Status, r.Body)
	}
	return r.Header.Get("Location")
}

// Cookie is the value of the cookie name that c would send to base, or "".
func Cookie(c *http.Client, base, name string) string {
	u, err := url.Parse(base)
	if err != nil {
		return ""
	}
	for _, ck := range c.Jar.Cookies(u) {
		if ck.Name == name {
			return ck.Value
		}
	}
	return ""
}

// Grants is how many grants of kind ("authorization_code",
// "refresh_token", ...) the provider has issued so far.
func Grants(t testing.TB, p *op.Server, kind string) int {
	t.Helper()
	st, err := p.Stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return st.Grants[kind]
}

// Upstream is the API behind the BFF: it records every request it
// receives and answers with Answer, or else 200 with Body (`{"ok":true}`
// when empty) as JSON.
type Upstream struct {
	Body   string
	Answer http.HandlerFunc

	mu   sync.Mutex // guards reqs
	reqs []*http.Request
}

// ServeHTTP records r and answers.
func (u *Upstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	u.mu.Lock()
	u.reqs = append(u.reqs, r.Clone(context.Background()))
	u.mu.Unlock()
	if u.Answer != nil {
		u.Answer(w, r)
		return
	}
	body := u.Body
	if body == "" {
		body = `{"ok":true}`
	}
	w.Header().Set("Content-Type", "application/json")
	io.WriteString(w, body)
}

// Count is how many requests have reached the upstream.
func (u *Upstream) Count() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.reqs)
}

// Last is the latest request that reached the upstream; the test fails if
// none has.
func (u *Upstream) Last(t testing.TB) *http.Request {
	t.Helper()
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(u.reqs) == 0 {
		t.Fatal("the upstream received no request")
	}
	return u.reqs[len(u.reqs)-1]
}

// Resolve is target as an absolute URL: target itself when it is one,
// otherwise base+target.
func Resolve(base, target string) string {
	if strings.HasPrefix(target, "http://") || strings.HasPrefix(target, "https://") {
		return target
	}
	return base + target
}
