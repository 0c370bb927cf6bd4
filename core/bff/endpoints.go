package bff

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/bffgate/bffgate/core/session"
)

// sessionInfo is the body of the session endpoint.
type sessionInfo struct {
	Authenticated bool            `json:"authenticated"`
	User          json.RawMessage `json:"user"`
	ExpiresAt     time.Time       `json:"expiresAt"`
	Mode          string          `json:"mode"`
}

// session tells the app whether it is logged in and who the user is
// (GET). It never redirects: 401 JSON when there is no session.
func (b *BFF) session(ctx context.Context, req *Request) Result {
	if req.Method != http.MethodGet && req.Method != http.MethodHead {
		return b.methodNotAllowed(req, "GET")
	}
	if !b.originAllowed(req) {
		return b.fail(req, http.StatusForbidden, "origin_not_allowed", "the request's Origin is not this site nor in allowed_origins")
	}
	_, s, r, ok := b.load(ctx, req, true)
	if !ok {
		// ?probe=1 (the JS client's own check) answers a signed-out
		// visitor with 200, so the browser's console shows no error for
		// the expected answer; the body is the same.
		if r.Status == http.StatusUnauthorized && req.RawQuery == "probe=1" {
			r.Status = http.StatusOK
		}
		return r
	}
	var all map[string]json.RawMessage
	_ = json.Unmarshal([]byte(s.Claims), &all)
	user := make(map[string]json.RawMessage, len(b.cfg.UserClaims))
	for _, c := range b.cfg.UserClaims {
		if v, ok := all[c]; ok {
			user[c] = v
		}
	}
	userJSON, _ := json.Marshal(user)
	expires := s.Created.Add(b.max)
	if idle := b.now().Add(b.idle); idle.Before(expires) {
		expires = idle
	}
	return b.json(req, http.StatusOK, sessionInfo{
		Authenticated: true, User: userJSON, ExpiresAt: expires.UTC().Truncate(time.Second), Mode: b.cfg.Mode,
	})
}

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
func (b *BFF) token(ctx context.Context, req *Request) Result {
	if b.cfg.Mode != ModeTokenMediating {
		return b.fail(req, http.StatusNotFound, "not_found", "the token endpoint is off: the BFF runs in bff mode")
	}
	if req.Method != http.MethodGet {
		return b.methodNotAllowed(req, "GET")
	}
	if r, ok := b.guard(req, true); !ok {
		return r
	}
	q, err := url.ParseQuery(req.RawQuery)
	if err != nil || len(q.Get("scope")) > 1024 || len(q.Get("resource")) > 2048 {
		return b.fail(req, http.StatusBadRequest, "invalid_request", "the query string is malformed")
	}
	s, r, ok := b.fresh(ctx, req)
	if !ok {
		return r
	}
	have := strings.Fields(s.Scope)
	want := strings.Fields(q.Get("scope"))
	for _, sc := range want {
		if !slices.Contains(have, sc) {
			return b.fail(req, http.StatusBadRequest, "invalid_scope", "the session's token does not have the scope "+safeCode(sc))
		}
	}
	resource := q.Get("resource")
	narrower := len(want) > 0 && len(want) < len(have)
	remaining := int(s.Expiry.Sub(b.now()) / time.Second)
	long := s.Expiry.IsZero() || remaining > b.cfg.TokenMaxLifetime
	if !narrower && resource == "" && b.cfg.TokenExchangeAudience == "" {
		p, err := b.prov.get(ctx)
		if err != nil {
			return b.failIdP(req, err)
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
			return b.fail(req, http.StatusBadRequest, "exchange_unsupported", "the identity provider does not support token exchange (RFC 8693), so the token cannot be narrowed")
		}
		b.logLimited(slog.LevelWarn, "bffgate: token exchange failed", "error", err)
		return b.failIdP(req, err)
	}
	return b.tokenResult(req, *ti)
}

func (b *BFF) tokenResult(req *Request, ti tokenInfo) Result {
	r := b.json(req, http.StatusOK, ti)
	r.Header.Set("Pragma", "no-cache")
	return r
}

