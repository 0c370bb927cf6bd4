package serve

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"path"
	"strings"
	"testing"
	"time"

	"github.com/bffgate/bffgate/core/bff"
	"github.com/bffgate/bffgate/core/session"
	"github.com/bffgate/bffgate/core/session/memstore"
	"github.com/bffgate/bffgate/core/session/sessiontest"
	"github.com/bffgate/bffgate/tests/flowtest"
)

// The attacks of issue #11 against the documented layout: /files/api/
// through the BFF, /files/public/ public, one upstream that normalises
// paths (as python's http.server and most file servers do).

type attackEnv struct {
	srv    *httptest.Server
	up     *flowtest.Upstream
	cookie string // a valid session cookie
	token  string // its access token
}

func newAttackEnv(t *testing.T) *attackEnv {
	t.Helper()
	e := &attackEnv{up: &flowtest.Upstream{Answer: func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Access-Control-Allow-Origin", "*") // overridden for the BFF's origins
		io.WriteString(w, "upstream saw "+path.Clean(r.URL.Path))
	}}}
	up := httptest.NewServer(e.up)
	t.Cleanup(up.Close)
	store := memstore.New(time.Now)
	c := testConfig(t, up.URL)
	c.BFF.Store = store
	c.BFF.AllowedOrigins = []string{"https://spa.example"}
	c.BFF.IdentityHeaders = []bff.IdentityHeader{{Header: "X-User-Id", Claim: "sub"}}
	c.Routes = []Route{
		{Path: "/files/api/", Upstream: up.URL},
		{Path: "/files/public/", Upstream: up.URL, Public: true},
	}
	p, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	e.srv = httptest.NewServer(p.Handler)
	t.Cleanup(e.srv.Close)

	e.token = "access-token-of-alice"
	e.cookie = plantSession(t, store, c.BFF.Issuer, e.token)
	return e
}

// plantSession puts a logged-in user's session with this access token in
// store, as a login would, and returns the Cookie header that carries it.
func plantSession(t testing.TB, store session.Store, issuer, token string) string {
	t.Helper()
	v, err := sessiontest.Plant(context.Background(), store, issuer, "alice", token)
	if err != nil {
		t.Fatal(err)
	}
	return "__Host-bffgate=" + v
}

// do sends the request with its path exactly as given (curl --path-as-is).
func (e *attackEnv) do(t *testing.T, method, p string, h http.Header) (int, string, http.Header) {
	t.Helper()
	r := flowtest.DoRaw(t, http.DefaultClient, method, e.srv.URL, p, h)
	return r.Status, string(r.Body), r.Header
}

// TestPublicRouteTraversal is D1: the public route was chosen on the path
// with its dot segments, and the upstream served /files/api/secret.txt
// with no session.
func TestPublicRouteTraversal(t *testing.T) {
	e := newAttackEnv(t)
	for _, p := range []string{
		"/files/public/../api/secret.txt",
		"/files/public/%2e%2e/api/secret.txt",
		"/files/public%2f..%2fapi%2fsecret.txt",
		"/files/public/%2E%2E%2Fapi/secret.txt",
		"/files/public/../../files/api/secret.txt",
		"/files/public/..;/api/secret.txt",
		"/files/public/%252e%252e/api/secret.txt",
		"/files/api/../public/x",
		"/files/public/..%5capi%5csecret.txt",
	} {
		status, body, _ := e.do(t, "GET", p, nil)
		if status != http.StatusBadRequest || !strings.Contains(body, "invalid_path") {
			t.Errorf("GET %s = %d %s, want 400 invalid_path", p, status, body)
		}
	}
	if n := e.up.Count(); n != 0 {
		t.Fatalf("the upstream received %d requests with dot segments", n)
	}
	if status, body, _ := e.do(t, "GET", "/files/public/readme.txt", nil); status != 200 || body != "upstream saw /files/public/readme.txt" {
		t.Fatalf("public file: %d %s", status, body)
	}
}

// TestPublicRouteIdentityHeaders is D2: a public route forwarded the
// client's X-User-Id as sent.
func TestPublicRouteIdentityHeaders(t *testing.T) {
	e := newAttackEnv(t)
	status, _, _ := e.do(t, "GET", "/files/public/x", http.Header{"X-User-Id": {"admin"}, "X_user_id": {"admin"}, "Cookie": {e.cookie}})
	if status != 200 {
		t.Fatalf("status %d", status)
	}
	got := e.up.Last(t)
	for name, v := range got.Header {
		if strings.EqualFold(strings.ReplaceAll(name, "_", "-"), "X-User-Id") || name == "Authorization" || name == "Cookie" {
			t.Errorf("public route forwarded %s: %q", name, v)
		}
	}
}

// TestConnectionCannotStripBFFHeaders is D3: the proxy removed the headers
// the client listed in Connection after the BFF had set them, and a
// look-alike X_User_Id reached the upstream beside the real one.
func TestConnectionCannotStripBFFHeaders(t *testing.T) {
	e := newAttackEnv(t)
	status, body, _ := e.do(t, "GET", "/files/api/x", http.Header{
		"Cookie": {e.cookie}, "X-Csrf": {"1"}, "Connection": {"Authorization, X-User-Id"},
		"X_user_id": {"admin"}, "X_forwarded_for": {"10.0.0.1"},
	})
	if status != 200 {
		t.Fatalf("status %d %s", status, body)
	}
	got := e.up.Last(t)
	if a := got.Header.Get("Authorization"); a != "Bearer "+e.token {
		t.Errorf("upstream Authorization = %q, want the session's bearer", a)
	}
	if v := got.Header.Values("X-User-Id"); len(v) != 1 || v[0] != "alice" {
		t.Errorf("upstream X-User-Id = %q, want [alice]", v)
	}
	for name, v := range got.Header {
		if strings.Contains(name, "_") {
			t.Errorf("upstream got the look-alike %s: %q", name, v)
		}
	}
	if ck := got.Header.Get("Cookie"); ck != "" {
		t.Errorf("upstream got Cookie %q", ck)
	}
}

// TestCORSOnProxiedAnswer: a cross-origin SPA can read the API's answer;
// the upstream's own wildcard is replaced by the BFF's origin.
func TestCORSOnProxiedAnswer(t *testing.T) {
	e := newAttackEnv(t)
	status, _, h := e.do(t, "GET", "/files/api/x", http.Header{"Cookie": {e.cookie}, "X-Csrf": {"1"}, "Origin": {"https://spa.example"}})
	if status != 200 || h.Values("Access-Control-Allow-Origin")[0] != "https://spa.example" || len(h.Values("Access-Control-Allow-Origin")) != 1 || h.Get("Access-Control-Allow-Credentials") != "true" {
		t.Fatalf("status %d, headers %q", status, h)
	}
}
