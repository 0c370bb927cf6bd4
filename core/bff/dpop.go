package bff

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"fmt"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// dpopKey is one session's DPoP key (RFC 9449): P-256, ES256 proofs with
// the public key in their header.
type dpopKey struct {
	signer jose.Signer
}

// newDPoPKey makes a session's key and returns it as kept in the sealed
// session (session.Session.DPoPKey): the 32-byte private scalar.
func newDPoPKey() (string, *dpopKey, error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", nil, err
	}
	raw, err := k.Bytes()
	if err != nil {
		return "", nil, err
	}
	dk, err := dpopSigner(k)
	return string(raw), dk, err
}

// parseDPoPKey reads a key kept by newDPoPKey; "" is no key.
func parseDPoPKey(raw string) (*dpopKey, error) {
	if raw == "" {
		return nil, nil
	}
	k, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), []byte(raw))
	if err != nil {
		return nil, fmt.Errorf("the session's DPoP key is unreadable: %w", err)
	}
	return dpopSigner(k)
}

func dpopSigner(k *ecdsa.PrivateKey) (*dpopKey, error) {
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: k},
		(&jose.SignerOptions{EmbedJWK: true}).WithType("dpop+jwt"))
	if err != nil {
		return nil, err
	}
	return &dpopKey{signer: s}, nil
}

// dpopClaims are a proof's claims (RFC 9449 §4.2).
type dpopClaims struct {
	JTI   string `json:"jti"`
	HTM   string `json:"htm"`
	HTU   string `json:"htu"`
	IAT   int64  `json:"iat"`
	ATH   string `json:"ath,omitempty"`
	Nonce string `json:"nonce,omitempty"`
}

// proof is a DPoP proof for one request: method and target URI (its query
// and fragment are dropped, §4.2), and for a resource server the access
// token's hash (ath) and its nonce, if it gave one.
func (k *dpopKey) proof(method, target, accessToken, nonce string, now time.Time) (string, error) {
	if i := strings.IndexAny(target, "?#"); i >= 0 {
		target = target[:i]
	}
	c := dpopClaims{JTI: randomString(), HTM: method, HTU: target, IAT: now.Unix(), Nonce: nonce}
	if accessToken != "" {
		c.ATH = sha256Base64(accessToken)
	}
	return jwt.Signed(k.signer).Claims(c).Serialize()
}
