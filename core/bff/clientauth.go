package bff

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// Client authentication methods at the provider's endpoints
// (Config.ClientAuthMethod).
const (
	AuthSecretBasic   = "client_secret_basic" // the secret in HTTP Basic (RFC 6749 §2.3.1)
	AuthSecretPost    = "client_secret_post"  // the secret in the form
	AuthPrivateKeyJWT = "private_key_jwt"     // a JWT signed with the client's key (RFC 7523, OpenID Connect Core §9)
	AuthTLSClient     = "tls_client_auth"     // the client's TLS certificate (RFC 8705 §2.1)
)

// Audiences of client assertions (Config.ClientAssertionAudience).
const (
	AudienceIssuer        = "issuer"         // the issuer (FAPI 2.0)
	AudienceTokenEndpoint = "token_endpoint" // the provider's token endpoint URL (RFC 7523 §3)
)

// clientAssertionType is RFC 7523 §2.2's client_assertion_type.
const clientAssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// assertionLifetime is how long a client assertion is valid: one call.
const assertionLifetime = 60 * time.Second

// clientAuth authenticates the client at the provider's endpoints: the one
// place every call to the token, PAR, revocation (and exchange) endpoints
// gets its credentials from.
type clientAuth struct {
	method   string
	id       string
	secret   string
	audience string           // aud of client assertions; "" for the token endpoint
	signer   jose.Signer      // private_key_jwt: the first of client_keys
	cert     *tls.Certificate // tls_client_auth: on the provider HTTP client
	requests jose.Signer      // signed_request_object: signs request objects (RFC 9101)
}

// apply adds the client's credentials to a request to one of the
// provider's endpoints, whose form is form (sent after apply).
func (a *clientAuth) apply(req *http.Request, form url.Values, now time.Time, tokenURL string) error {
	switch a.method {
	case AuthSecretPost:
		form.Set("client_id", a.id)
		form.Set("client_secret", a.secret)
	case AuthPrivateKeyJWT:
		assertion, err := a.assertion(now, tokenURL)
		if err != nil {
			return err
		}
		form.Set("client_id", a.id)
		form.Set("client_assertion_type", clientAssertionType)
		form.Set("client_assertion", assertion)
	case AuthTLSClient:
		// The certificate is on the connection (the provider HTTP client).
		form.Set("client_id", a.id)
	default:
		// RFC 6749 §2.3.1: the credentials are form-encoded before Basic.
		req.SetBasicAuth(url.QueryEscape(a.id), url.QueryEscape(a.secret))
	}
	return nil
}

// assertion is a fresh client assertion (RFC 7523 §3): iss and sub the
// client, aud client_assertion_audience, a unique jti (providers refuse a
// replayed one), a one-minute lifetime.
func (a *clientAuth) assertion(now time.Time, tokenURL string) (string, error) {
	aud := a.audience
	if aud == "" {
		aud = tokenURL
	}
	claims := jwt.Claims{
		Issuer: a.id, Subject: a.id, Audience: jwt.Audience{aud},
		ID: randomString(), IssuedAt: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(now.Add(assertionLifetime)),
	}
	return jwt.Signed(a.signer).Claims(claims).Serialize()
}

// newClientAuth builds the client's authentication from the validated
// config.
func (c *Config) newClientAuth() (*clientAuth, error) {
	a := &clientAuth{method: c.ClientAuthMethod, id: c.ClientID, secret: c.ClientSecret}
	switch c.ClientAssertionAudience {
	case "", AudienceIssuer:
		a.audience = c.Issuer
	case AudienceTokenEndpoint:
	default:
		if err := absoluteURL("client_assertion_audience", c.ClientAssertionAudience, true); err != nil {
			return nil, err
		}
		a.audience = c.ClientAssertionAudience
	}
	switch c.ClientAuthMethod {
	case AuthPrivateKeyJWT:
		key, err := c.signingKey()
		if err != nil {
			return nil, err
		}
		opts := (&jose.SignerOptions{}).WithType("JWT")
		if len(key.CertificateThumbprintSHA256) > 0 {
			// Entra ID finds the key by its certificate's thumbprint.
			opts = opts.WithHeader("x5t#S256", base64.RawURLEncoding.EncodeToString(key.CertificateThumbprintSHA256))
		}
		a.signer, err = jose.NewSigner(jose.SigningKey{Algorithm: jose.SignatureAlgorithm(key.Algorithm), Key: key}, opts)
		if err != nil {
			return nil, cfgErr("client_keys[0]", "cannot sign with it: %v", err)
		}
	case AuthTLSClient:
		cert, err := c.tlsCertificate()
		if err != nil {
			return nil, err
		}
		a.cert = cert
	}
	if c.SignedRequestObject {
		if len(c.ClientKeys) == 0 {
			return nil, cfgErr("signed_request_object", "needs client_keys: the request object is signed with client_keys[0], whose public key the provider knows")
		}
		key, err := c.signingKey()
		if err != nil {
			return nil, err
		}
		a.requests, err = jose.NewSigner(jose.SigningKey{Algorithm: jose.SignatureAlgorithm(key.Algorithm), Key: key},
			(&jose.SignerOptions{}).WithType("oauth-authz-req+jwt"))
		if err != nil {
			return nil, cfgErr("client_keys[0]", "cannot sign with it: %v", err)
		}
	}
	return a, nil
}

