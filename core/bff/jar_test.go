package bff_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/url"
	"strings"
	"testing"

	"github.com/bffgate/bffgate/core/bff"
	"github.com/bffgate/bffgate/tests/op"
)

// jarEnv is an env whose OP requires signed request objects (JAR) from
// the client, which authenticates with private_key_jwt; par sets
// pushed_authorization.
func jarEnv(t *testing.T, par string) *env {
	t.Helper()
	k := pemFile(t, clientECKey(t), "jar")
	return newEnvOP(t, func(o *op.Options) {
		o.ClientAuthMethod, o.ClientJWKS, o.RequestObjects = bff.AuthPrivateKeyJWT, jwks(t, k), true
	}, func(c *bff.Config, _ *op.Server) {
		c.ClientSecret, c.ClientAuthMethod, c.ClientKeys, c.ClientKeyID = "", bff.AuthPrivateKeyJWT, []string{k.config}, "jar"
		c.SignedRequestObject, c.PushedAuthorization = true, par
	})
}

// TestSignedRequestObject (JAR, RFC 9101) where PAR is off: the browser
// carries client_id and a signed request object only; the OP, which
// requires one, logs the user in; a request object changed on the way is
// refused.
func TestSignedRequestObject(t *testing.T) {
	e := jarEnv(t, bff.PAROff)
	c := e.browser()
	authURL := e.startLogin(c, "")
	u, _ := url.Parse(authURL)
	q := u.Query()
	parts := strings.Split(q.Get("request"), ".")
	if len(q) != 2 || q.Get("client_id") == "" || len(parts) != 3 {
		t.Fatalf("authorization URL query %v, want client_id and request only", q)
	}
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	var claims map[string]any
	json.Unmarshal(payload, &claims)
	if claims["code_challenge_method"] != "S256" || claims["aud"] != e.op.Issuer || claims["redirect_uri"] == nil {
		t.Fatalf("request object claims %v, want the request's parameters for this issuer", claims)
	}
	// The browser changes the request (its state) and keeps the
	// signature: the OP refuses it as an invalid request object.
	claims["state"] = "attacker-chosen"
	forged, _ := json.Marshal(claims)
	parts[1] = base64.RawURLEncoding.EncodeToString(forged)
	q.Set("request", strings.Join(parts, "."))
	u.RawQuery = q.Encode()
	if cb, err := e.op.Login(context.Background(), op.Browser(), u.String(), op.AliceUser, op.AlicePassword); err == nil || !strings.Contains(err.Error(), "invalid_request_object") {
		t.Fatalf("a changed request object reached %v (%v), want the OP to refuse it as invalid_request_object", cb, err)
	}
	if got := e.login(c, op.AliceUser, op.AlicePassword); got != "/app?x=1" {
		t.Fatalf("login with a request object ended at %q", got)
	}
}

// TestSignedRequestObjectPushed: with PAR the request object is pushed;
// the browser sees the request_uri only.
func TestSignedRequestObjectPushed(t *testing.T) {
	e := jarEnv(t, bff.PARRequired)
	c := e.browser()
	u, _ := url.Parse(e.startLogin(c, ""))
	if q := u.Query(); len(q) != 2 || q.Get("request_uri") == "" {
		t.Fatalf("authorization URL query %v, want client_id and request_uri only", q)
	}
	if got := e.login(c, op.AliceUser, op.AlicePassword); got != "/app?x=1" {
		t.Fatalf("login with a pushed request object ended at %q", got)
	}
	if _, err := bff.New(bff.Config{Issuer: "https://idp.example", ClientID: "c", ClientSecret: "s",
		RedirectURL: "https://app.example/oauth/callback", CookieKeys: []string{cookieKey}, SignedRequestObject: true}); err == nil || !strings.Contains(err.Error(), "signed_request_object") {
		t.Fatalf("signed_request_object without client_keys: %v, want an error naming it", err)
	}
}
