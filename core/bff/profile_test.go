package bff_test

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/bffgate/bffgate/core/bff"
	"github.com/bffgate/bffgate/tests/op"
)

// TestProfileFAPI2Refuses: profile fapi2 refuses every config that
// contradicts it, naming the field that does.
func TestProfileFAPI2Refuses(t *testing.T) {
	key := pemFile(t, clientECKey(t), "k").config
	base := func() bff.Config {
		return bff.Config{Issuer: "https://idp.example", ClientID: "c", RedirectURL: "https://app.example/oauth/callback",
			CookieKeys: []string{cookieKey}, Profile: bff.ProfileFAPI2, ClientKeys: []string{key}, DPoP: true}
	}
	if _, err := bff.New(base()); err != nil {
		t.Fatalf("the one-line FAPI 2.0 config (profile, key, dpop): %v", err)
	}
	for _, tc := range []struct {
		name, field string
		edit        func(c *bff.Config)
	}{
		{"PAR auto", "pushed_authorization", func(c *bff.Config) { c.PushedAuthorization = bff.PARAuto }},
		{"PAR off", "pushed_authorization", func(c *bff.Config) { c.PushedAuthorization = bff.PAROff }},
		{"a secret", "client_auth_method", func(c *bff.Config) { c.ClientAuthMethod, c.ClientSecret = bff.AuthSecretBasic, "s" }},
		{"no credentials", "client_auth_method", func(c *bff.Config) { c.ClientKeys, c.ClientSecret = nil, "s" }},
		{"bearer tokens", "dpop", func(c *bff.Config) { c.DPoP = false }},
		{"RS256", "client_key_alg", func(c *bff.Config) { c.ClientKeyAlg = "RS256" }},
		{"token-mediating", "dpop", func(c *bff.Config) { c.Mode = bff.ModeTokenMediating }},
		{"token-mediating with mTLS", "mode", func(c *bff.Config) {
			c.ClientKeys, c.DPoP, c.TLSClientCert, c.TLSClientKey, c.Mode = nil, false, "cert.pem", "key.pem", bff.ModeTokenMediating
		}},
		{"unknown profile", "profile", func(c *bff.Config) { c.Profile, c.ClientAuthMethod = "fapi1", bff.AuthPrivateKeyJWT }},
		{"bad resource", "resources[0]", func(c *bff.Config) { c.Resources = []string{"api-a"} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := base()
			tc.edit(&c)
			_, err := bff.New(c)
			var ce *bff.ConfigError
			if !errors.As(err, &ce) || ce.Field != tc.field {
				t.Fatalf("New: %v, want a ConfigError naming %s", err, tc.field)
			}
		})
	}
}

// TestProfileFAPI2 is the one-line FAPI 2.0 client against the real OP:
// profile fapi2 with a key and dpop gives PAR (the browser sees client_id
// and request_uri only), private_key_jwt, PKCE, DPoP-bound tokens and the
// iss check; a callback without iss is refused.
func TestProfileFAPI2(t *testing.T) {
	k := pemFile(t, clientECKey(t), "fapi")
	e := newEnvOP(t, func(o *op.Options) {
		o.ClientAuthMethod, o.ClientJWKS, o.DPoPBound = bff.AuthPrivateKeyJWT, jwks(t, k), true
	}, func(c *bff.Config, _ *op.Server) {
		c.ClientSecret = ""
		c.Profile, c.ClientKeys, c.ClientKeyID, c.DPoP = bff.ProfileFAPI2, []string{k.config}, "fapi", true
	})
	c := e.browser()
	authURL := e.startLogin(c, "")
	u, _ := url.Parse(authURL)
	if q := u.Query(); len(q) != 2 || q.Get("request_uri") == "" {
		t.Fatalf("authorization URL query %v, want client_id and request_uri only", q)
	}
	cb := e.authorize(c, authURL, op.AliceUser, op.AlicePassword)
	noIss := editURL(t, cb, "iss", "")
	if r := e.do(c, "GET", noIss, "Accept", "application/json"); r.Status != http.StatusBadRequest || !strings.Contains(string(r.Body), string(bff.CodeInvalidIssuer)) {
		t.Fatalf("a callback without iss: %d %s, want 400 %s", r.Status, r.Body, bff.CodeInvalidIssuer)
	}
	e.login(c, op.AliceUser, op.AlicePassword)
	if s := e.sessionOf(c); s.TokenType != "DPoP" {
		t.Fatalf("token type %q, want DPoP", s.TokenType)
	}
}

// TestProfileFAPI2NoFallback: a provider without DPoP is refused, not
// used for bearer tokens: the login fails and no token is issued.
func TestProfileFAPI2NoFallback(t *testing.T) {
	k := pemFile(t, clientECKey(t), "fapi")
	e := newEnvOP(t, func(o *op.Options) {
		o.ClientAuthMethod, o.ClientJWKS, o.NoDPoP = bff.AuthPrivateKeyJWT, jwks(t, k), true
	}, func(c *bff.Config, _ *op.Server) {
		c.ClientSecret = ""
		c.Profile, c.ClientKeys, c.ClientKeyID, c.DPoP = bff.ProfileFAPI2, []string{k.config}, "fapi", true
	})
	r := e.do(e.browser(), "GET", "/login", "Accept", "application/json")
	if r.Status != http.StatusBadGateway {
		t.Fatalf("login with a provider without DPoP: %d %s, want 502", r.Status, r.Body)
	}
	if n := e.grants(op.GrantAuthorizationCode); n != 0 {
		t.Fatalf("%d codes exchanged, want none", n)
	}
}

// TestPushedRequestURIOnce: the OP takes a pushed request_uri once; the
// same authorization URL used again (a replayed or leaked login link)
// does not log anyone in.
func TestPushedRequestURIOnce(t *testing.T) {
	e := newEnv(t, nil)
	c := e.browser()
	authURL := e.startLogin(c, "")
	if r := e.do(c, "GET", e.authorize(c, authURL, op.AliceUser, op.AlicePassword)); r.Status != http.StatusFound {
		t.Fatalf("the first use: callback %d %s", r.Status, r.Body)
	}
	cb, err := e.op.Login(context.Background(), op.Browser(), authURL, op.AliceUser, op.AlicePassword)
	if err == nil {
		t.Fatalf("the request_uri used again reached %v, want the OP to refuse it", cb)
	}
	if !strings.Contains(err.Error(), "request_uri") {
		t.Fatalf("the request_uri used again: %v, want the OP to refuse the request_uri", err)
	}
}
