package bff

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"

	"golang.org/x/oauth2"
)

// call POSTs form to one of the provider's endpoints as this client
// (Engine.auth: every endpoint authenticates the same way) and returns the
// answer, at most 1 MiB of it. With a DPoP key it sends a proof (RFC 9449
// §4), and when the provider answers use_dpop_nonce it tries once more
// with the nonce it gave (§8).
func (b *Engine) call(ctx context.Context, client *http.Client, endpoint string, form url.Values, dk *dpopKey) (*http.Response, []byte, error) {
	for attempt := 0; ; attempt++ {
		f := make(url.Values, len(form)+3)
		for k, v := range form {
			f[k] = v
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, nil)
		if err != nil {
			return nil, nil, err
		}
		tokenURL := ""
		if p := b.prov.cached(); p != nil {
			tokenURL = p.tokenURL
		}
		if err := b.auth.apply(req, f, b.now(), tokenURL); err != nil {
			return nil, nil, err
		}
		if dk != nil {
			proof, err := dk.proof(http.MethodPost, endpoint, "", b.providerNonce(), b.now())
			if err != nil {
				return nil, nil, err
			}
			req.Header.Set("DPoP", proof)
		}
		enc := f.Encode()
		req.Body, req.ContentLength = io.NopCloser(strings.NewReader(enc)), int64(len(enc))
		req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(enc)), nil }
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Accept", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			return nil, nil, err
		}
		body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		if err != nil {
			return resp, nil, err
		}
		if dk == nil {
			return resp, body, nil
		}
		nonce := resp.Header.Get("DPoP-Nonce")
		if nonce != "" && len(nonce) <= 1024 {
			b.nonce.Store(&nonce)
		}
		if attempt == 0 && nonce != "" && resp.StatusCode == http.StatusBadRequest && oauthErrorCode(body) == "use_dpop_nonce" {
			continue
		}
		return resp, body, nil
	}
}

// providerNonce is the DPoP nonce the provider last gave, or "".
func (b *Engine) providerNonce() string {
	if p := b.nonce.Load(); p != nil {
		return *p
	}
	return ""
}

func oauthErrorCode(body []byte) string {
	var e struct {
		Error string `json:"error"`
	}
	_ = json.Unmarshal(body, &e)
	return e.Error
}

// tokenCall is one token endpoint request (RFC 6749 §3.2) with form,
// through call: the code exchange and the refresh both come here, since
// golang.org/x/oauth2 can neither sign client assertions nor send DPoP
// proofs. Its answer is an *oauth2.Token with the response's fields as
// Extra, and its errors are *oauth2.RetrieveError, as the library's.
func (b *Engine) tokenCall(ctx context.Context, client *http.Client, p *provider, form url.Values, dk *dpopKey) (*oauth2.Token, error) {
	resp, body, err := b.call(ctx, client, p.tokenURL, form, dk)
	if err != nil {
		return nil, err
	}
	var out struct {
		AccessToken      string      `json:"access_token"`
		TokenType        string      `json:"token_type"`
		RefreshToken     string      `json:"refresh_token"`
		ExpiresIn        json.Number `json:"expires_in"`
		Error            string      `json:"error"`
		ErrorDescription string      `json:"error_description"`
	}
	jsonErr := json.Unmarshal(body, &out)
	if resp.StatusCode != http.StatusOK || jsonErr != nil {
		return nil, &oauth2.RetrieveError{Response: resp, Body: body, ErrorCode: out.Error, ErrorDescription: out.ErrorDescription}
	}
	if out.AccessToken == "" {
		return nil, errors.New("the token response has no access_token")
	}
	var extra map[string]any
	_ = json.Unmarshal(body, &extra)
	tok := &oauth2.Token{AccessToken: out.AccessToken, TokenType: out.TokenType, RefreshToken: out.RefreshToken}
	if n, err := out.ExpiresIn.Int64(); err == nil && n > 0 && n < 1<<31 {
		tok.ExpiresIn = n
	}
	if dk != nil && !strings.EqualFold(tok.TokenType, "DPoP") && b.cfg.Profile == ProfileFAPI2 {
		// RFC 9449 §5: a provider that does not do DPoP answers Bearer;
		// the profile allows no such fallback.
		return nil, errNotDPoP
	}
	return tok.WithExtra(extra), nil
}

// errNotDPoP is a provider answering a DPoP token request with a bearer
// token, which profile fapi2 refuses.
var errNotDPoP = errors.New("the provider issued a bearer token where profile fapi2 needs a DPoP-bound one")