// logout ends the session (POST, CSRF-guarded) and answers with the
// provider's end-session URL (OpenID Connect RP-Initiated Logout) for the
// app to navigate to, or null when the provider has none.
func (b *BFF) logout(ctx context.Context, req *Request) Result {
	if req.Method != http.MethodPost {
		return b.methodNotAllowed(req, "POST")
	}
	if r, ok := b.guard(req, true); !ok {
		return r
	}
	var idToken string
	if v, ok := cookieValue(req.Header, b.cfg.CookieName); ok {
		if id, err := session.ParseID(v); err == nil {
			if raw, err := b.store.Get(ctx, id.StoreKey(), 0); err == nil {
				if s, err := session.Open(id, raw); err == nil && b.cfg.LogoutIDTokenHint {
					idToken = s.IDToken
				}
			} else if !errors.Is(err, session.ErrNotFound) {
				return b.fail(req, http.StatusServiceUnavailable, "session_store_unavailable", "the session store is unavailable; try again")
			}
			if err := b.store.Delete(ctx, id.StoreKey()); err != nil {
				return b.fail(req, http.StatusServiceUnavailable, "session_store_unavailable", "the session store is unavailable; try again")
			}
		}
	}
	var logoutURL *string
	if p, err := b.prov.get(ctx); err == nil && p.endSession != "" {
		u := b.endSessionURL(p, idToken)
		logoutURL = &u
	}
	r := b.json(req, http.StatusOK, struct {
		LogoutURL *string `json:"logoutUrl"`
	}{logoutURL})
	r.Header.Add("Set-Cookie", b.clearSessionCookie())
	return r
}

func (b *BFF) endSessionURL(p *provider, idToken string) string {
	q := url.Values{"client_id": {b.cfg.ClientID}}
	if idToken != "" {
		q.Set("id_token_hint", idToken)
	}
	if b.cfg.PostLogoutRedirectURL != "" {
		q.Set("post_logout_redirect_uri", b.cfg.PostLogoutRedirectURL)
	}
	sep := "?"
	if strings.Contains(p.endSession, "?") {
		sep = "&"
	}
	return p.endSession + sep + q.Encode()
}

// logoutCallback is where the provider sends the browser after logout.
func (b *BFF) logoutCallback(ctx context.Context, req *Request) Result {
	if req.Method != http.MethodGet {
		return b.methodNotAllowed(req, "GET")
	}
	return redirect(b.cfg.PostLogoutReturnTo)
}

const backchannelEvent = "http://schemas.openid.net/event/backchannel-logout"

// backchannelLogout ends the sessions a verified logout token names
// (OpenID Connect Back-Channel Logout 1.0): all of that sid, or all of
// that sub when the token has no sid.
func (b *BFF) backchannelLogout(ctx context.Context, req *Request) Result {
	if req.Method != http.MethodPost {
		return b.methodNotAllowed(req, "POST")
	}
	invalid := func(desc string) Result { return b.fail(req, http.StatusBadRequest, "invalid_request", desc) }
	if mt, _, _ := mime.ParseMediaType(req.Header.Get("Content-Type")); mt != "application/x-www-form-urlencoded" || req.Body == nil {
		return invalid("send logout_token as application/x-www-form-urlencoded")
	}
	body, err := io.ReadAll(io.LimitReader(req.Body, maxBody+1))
	if err != nil || len(body) > maxBody {
		return invalid("the body is unreadable or too large")
	}
	form, err := url.ParseQuery(string(body))
	if err != nil || len(form["logout_token"]) != 1 {
		return invalid("logout_token is missing")
	}
	p, err := b.prov.get(ctx)
	if err != nil {
		return b.failIdP(req, err)
	}
	tok, err := p.logoutTokens.Verify(ctx, form.Get("logout_token"))
	if err != nil {
		b.logLimited(slog.LevelWarn, "bffgate: logout token rejected", "error", err)
		return invalid("the logout token did not verify")
	}
	var c struct {
		SID    string                     `json:"sid"`
		Events map[string]json.RawMessage `json:"events"`
		Nonce  *string                    `json:"nonce"`
		Exp    *json.Number               `json:"exp"`
	}
	if err := tok.Claims(&c); err != nil {
		return invalid("the logout token's claims are malformed")
	}
	now := b.now()
	switch {
	case c.Events[backchannelEvent] == nil:
		return invalid("the logout token lacks the back-channel logout event")
	case c.Nonce != nil:
		return invalid("a logout token must not have a nonce")
	case tok.IssuedAt.IsZero() || tok.IssuedAt.After(now.Add(time.Minute)) || tok.IssuedAt.Before(now.Add(-5*time.Minute)):
		return invalid("the logout token's iat is missing or not recent")
	case c.Exp != nil && !tok.Expiry.After(now):
		return invalid("the logout token has expired")
	case c.SID == "" && tok.Subject == "":
		return invalid("the logout token names neither sid nor sub")
	}
	index := indexName("sub", tok.Issuer, tok.Subject)
	if c.SID != "" {
		index = indexName("sid", tok.Issuer, c.SID)
	}
	keys, err := b.store.TakeIndex(ctx, index)
	if err == nil && len(keys) > 0 {
		err = b.store.Delete(ctx, keys...)
	}
	if err != nil {
		b.logLimited(slog.LevelError, "bffgate: back-channel logout could not reach the session store", "error", err)
		return b.fail(req, http.StatusServiceUnavailable, "session_store_unavailable", "the session store is unavailable; try again")
	}
	b.log.Info("bffgate: back-channel logout", "sessions", len(keys))
	return Result{Status: http.StatusOK, Header: http.Header{"Cache-Control": {"no-store"}}}
}
