package bff

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/bffgate/bffgate/core/session"
)

// BenchmarkAPIRequestPolicy is BenchmarkAPIRequest with a route policy
// (a claim among values, a scope, an acr) that the session meets: the
// cost of the check, which decodes the session's ID token claims.
func BenchmarkAPIRequestPolicy(b *testing.B) {
	e, req := authenticated(b, validConfig())
	id, _ := session.ParseID(req.Header.Get("Cookie")[len("theme=dark; __Host-bffgate="):])
	s, err := e.sessions.Load(context.Background(), id, false)
	if err != nil {
		b.Fatal(err)
	}
	s.TokenClaims = tokenClaims(map[string]any{"acr": "urn:example:mfa", "amr": []any{"pwd", "otp"}, "auth_time": float64(time.Now().Unix()),
		"sub": "alice", "name": "Alice Example", "email": "alice@example.com", "groups": []any{"staff", "admin"}})
	if err := e.sessions.Save(context.Background(), id, s); err != nil {
		b.Fatal(err)
	}
	req.Policy = &Policy{Claims: []ClaimRule{{Claim: "groups", Values: []string{"admin", "ops"}}}, Scopes: []string{"profile"},
		ACRValues: []string{"urn:example:mfa"}, MaxAge: 3600}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if res := e.Handle(ctx, req); !res.Forward() {
			b.Fatalf("status %d: %s", res.Status, res.Body)
		}
	}
}

// FuzzStepUpChallenge: any WWW-Authenticate an upstream sends is read
// without panics, and a translated answer is the engine's JSON with only
// well-formed acr_values and max_age.
func FuzzStepUpChallenge(f *testing.F) {
	f.Add(`Bearer error="insufficient_user_authentication", acr_values="a b", max_age=5`)
	f.Add(`Bearer error="insufficient_user_authentication", acr_values="a\"b`)
	f.Add(`Basic realm=x, Bearer error=insufficient_user_authentication,,, max_age==`)
	f.Add(`Bearer abc==, error="insufficient_user_authentication"`)
	f.Fuzz(func(t *testing.T, www string) {
		r, ok := StepUpChallenge(http.StatusUnauthorized, http.Header{"Www-Authenticate": {www}})
		if !ok {
			return
		}
		var body policyRefusal
		if err := json.Unmarshal(r.Body, &body); err != nil || body.Error != CodeInsufficientUserAuthentication {
			t.Fatalf("answer %s: %v", r.Body, err)
		}
		if body.ACRValues != "" && !validACRValues(body.ACRValues) {
			t.Fatalf("acr_values %q passed", body.ACRValues)
		}
		if body.MaxAge != nil && (*body.MaxAge < 0 || *body.MaxAge > maxMaxAge) {
			t.Fatalf("max_age %d passed", *body.MaxAge)
		}
		for _, c := range r.Header.Get("WWW-Authenticate") {
			if c < 0x20 || c == 0x7f {
				t.Fatalf("control character in the challenge %q", r.Header.Get("WWW-Authenticate"))
			}
		}
	})
}
