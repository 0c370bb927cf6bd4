package flowtest

import (
	"context"
	"crypto"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/bffgate/bffgate/tests/op"
)

// CheckDPoP checks a forwarded request's headers h as a resource server
// that wants DPoP does (RFC 9449 §7): "Authorization: DPoP <token>" and
// one DPoP proof, a JWS of type dpop+jwt signed with the public key in its
// header, for this method (htm) and URL (htu), with the token's hash
// (ath), whose key the provider bound the token to (introspection's
// cnf.jkt). It returns the token.
func CheckDPoP(ctx context.Context, s *op.Server, h http.Header, method, htu string) (string, error) {
	at, ok := strings.CutPrefix(h.Get("Authorization"), "DPoP ")
	if !ok || at == "" || len(h.Values("DPoP")) != 1 {
		return "", fmt.Errorf("forwarded Authorization %q with %d DPoP headers, want DPoP and one proof", h.Get("Authorization"), len(h.Values("DPoP")))
	}
	jws, err := jose.ParseSigned(h.Get("DPoP"), []jose.SignatureAlgorithm{jose.ES256})
	if err != nil || len(jws.Signatures) != 1 {
		return "", fmt.Errorf("the proof is not an ES256 JWS: %v", err)
	}
	hdr := jws.Signatures[0].Protected
	if hdr.ExtraHeaders["typ"] != "dpop+jwt" || hdr.JSONWebKey == nil || !hdr.JSONWebKey.IsPublic() {
		return "", errors.New("the proof's header lacks typ dpop+jwt or a public jwk")
	}
	payload, err := jws.Verify(hdr.JSONWebKey)
	if err != nil {
		return "", fmt.Errorf("the proof does not verify with its jwk: %w", err)
	}
	var c struct{ JTI, HTM, HTU, ATH string }
	if err := json.Unmarshal(payload, &c); err != nil {
		return "", fmt.Errorf("the proof's claims: %w", err)
	}
	sum := sha256.Sum256([]byte(at))
	switch {
	case c.HTM != method:
		return "", fmt.Errorf("htm %q, want %q", c.HTM, method)
	case c.HTU != htu:
		return "", fmt.Errorf("htu %q, want %q", c.HTU, htu)
	case c.ATH != base64.RawURLEncoding.EncodeToString(sum[:]):
		return "", errors.New("ath is not the token's hash")
	case c.JTI == "":
		return "", errors.New("the proof has no jti")
	}
	in, err := s.Introspect(ctx, at)
	if err != nil {
		return "", err
	}
	tp, _ := hdr.JSONWebKey.Thumbprint(crypto.SHA256)
	if cnf, _ := in["cnf"].(map[string]any); in["active"] != true || cnf["jkt"] != base64.RawURLEncoding.EncodeToString(tp) {
		return "", fmt.Errorf("the token is not active or not bound to the proof's key: %v", in)
	}
	return at, nil
}

// Audience is the audience the provider's introspection shows for a
// token: its one aud, or "" for none or several.
func Audience(ctx context.Context, s *op.Server, token string) (string, error) {
	in, err := s.Introspect(ctx, token)
	if err != nil {
		return "", err
	}
	switch aud := in["aud"].(type) {
	case string:
		return aud, nil
	case []any:
		if len(aud) == 1 {
			a, _ := aud[0].(string)
			return a, nil
		}
	}
	return "", nil
}
