package bff_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/pem"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/bffgate/bffgate/core/bff"
	"github.com/bffgate/bffgate/tests/op"
)

// mtlsEnv is an env whose OP serves HTTPS on loopback with a CA made for
// the run, asks for client certificates and runs RFC 8705
// (tls_client_auth, certificate-bound access tokens). The BFF presents
// the certificate other picks: the registered one, or another from the
// same CA.
func mtlsEnv(t *testing.T, other bool) *env {
	t.Helper()
	return newEnvOP(t, func(o *op.Options) {
		o.MTLS, o.ClientAuthMethod = true, bff.AuthTLSClient
	}, func(c *bff.Config, s *op.Server) {
		c.ClientSecret, c.ClientAuthMethod = "", bff.AuthTLSClient
		c.TLSClientCert, c.TLSClientKey = s.TLS.ClientCert, s.TLS.ClientKey
		if other {
			c.TLSClientCert, c.TLSClientKey = s.TLS.OtherCert, s.TLS.OtherKey
		}
		// Trust the run's CA; bffgate adds its certificate to this transport.
		c.HTTPClient = &http.Client{Transport: s.TLS.Transport()}
	})
}

// certThumbprint is RFC 8705's x5t#S256 of a PEM certificate file.
func certThumbprint(t *testing.T, file string) string {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(b)
	sum := sha256.Sum256(block.Bytes)
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// TestTLSClientAuth (RFC 8705) against the real OP over HTTPS on
// loopback: the BFF authenticates with its certificate at PAR, the token
// endpoint and revocation, and the access tokens it gets are bound to that
// certificate (cnf.x5t#S256), so an upstream that checks the binding
// accepts them only from a connection with that certificate.
func TestTLSClientAuth(t *testing.T) {
	e := mtlsEnv(t, false)
	if !strings.HasPrefix(e.op.Issuer, "https://") {
		t.Fatalf("the OP's issuer is %s, want https", e.op.Issuer)
	}
	c := e.browser()
	e.login(c, op.AliceUser, op.AlicePassword)
	at := e.sessionOf(c).AccessToken
	in, err := e.op.Introspect(context.Background(), at)
	if err != nil {
		t.Fatal(err)
	}
	cnf, _ := in["cnf"].(map[string]any)
	if want := certThumbprint(t, e.op.TLS.ClientCert); cnf["x5t#S256"] != want {
		t.Fatalf("access token cnf = %v, want x5t#S256 %s (bound to the BFF's certificate)", in["cnf"], want)
	}
	// The rest of the flow: API, refresh (the refresh token is bound to the
	// certificate as well), logout with revocation.
	if r := e.do(c, "POST", "/logout", "X-CSRF", "1"); r.Status != http.StatusOK {
		t.Fatalf("logout: %d", r.Status)
	}
	e.fullFlow(e.browser())
}

// TestTLSClientAuthRejected: a certificate from the same CA that is not
// the client's gets no further than PAR.
func TestTLSClientAuthRejected(t *testing.T) {
	e := mtlsEnv(t, true)
	r := e.do(e.browser(), "GET", "/login", "Accept", "application/json")
	r.WantError(t, http.StatusBadGateway, string(bff.CodeIdPError))
	if !strings.Contains(string(r.Body), "invalid_client") {
		t.Fatalf("login body %s, want the provider's invalid_client", r.Body)
	}
}
