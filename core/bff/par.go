package bff

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"

	"golang.org/x/oauth2"
)

// Pushed authorization requests (RFC 9126, Config.PushedAuthorization).
const (
	PARAuto     = "auto"     // push when the provider advertises its endpoint
	PAROff      = "off"      // never push
	PARRequired = "required" // always push; fail a login if the provider cannot
)

// authURL returns where /login sends the browser: the authorization
// request itself, or with PAR, its request_uri only, the parameters (PKCE
// challenge, nonce, state, scopes) having gone to the provider directly
// from the BFF, authenticated as the client, where no browser, extension
// or proxy can read or change them.
func (b *Engine) authURL(ctx context.Context, p *provider, state string, opts ...oauth2.AuthCodeOption) (string, error) {
	full, err := b.signedRequest(b.withResources(p.oauth2.AuthCodeURL(state, opts...)))
	if err != nil {
		return "", err
	}
	push := b.cfg.PushedAuthorization == PARRequired || (b.cfg.PushedAuthorization == PARAuto && p.parEndpoint != "")
	if !push {
		return full, nil
	}
	if p.parEndpoint == "" {
		return "", fail(http.StatusBadGateway, CodeIdPError, "pushed_authorization is required, but the identity provider has no pushed_authorization_request_endpoint")
	}
	u, err := url.Parse(full)
	if err != nil {
		return "", err
	}
	resp, body, err := b.postForm(b.octx(ctx), p.parEndpoint, u.Query())
	if err != nil {
		return "", fmt.Errorf("%w: pushed authorization request: %v", errIdP, err)
	}
	var out struct {
		RequestURI string `json:"request_uri"`
		Error      string `json:"error"`
	}
	if json.Unmarshal(body, &out); resp.StatusCode != http.StatusCreated || out.RequestURI == "" {
		return "", &oauth2.RetrieveError{Response: resp, Body: body, ErrorCode: out.Error}
	}
	u.RawQuery = url.Values{"client_id": {b.cfg.ClientID}, "request_uri": {out.RequestURI}}.Encode()
	return u.String(), nil
}
