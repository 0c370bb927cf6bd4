package flowtest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"testing"

	"github.com/go-jose/go-jose/v4"
)

// DeviceKey is a browser's Device Bound Session Credentials key, as
// Chromium's software key for testing is: P-256, signing ES256.
type DeviceKey struct{ key *ecdsa.PrivateKey }

// NewDeviceKey makes a fresh device key.
func NewDeviceKey(t testing.TB) *DeviceKey {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return &DeviceKey{key}
}

// Proof is the Secure-Session-Response a browser sends: a dbsc+jwt with
// jti (the server's challenge) and, at registration, the authorization
// value and the public key in the header (embed).
func (k *DeviceKey) Proof(t testing.TB, embed bool, jti, authorization string) string {
	t.Helper()
	return SignDBSC(t, jose.SigningKey{Algorithm: jose.ES256, Key: k.key}, (&jose.SignerOptions{EmbedJWK: embed}).WithType("dbsc+jwt"), jti, authorization)
}

// SignDBSC signs a DBSC proof's claims (jti, and authorization when not
// empty) with key and opts, as they are: tests of refused proofs pass
// other algorithms, keys and headers.
func SignDBSC(t testing.TB, key jose.SigningKey, opts *jose.SignerOptions, jti, authorization string) string {
	t.Helper()
	s, err := jose.NewSigner(key, opts)
	if err != nil {
		t.Fatal(err)
	}
	claims := map[string]string{"jti": jti}
	if authorization != "" {
		claims["authorization"] = authorization
	}
	payload, _ := json.Marshal(claims)
	obj, err := s.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := obj.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}
