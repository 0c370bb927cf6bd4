package bff

import (
	"net/url"
	"time"

	"github.com/go-jose/go-jose/v4/jwt"
)

// requestObjectLifetime bounds a request object: the browser carries it to
// the provider (without PAR), so it must outlive that trip, not much more.
const requestObjectLifetime = 5 * time.Minute

// signedRequest turns an authorization request URL into one that carries
// its parameters as a signed request object (JAR, RFC 9101 §4): client_id
// and request only, so neither the browser nor anything between it and
// the provider can change them. Without signed_request_object it returns
// authURL as it is.
func (b *Engine) signedRequest(authURL string) (string, error) {
	if b.auth.requests == nil {
		return authURL, nil
	}
	u, err := url.Parse(authURL)
	if err != nil {
		return "", err
	}
	now := b.now()
	claims := map[string]any{}
	for k, v := range u.Query() {
		if len(v) == 1 {
			claims[k] = v[0]
		} else {
			claims[k] = v
		}
	}
	std := jwt.Claims{
		Issuer: b.cfg.ClientID, Audience: jwt.Audience{b.cfg.Issuer}, ID: randomString(),
		IssuedAt: jwt.NewNumericDate(now), NotBefore: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(now.Add(requestObjectLifetime)),
	}
	request, err := jwt.Signed(b.auth.requests).Claims(std).Claims(claims).Serialize()
	if err != nil {
		return "", err
	}
	u.RawQuery = url.Values{"client_id": {b.cfg.ClientID}, "request": {request}}.Encode()
	return u.String(), nil
}
