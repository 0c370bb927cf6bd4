package tykhost_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/bffgate/bffgate/tests/flowtest"
)

// The attacks of issue #11 through the real bffgate.so in the Tyk host:
// the same defences as bffgate serve, by the same engine.

// raw sends a request with its path exactly as given (curl --path-as-is).
func raw(t *testing.T, c *http.Client, method, path string, h http.Header) *flowtest.Response {
	t.Helper()
	return flowtest.DoRaw(t, c, method, gw.URL, path, h)
}

func TestTykPathTricksRefused(t *testing.T) {
	c := browser()
	login(t, c, "/app")
	before := up.Count()
	for _, p := range []string{
		"/app/public/../api/secret", "/app/public/%2e%2e/api/secret", "/app/public%2f..%2fapi",
		"/app/public/..;/api/secret", "/app/api/%252e%252e/x", "/app/public/..%5capi",
	} {
		for _, cl := range []*http.Client{browser(), c} {
			r := raw(t, cl, "GET", p, http.Header{"X-Csrf": {"1"}})
			if r.Status != http.StatusBadRequest || !strings.Contains(string(r.Body), "invalid_path") {
				t.Errorf("GET %s = %d %s, want 400 invalid_path", p, r.Status, r.Body)
			}
		}
	}
	if n := up.Count() - before; n != 0 {
		t.Fatalf("the upstream received %d requests with unsafe paths", n)
	}
}

// TestTykPublicAPI is Tyk finding 5 and D2: a public API on the BFF's host
// (BFFGatePublic) gets neither the session cookie nor forged identity
// headers, and no bearer.
func TestTykPublicAPI(t *testing.T) {
	c := browser()
	login(t, c, "/app")
	r := do(t, c, "GET", "/app/public/index.html", "X-User", "admin", "X_User", "admin")
	if r.Status != http.StatusOK {
		t.Fatalf("status %d (body %s)", r.Status, r.Body)
	}
	got := up.Last(t)
	if got.URL.Path != "/app/public/index.html" {
		t.Fatalf("upstream got %s", got.URL)
	}
	for name, v := range got.Header {
		if strings.EqualFold(strings.ReplaceAll(name, "_", "-"), "X-User") || name == "Authorization" || strings.Contains(strings.Join(v, ";"), "__Host-app") {
			t.Errorf("the public API forwarded %s: %q", name, v)
		}
	}
}

// TestTykConnectionAndLookalikes is D3 in Tyk: the host's proxy removes
// the headers a client names in Connection after the hook ran, so the
// hook must not leave such names there; look-alike identity headers go.
func TestTykConnectionAndLookalikes(t *testing.T) {
	c := browser()
	login(t, c, "/app")
	r := do(t, c, "GET", "/app/api/x", "X-CSRF", "1", "Connection", "Authorization, X-User", "X_User", "admin")
	if r.Status != http.StatusOK {
		t.Fatalf("status %d (body %s)", r.Status, r.Body)
	}
	got := up.Last(t)
	if !strings.HasPrefix(got.Header.Get("Authorization"), "Bearer ") || got.Header.Get("X-User") != "alice" {
		t.Fatalf("upstream Authorization %q, X-User %q: the client stripped the BFF's headers", got.Header.Get("Authorization"), got.Header.Get("X-User"))
	}
	for name := range got.Header {
		if strings.Contains(name, "_") {
			t.Errorf("upstream got the look-alike %s", name)
		}
	}
}

// TestTykCORSOnProxiedAnswers is Tyk finding 4: a cross-origin SPA reads
// the API's answers, because the hook's response headers stay on the
// proxied response.
func TestTykCORSOnProxiedAnswers(t *testing.T) {
	c := browser()
	login(t, c, "/app")
	r := do(t, c, "GET", "/app/api/x", "X-CSRF", "1", "Origin", spaOrigin)
	if r.Status != http.StatusOK || r.Header.Get("Access-Control-Allow-Origin") != spaOrigin || r.Header.Get("Access-Control-Allow-Credentials") != "true" {
		t.Fatalf("status %d, headers %q", r.Status, r.Header)
	}
	if !strings.Contains(string(r.Body), "upstream") {
		t.Fatalf("body %s is not the upstream's", r.Body)
	}
}