// signingKey reads the first of client_keys (the one that signs; the rest
// wait in the list for a rotation) with its kid and alg.
func (c *Config) signingKey() (*jose.JSONWebKey, error) {
	if len(c.ClientKeys) == 0 {
		return nil, cfgErr("client_keys", "is empty: private_key_jwt needs the client's private key (a PEM or JWK file, or env:NAME), registered at the provider by its public key")
	}
	var first *jose.JSONWebKey
	for i, v := range c.ClientKeys {
		k, err := readClientKey(fmt.Sprintf("client_keys[%d]", i), v)
		if err != nil {
			return nil, err
		}
		if i == 0 {
			first = k
		}
	}
	field := "client_keys[0]"
	if c.ClientKeyID != "" {
		first.KeyID = c.ClientKeyID
	}
	if first.KeyID == "" {
		pub := first.Public()
		tp, err := pub.Thumbprint(crypto.SHA256)
		if err != nil {
			return nil, cfgErr(field, "cannot compute its thumbprint: %v", err)
		}
		first.KeyID = base64.RawURLEncoding.EncodeToString(tp)
	}
	if c.ClientKeyAlg != "" {
		first.Algorithm = c.ClientKeyAlg
	}
	switch k := first.Key.(type) {
	case *ecdsa.PrivateKey:
		if k.Curve != elliptic.P256() {
			return nil, cfgErr(field, "is an EC key on %s: use P-256 (ES256)", k.Curve.Params().Name)
		}
		if first.Algorithm == "" {
			first.Algorithm = string(jose.ES256)
		}
		if first.Algorithm != string(jose.ES256) {
			return nil, cfgErr("client_key_alg", "%q does not go with a P-256 key: use ES256", first.Algorithm)
		}
	case *rsa.PrivateKey:
		if k.N.BitLen() < 2048 {
			return nil, cfgErr(field, "is a %d-bit RSA key: use at least 2048 bits", k.N.BitLen())
		}
		if first.Algorithm == "" {
			first.Algorithm = string(jose.RS256)
			if c.Profile == ProfileFAPI2 {
				first.Algorithm = string(jose.PS256)
			}
		}
		if first.Algorithm != string(jose.RS256) && first.Algorithm != string(jose.PS256) {
			return nil, cfgErr("client_key_alg", "%q does not go with an RSA key: use PS256 or RS256", first.Algorithm)
		}
		if first.Algorithm == string(jose.RS256) && c.Profile == ProfileFAPI2 {
			return nil, cfgErr("client_key_alg", "RS256 contradicts profile fapi2, which allows PS256 or ES256")
		}
	default:
		return nil, cfgErr(field, "is a %T: use an EC P-256 or an RSA private key", first.Key)
	}
	return first, nil
}

