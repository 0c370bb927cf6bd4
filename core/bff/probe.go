package bff

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// Errors of ProbeClient.
var (
	// ErrClientRejected: the provider answered invalid_client, so it does
	// not accept the client's ID and secret.
	ErrClientRejected = errors.New("the provider rejected the client's credentials (invalid_client): check client_id and client_secret")
	// ErrProbeInconclusive: the provider refused the grant in a way that
	// says nothing of the credentials.
	ErrProbeInconclusive = errors.New("the provider's answer does not tell whether it accepts the client's credentials")
	// ErrDiscoveryFailed: the provider's discovery document could not be
	// read, so its token endpoint is unknown.
	ErrDiscoveryFailed = errors.New("discovery failed")
)

// ProbeClient is for `bffgate check -online`: it discovers the provider
// and asks its token endpoint for a client_credentials grant with the
// client's credentials, which needs no user. The answer tells whether the
// provider accepts them: nil for a token (thrown away) or
// unauthorized_client (RFC 6749 §5.2: the authenticated client may not use
// this grant); ErrClientRejected for invalid_client. A provider without
// the grant answers unsupported_grant_type, which RFC 6749 does not order
// before or after authenticating the client; so ProbeClient then asks once
// more with a wrong secret: if that is invalid_client, the provider checks
// credentials first and accepted the real ones (nil). Any other OAuth
// error is ErrProbeInconclusive (wrapped, with the provider's code);
// ErrDiscoveryFailed (wrapped) means the provider's discovery failed;
// another error, that the token endpoint could not be reached.
func (b *Engine) ProbeClient(ctx context.Context) error {
	p, err := b.prov.get(ctx)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrDiscoveryFailed, err)
	}
	grant := func(secret string) (string, error) {
		cc := clientcredentials.Config{ClientID: b.cfg.ClientID, ClientSecret: secret,
			TokenURL: p.tokenURL, AuthStyle: oauth2.AuthStyleInHeader}
		_, err := cc.Token(b.octx(ctx))
		var re *oauth2.RetrieveError
		switch {
		case err == nil:
			return "", nil
		case !errors.As(err, &re) || re.ErrorCode == "":
			return "", fmt.Errorf("token endpoint: %w", err)
		}
		return re.ErrorCode, nil
	}
	code, err := grant(b.cfg.ClientSecret)
	if err != nil {
		return err
	}
	switch code {
	case "", "unauthorized_client":
		return nil
	case "invalid_client":
		return ErrClientRejected
	case "unsupported_grant_type":
		wrong, err := grant("bffgate-check-" + rand.Text())
		if err == nil && wrong == "invalid_client" {
			return nil
		}
	}
	return fmt.Errorf("%w: it answered %s", ErrProbeInconclusive, code)
}
