package bff_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/bffgate/bffgate/core/bff"
	"github.com/bffgate/bffgate/tests/op"
)

// clientKey is one private key of the client, written as the config
// takes it, with its public JWK for the OP's registration.
type clientKey struct {
	config string // a file name, "env:NAME", or the key itself
	public jose.JSONWebKey
}

func clientECKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// pemFile writes key as a PKCS #8 PEM file.
func pemFile(t *testing.T, key any, kid string) clientKey {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "client-key.pem")
	if err := os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	pub := jose.JSONWebKey{Key: key, KeyID: kid}
	pub = pub.Public()
	if kid == "" { // bffgate's default kid: the RFC 7638 thumbprint
		tp, err := pub.Thumbprint(crypto.SHA256)
		if err != nil {
			t.Fatal(err)
		}
		pub.KeyID = base64.RawURLEncoding.EncodeToString(tp)
	}
	return clientKey{config: file, public: pub}
}

// jwkEnv puts key as a private JWK in an environment variable.
func jwkEnv(t *testing.T, key any, kid, alg string) clientKey {
	t.Helper()
	k := jose.JSONWebKey{Key: key, KeyID: kid, Algorithm: alg, Use: "sig"}
	b, err := k.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	name := "BFFGATE_TEST_CLIENT_JWK_" + strings.ToUpper(kid)
	t.Setenv(name, string(b))
	return clientKey{config: "env:" + name, public: k.Public()}
}

func jwks(t *testing.T, keys ...clientKey) json.RawMessage {
	t.Helper()
	var set jose.JSONWebKeySet
	for _, k := range keys {
		set.Keys = append(set.Keys, k.public)
	}
	b, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// jwtEnv is an env whose client authenticates with private_key_jwt,
// registered at the OP with registered and configured with configured.
func jwtEnv(t *testing.T, registered []clientKey, configured []clientKey, edit func(c *bff.Config)) *env {
	t.Helper()
	return newEnvOP(t, func(o *op.Options) {
		o.ClientAuthMethod = bff.AuthPrivateKeyJWT
		o.ClientJWKS = jwks(t, registered...)
	}, func(c *bff.Config, _ *op.Server) {
		c.ClientSecret = ""
		c.ClientAuthMethod = bff.AuthPrivateKeyJWT
		for _, k := range configured {
			c.ClientKeys = append(c.ClientKeys, k.config)
		}
		if edit != nil {
			edit(c)
		}
	})
}

// fullFlow logs alice in (PAR, code exchange), calls the API, refreshes
// and logs out, and checks the refresh token is revoked: every provider
// endpoint the BFF authenticates at.
func (e *env) fullFlow(c *http.Client) {
	e.t.Helper()
	t := e.t
	if got := e.login(c, op.AliceUser, op.AlicePassword); got != "/app?x=1" {
		t.Fatalf("login ended at %q", got)
	}
	if r := e.do(c, "GET", "/api/x", "X-CSRF", "1"); r.Status != http.StatusOK {
		t.Fatalf("API: %d %s", r.Status, r.Body)
	}
	before := e.grants(op.GrantRefreshToken)
	e.clock.Advance(45 * time.Second)
	if r := e.do(c, "GET", "/api/x", "X-CSRF", "1"); r.Status != http.StatusOK {
		t.Fatalf("API after expiry: %d %s", r.Status, r.Body)
	}
	if n := e.grants(op.GrantRefreshToken) - before; n != 1 {
		t.Fatalf("%d refreshes, want 1", n)
	}
	rt := e.sessionOf(c).RefreshToken
	if r := e.do(c, "POST", "/logout", "X-CSRF", "1"); r.Status != http.StatusOK {
		t.Fatalf("logout: %d %s", r.Status, r.Body)
	}
	eventually(t, "the refresh token revoked", func() bool {
		in, err := e.op.Introspect(context.Background(), rt)
		return err == nil && in["active"] == false
	})
}

// TestPrivateKeyJWT (RFC 7523): the client proves itself with a JWT
// signed by its key at PAR, the token endpoint (code and refresh) and
// revocation; the OP, which has the public key only, accepts it. Keys
// come from a PEM file or a JWK in the environment, EC or RSA.
func TestPrivateKeyJWT(t *testing.T) {
	t.Run("ES256 PEM file", func(t *testing.T) {
		k := pemFile(t, clientECKey(t), "ec-1")
		e := jwtEnv(t, []clientKey{k}, []clientKey{k}, func(c *bff.Config) { c.ClientKeyID = "ec-1" })
		e.fullFlow(e.browser())
	})
	t.Run("PS256 RSA JWK from env", func(t *testing.T) {
		rk, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			t.Fatal(err)
		}
		k := jwkEnv(t, rk, "rsa-1", "PS256")
		e := jwtEnv(t, []clientKey{k}, []clientKey{k}, nil)
		e.fullFlow(e.browser())
	})
	t.Run("aud the token endpoint", func(t *testing.T) {
		k := pemFile(t, clientECKey(t), "ec-2")
		e := jwtEnv(t, []clientKey{k}, []clientKey{k}, func(c *bff.Config) {
			c.ClientKeyID, c.ClientAssertionAudience = "ec-2", bff.AudienceTokenEndpoint
		})
		e.login(e.browser(), op.AliceUser, op.AlicePassword)
	})
	t.Run("rotation: the first key signs", func(t *testing.T) {
		// The OP knows old and new (registered before the switch); the
		// config lists the new one first, the old one still after it.
		old, next := pemFile(t, clientECKey(t), ""), pemFile(t, clientECKey(t), "")
		e := jwtEnv(t, []clientKey{old, next}, []clientKey{next, old}, nil)
		e.login(e.browser(), op.AliceUser, op.AlicePassword)
	})
}