// readClientKey reads one private key: "env:NAME", a file name, or the
// key itself, as PEM (PKCS #8, SEC 1 or PKCS #1) or a JWK.
func readClientKey(field, v string) (*jose.JSONWebKey, error) {
	v, err := readSecretOrFile(field, v)
	if err != nil {
		return nil, err
	}
	v = strings.TrimSpace(v)
	if strings.HasPrefix(v, "{") {
		var k jose.JSONWebKey
		if err := k.UnmarshalJSON([]byte(v)); err != nil {
			return nil, cfgErr(field, "is not a JWK: %v", err)
		}
		if k.IsPublic() {
			return nil, cfgErr(field, "is a public JWK: give the private key (with \"d\")")
		}
		if len(k.Certificates) > 0 && len(k.CertificateThumbprintSHA256) == 0 {
			sum := sha256.Sum256(k.Certificates[0].Raw)
			k.CertificateThumbprintSHA256 = sum[:]
		}
		return &k, nil
	}
	// PEM: the key, and optionally its certificate, whose thumbprint goes
	// into the assertion's header (x5t#S256).
	k := &jose.JSONWebKey{}
	for rest := []byte(v); ; {
		var block *pem.Block
		if block, rest = pem.Decode(rest); block == nil {
			break
		}
		var key any
		switch block.Type {
		case "CERTIFICATE":
			if k.CertificateThumbprintSHA256 == nil {
				sum := sha256.Sum256(block.Bytes)
				k.CertificateThumbprintSHA256 = sum[:]
			}
			continue
		case "PRIVATE KEY":
			key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
		case "EC PRIVATE KEY":
			key, err = x509.ParseECPrivateKey(block.Bytes)
		case "RSA PRIVATE KEY":
			key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
		default:
			return nil, cfgErr(field, "holds a PEM %q: give a PRIVATE KEY, EC PRIVATE KEY or RSA PRIVATE KEY (and its CERTIFICATE)", block.Type)
		}
		if err != nil {
			return nil, cfgErr(field, "is not a readable private key: %v", err)
		}
		if k.Key != nil {
			return nil, cfgErr(field, "holds more than one private key: give one per entry")
		}
		k.Key = key
	}
	if k.Key == nil {
		return nil, cfgErr(field, "is neither a PEM private key nor a JWK")
	}
	return k, nil
}

// readSecretOrFile resolves "env:NAME"; a value that is not a PEM block
// or a JSON object is a file name.
func readSecretOrFile(field, v string) (string, error) {
	v, err := resolveSecret(field, v)
	if err != nil {
		return "", err
	}
	if t := strings.TrimSpace(v); t == "" || strings.HasPrefix(t, "-----BEGIN") || strings.HasPrefix(t, "{") {
		return v, nil
	}
	b, err := os.ReadFile(v)
	if err != nil {
		return "", cfgErr(field, "cannot read the file: %v", err)
	}
	return string(b), nil
}

// tlsCertificate reads the client's TLS certificate and key
// (tls_client_cert, tls_client_key).
func (c *Config) tlsCertificate() (*tls.Certificate, error) {
	if c.TLSClientCert == "" || c.TLSClientKey == "" {
		return nil, cfgErr("tls_client_cert", "tls_client_auth needs tls_client_cert and tls_client_key: the client's certificate (chain) and key, PEM files or env:NAME")
	}
	certPEM, err := readSecretOrFile("tls_client_cert", c.TLSClientCert)
	if err != nil {
		return nil, err
	}
	keyPEM, err := readSecretOrFile("tls_client_key", c.TLSClientKey)
	if err != nil {
		return nil, err
	}
	cert, err := tls.X509KeyPair([]byte(certPEM), []byte(keyPEM))
	if err != nil {
		return nil, cfgErr("tls_client_cert", "with tls_client_key is not a certificate and its key: %v", err)
	}
	return &cert, nil
}

// withClientCertificate returns client with the certificate on its
// transport, for every call to the provider (RFC 8705 §2: the client
// authenticates with it, and certificate-bound tokens are bound to it).
func withClientCertificate(client *http.Client, cert *tls.Certificate) (*http.Client, error) {
	var t *http.Transport
	switch rt := client.Transport.(type) {
	case nil:
		t = http.DefaultTransport.(*http.Transport).Clone()
	case *http.Transport:
		t = rt.Clone()
	default:
		return nil, cfgErr("tls_client_cert", "the HTTPClient's Transport is a %T: tls_client_auth needs an *http.Transport (or none) to put the certificate on", rt)
	}
	if t.TLSClientConfig == nil {
		t.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	t.TLSClientConfig.Certificates = []tls.Certificate{*cert}
	c := *client
	c.Transport = t
	return &c, nil
}

// sha256Base64 is base64url(SHA-256(s)), unpadded.
func sha256Base64(s string) string {
	sum := sha256.Sum256([]byte(s))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}
