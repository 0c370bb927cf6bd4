package bff

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"golang.org/x/oauth2"

	"github.com/bffgate/bffgate/core/session"
)

var errNoExchange = errors.New("token exchange not supported by the provider")

const tokenTypeAccess = "urn:ietf:params:oauth:token-type:access_token"

// exchange trades the session's access token for a narrower one (RFC 8693
// §2): the requested scope, resource and the configured audience.
// golang.org/x/oauth2 has no token-exchange grant, so this is the one form
// POST the BFF makes itself; errors come back as *oauth2.RetrieveError
// like the library's own.
func (b *Engine) exchange(ctx context.Context, s *session.Session, scope, resource string) (*tokenInfo, error) {
	p, err := b.prov.get(ctx)
	if err != nil {
		return nil, err
	}
	if !p.tokenExchange {
		return nil, errNoExchange
	}
	form := url.Values{
		"grant_type":           {grantTokenExchange},
		"subject_token":        {s.AccessToken},
		"subject_token_type":   {tokenTypeAccess},
		"requested_token_type": {tokenTypeAccess},
		"scope":                {scope},
	}
	if resource != "" {
		form.Set("resource", resource)
	}
	if b.cfg.TokenExchangeAudience != "" {
		form.Set("audience", b.cfg.TokenExchangeAudience)
	}
	resp, body, err := b.postForm(ctx, p.tokenURL, form)
	if err != nil {
		return nil, err
	}
	var out struct {
		tokenInfo
		IssuedTokenType string `json:"issued_token_type"`
		Error           string `json:"error"`
	}
	jsonErr := json.Unmarshal(body, &out)
	if resp.StatusCode != http.StatusOK || jsonErr != nil || out.AccessToken == "" {
		return nil, &oauth2.RetrieveError{Response: resp, Body: body, ErrorCode: out.Error}
	}
	if out.IssuedTokenType != "" && out.IssuedTokenType != tokenTypeAccess {
		return nil, fmt.Errorf("token exchange issued a %q, not an access token", out.IssuedTokenType)
	}
	if out.TokenType == "" || strings.EqualFold(out.TokenType, "bearer") {
		out.TokenType = "Bearer"
	}
	if out.Scope == "" {
		out.Scope = scope
	}
	return &out.tokenInfo, nil
}

// postForm POSTs form to one of the provider's endpoints as this client
// (see call) and returns its answer, at most 1 MiB of it.
func (b *Engine) postForm(ctx context.Context, endpoint string, form url.Values) (*http.Response, []byte, error) {
	return b.call(ctx, b.cfg.HTTPClient, endpoint, form, nil)
}