// TestPrivateKeyJWTRejected: a key the OP does not know, or a client
// that falls back to its secret, gets no further than PAR: the login
// fails with the provider's invalid_client, and nothing is forwarded.
func TestPrivateKeyJWTRejected(t *testing.T) {
	registered, other := pemFile(t, clientECKey(t), "a"), pemFile(t, clientECKey(t), "b")
	for _, tc := range []struct {
		name string
		edit func(c *bff.Config)
	}{
		{"unregistered key", func(c *bff.Config) { c.ClientKeys = []string{other.config} }},
		{"the secret instead", func(c *bff.Config) {
			c.ClientAuthMethod, c.ClientKeys, c.ClientSecret = bff.AuthSecretBasic, nil, "bffgate-secret"
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := jwtEnv(t, []clientKey{registered}, []clientKey{registered}, tc.edit)
			r := e.do(e.browser(), "GET", "/login", "Accept", "application/json")
			r.WantError(t, http.StatusBadGateway, string(bff.CodeIdPError))
			if !strings.Contains(string(r.Body), "invalid_client") {
				t.Fatalf("login body %s, want the provider's invalid_client", r.Body)
			}
		})
	}
}

// TestClientAuthConfig: the key fields refuse what cannot sign, naming
// the field.
func TestClientAuthConfig(t *testing.T) {
	dir := t.TempDir()
	pub := filepath.Join(dir, "pub.json")
	k := clientECKey(t)
	pj, _ := json.Marshal(jose.JSONWebKey{Key: &k.PublicKey})
	os.WriteFile(pub, pj, 0o600)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	weak, _ := rsa.GenerateKey(rand.Reader, 1024)
	base := func(c *bff.Config) {
		*c = bff.Config{Issuer: "https://idp.example", ClientID: "c", RedirectURL: "https://app.example/oauth/callback",
			CookieKeys: []string{cookieKey}, ClientAuthMethod: bff.AuthPrivateKeyJWT}
	}
	for _, tc := range []struct {
		name, field string
		edit        func(c *bff.Config)
	}{
		{"no keys", "client_keys", func(c *bff.Config) {}},
		{"no file", "client_keys[0]", func(c *bff.Config) { c.ClientKeys = []string{filepath.Join(dir, "missing.pem")} }},
		{"public JWK", "client_keys[0]", func(c *bff.Config) { c.ClientKeys = []string{pub} }},
		{"P-384", "client_keys[0]", func(c *bff.Config) { c.ClientKeys = []string{pemFile(t, p384, "").config} }},
		{"RSA 1024", "client_keys[0]", func(c *bff.Config) { c.ClientKeys = []string{pemFile(t, weak, "").config} }},
		{"EC with RS256", "client_key_alg", func(c *bff.Config) {
			c.ClientKeys, c.ClientKeyAlg = []string{pemFile(t, k, "").config}, "RS256"
		}},
		{"audience not a URL", "client_assertion_audience", func(c *bff.Config) {
			c.ClientKeys, c.ClientAssertionAudience = []string{pemFile(t, k, "").config}, "the-issuer"
		}},
		{"unknown method", "client_auth_method", func(c *bff.Config) { c.ClientAuthMethod = "client_secret_jwt" }},
		{"secret method, no secret", "client_secret", func(c *bff.Config) { c.ClientAuthMethod = bff.AuthSecretPost }},
		{"tls without files", "tls_client_cert", func(c *bff.Config) { c.ClientAuthMethod = bff.AuthTLSClient }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var c bff.Config
			base(&c)
			tc.edit(&c)
			_, err := bff.New(c)
			var ce *bff.ConfigError
			if !errors.As(err, &ce) || ce.Field != tc.field {
				t.Fatalf("New: %v, want a ConfigError for %s", err, tc.field)
			}
		})
	}
}
