package bff

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// tokenInfo is the body of the token endpoint (RFC 6749 §5.1 names).
type tokenInfo struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int    `json:"expires_in"`
	Scope       string `json:"scope,omitempty"`
}

// token hands the app a short-lived access token (GET, token-mediating
// mode only, CSRF-guarded). It narrows the token when the app asks for
// less scope, a resource, or the configured audience, by RFC 8693
// exchange; the refresh token never leaves the server.
func (b *Engine) token(ctx context.Context, req *Request) Result {
	if b.cfg.Mode != ModeTokenMediating {
		return b.answer(req, fail(http.StatusNotFound, CodeNotFound, "the token endpoint is off: the BFF runs in bff mode"))
	}
	if req.Method != http.MethodGet {
		return b.methodNotAllowed(req, "GET")
	}
	if err := b.guard(req, true); err != nil {
		return b.answer(req, err)
	}
	q, err := url.ParseQuery(req.RawQuery)
	if err != nil || len(q.Get("scope")) > 1024 || len(q.Get("resource")) > 2048 {
		return b.answer(req, fail(http.StatusBadRequest, CodeInvalidRequest, "the query string is malformed"))
	}
	s, err := b.fresh(ctx, req)
	if err != nil {
		return b.answer(req, err)
	}
	have := strings.Fields(s.Scope)
	want := strings.Fields(q.Get("scope"))
	for _, sc := range want {
		if !slices.Contains(have, sc) {
			return b.answer(req, fail(http.StatusBadRequest, CodeInvalidScope, "the session's token does not have the scope "+safeCode(sc)))
		}
	}
	resource := q.Get("resource")
	narrower := len(want) > 0 && len(want) < len(have)
	remaining := int(s.Expiry.Sub(b.now()) / time.Second)
	long := s.Expiry.IsZero() || remaining > b.cfg.TokenMaxLifetime
	if !narrower && resource == "" && b.cfg.TokenExchangeAudience == "" {
		p, err := b.prov.get(ctx)
		if err != nil {
			return b.answer(req, idpFailure(err))
		}
		if !long || !p.tokenExchange {
			return b.tokenResult(req, tokenInfo{AccessToken: s.AccessToken, TokenType: strings.TrimSpace(bearer(s)),
				ExpiresIn: max(remaining, 0), Scope: s.Scope})
		}
	}
	if len(want) == 0 {
		want = have
	}
	ti, err := b.exchange(ctx, s, strings.Join(want, " "), resource)
	if err != nil {
		if errors.Is(err, errNoExchange) {
			return b.answer(req, fail(http.StatusBadRequest, CodeExchangeUnsupported, "the identity provider does not support token exchange (RFC 8693), so the token cannot be narrowed"))
		}
		b.logLimited(slog.LevelWarn, "bffgate: token exchange failed", "error", err)
		return b.answer(req, idpFailure(err))
	}
	return b.tokenResult(req, *ti)
}

func (b *Engine) tokenResult(req *Request, ti tokenInfo) Result {
	r := b.json(req, http.StatusOK, ti)
	r.Header.Set("Pragma", "no-cache")
	return r
}
