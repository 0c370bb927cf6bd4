package op

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestEchoAPIWithoutProvider is the echo API of the compose stacks
// (compose/common/echo): no provider, so no "token" introspection, and
// never the token itself.
func TestEchoAPIWithoutProvider(t *testing.T) {
	h := EchoAPI(nil)
	rec := httptest.NewRecorder()
	r := httptest.NewRequest("GET", "/whoami", nil)
	r.Header.Set("Authorization", "Bearer abcdef")
	r.Header.Set("X-User", "alice")
	r.AddCookie(&http.Cookie{Name: "b", Value: "1"})
	h.ServeHTTP(rec, r)
	var got map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil || rec.Code != http.StatusOK {
		t.Fatalf("GET /whoami: %d %s", rec.Code, rec.Body)
	}
	if got["authorization"] != "Bearer (a 6-character token)" || got["identity"].(map[string]any)["X-User"] != "alice" {
		t.Errorf("answer %s", rec.Body)
	}
	if _, ok := got["token"]; ok {
		t.Errorf("answer has a token field without a provider: %s", rec.Body)
	}
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/whoami", nil))
	if rec.Code != http.StatusUnauthorized {
		t.Errorf("without Authorization: %d, want 401", rec.Code)
	}
}
