package browsertest

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
)

// Tokens are the tokens of one answer of a provider's token endpoint.
type Tokens struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	IDToken      string `json:"id_token"`
}

// TokenTap is an http.RoundTripper for bffgate's calls to the provider: it
// hands every token-endpoint answer's tokens (a POST to a path ending in
// /token) to Seen, so a test knows each token bffgate was given — even
// those bffgate verifies and then drops, like the ID token — and can
// search the browser's recording for them.
type TokenTap struct {
	Next http.RoundTripper // nil: http.DefaultTransport
	Seen func(Tokens)      // called once per answer that carries a token; must be safe for concurrent use
}

// RoundTrip implements http.RoundTripper.
func (t *TokenTap) RoundTrip(req *http.Request) (*http.Response, error) {
	next := t.Next
	if next == nil {
		next = http.DefaultTransport
	}
	resp, err := next.RoundTrip(req)
	if err != nil || req.Method != http.MethodPost || !strings.HasSuffix(req.URL.Path, "/token") {
		return resp, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	var tok Tokens
	if json.Unmarshal(body, &tok) == nil && (tok.AccessToken != "" || tok.RefreshToken != "" || tok.IDToken != "") {
		t.Seen(tok)
	}
	return resp, nil
}
