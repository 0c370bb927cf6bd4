package bff

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/bffgate/bffgate/core/session"
	"github.com/coreos/go-oidc/v3/oidc"
)

// logout ends the session (POST, CSRF-guarded) and answers with the
// provider's end-session URL (OpenID Connect RP-Initiated Logout) for the
// app to navigate to, or null when the provider has none.
func (b *Engine) logout(ctx context.Context, req *Request) Result {
	if req.Method != http.MethodPost {
		return b.methodNotAllowed(req, "POST")
	}
	if err := b.guard(req, true); err != nil {
		return b.answer(req, err)
	}
	var idToken string
	if v, ok := cookieValue(req.Header, b.cfg.CookieName); ok {
		if id, err := session.ParseID(v); err == nil {
			s, err := b.sessions.Load(ctx, id, false)
			if err != nil && b.loadFailure(err) == errStoreDown {
				return b.answer(req, errStoreDown)
			}
			if err := b.sessions.End(ctx, id); err != nil {
				return b.answer(req, errStoreDown)
			}
			if s != nil {
				b.obs.Session("ended", "logout", 1)
			}
			if s != nil {
				if b.cfg.LogoutIDTokenHint && b.boundOK(req, id, s) { // not to a copied cookie jar
					idToken = s.IDToken
				}
				b.revoke(ctx, s.RefreshToken)
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
	if b.dbsc != nil {
		r.Header.Add("Set-Cookie", b.cookie(b.dbsc.cookie, "", -1, "Lax"))
	}
	return r
}

// revoke revokes a refresh token at the provider (RFC 7009), when it has
// a revocation endpoint, so the token is worthless even if a copy of the
// session survived somewhere. It runs apart from the request (logout does
// not wait for the provider) and at most http_timeout.
func (b *Engine) revoke(ctx context.Context, refreshToken string) {
	if refreshToken == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Duration(b.cfg.HTTPTimeout)*time.Second)
	go func() {
		defer cancel()
		p, err := b.prov.get(ctx)
		if err != nil || p.revocation == "" {
			return
		}
		form := url.Values{"token": {refreshToken}, "token_type_hint": {"refresh_token"}}
		resp, _, err := b.postForm(ctx, p.revocation, form)
		if err == nil && resp.StatusCode != http.StatusOK {
			err = fmt.Errorf("the provider answered HTTP %d", resp.StatusCode)
		}
		if err != nil {
			b.logLimited(slog.LevelWarn, "bffgate: revoking the refresh token at logout failed", "error", err)
		}
	}()
}

func (b *Engine) endSessionURL(p *provider, idToken string) string {
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
func (b *Engine) logoutCallback(ctx context.Context, req *Request) Result {
	if req.Method != http.MethodGet {
		return b.methodNotAllowed(req, "GET")
	}
	return redirect(b.cfg.PostLogoutReturnTo)
}

const backchannelEvent = "http://schemas.openid.net/event/backchannel-logout"

// backchannelLogout ends the sessions a verified logout token names
// (OpenID Connect Back-Channel Logout 1.0): all of that sid, or all of
// that sub when the token has no sid.
func (b *Engine) backchannelLogout(ctx context.Context, req *Request) Result {
	if req.Method != http.MethodPost {
		return b.methodNotAllowed(req, "POST")
	}
	raw, err := logoutTokenOf(req)
	if err != nil {
		return b.answer(req, err)
	}
	tok, sid, err := b.verifyLogoutToken(ctx, raw)
	if err != nil {
		return b.answer(req, err)
	}
	n, err := b.sessions.EndAll(ctx, tok.Issuer, sid, tok.Subject)
	if err != nil {
		b.logLimited(slog.LevelError, "bffgate: back-channel logout could not reach the session store", "error", err)
		return b.answer(req, errStoreDown)
	}
	b.log.Info("bffgate: back-channel logout", "sessions", n)
	b.obs.Session("ended", "backchannel_logout", n)
	return Result{Status: http.StatusOK, Header: http.Header{"Cache-Control": {"no-store"}}}
}

func invalidRequest(desc string) error { return fail(http.StatusBadRequest, CodeInvalidRequest, desc) }

// logoutTokenOf reads the logout_token of a back-channel logout request:
// one form field of a body of at most maxBody bytes.
func logoutTokenOf(req *Request) (string, error) {
	if mt, _, _ := mime.ParseMediaType(req.Header.Get("Content-Type")); mt != "application/x-www-form-urlencoded" || req.Body == nil {
		return "", invalidRequest("send logout_token as application/x-www-form-urlencoded")
	}
	body, err := io.ReadAll(io.LimitReader(req.Body, maxBody+1))
	if err != nil || len(body) > maxBody {
		return "", invalidRequest("the body is unreadable or too large")
	}
	form, err := url.ParseQuery(string(body))
	if err != nil || len(form["logout_token"]) != 1 {
		return "", invalidRequest("logout_token is missing")
	}
	return form.Get("logout_token"), nil
}

// verifyLogoutToken verifies a logout token's signature, issuer and
// audience, and the claims Back-Channel Logout 1.0 §2.6 requires: the
// event, no nonce, a recent iat, and a sid or sub.
func (b *Engine) verifyLogoutToken(ctx context.Context, raw string) (*oidc.IDToken, string, error) {
	p, err := b.prov.get(ctx)
	if err != nil {
		return nil, "", idpFailure(err)
	}
	tok, err := p.logoutTokens.Verify(ctx, raw)
	if err != nil {
		b.logLimited(slog.LevelWarn, "bffgate: logout token rejected", "error", err)
		return nil, "", invalidRequest("the logout token did not verify")
	}
	var c struct {
		SID    string                     `json:"sid"`
		Events map[string]json.RawMessage `json:"events"`
		Nonce  *string                    `json:"nonce"`
		Exp    *json.Number               `json:"exp"`
	}
	if err := tok.Claims(&c); err != nil {
		return nil, "", invalidRequest("the logout token's claims are malformed")
	}
	now := b.now()
	switch {
	case c.Events[backchannelEvent] == nil:
		return nil, "", invalidRequest("the logout token lacks the back-channel logout event")
	case c.Nonce != nil:
		return nil, "", invalidRequest("a logout token must not have a nonce")
	case tok.IssuedAt.IsZero() || tok.IssuedAt.After(now.Add(time.Minute)) || tok.IssuedAt.Before(now.Add(-5*time.Minute)):
		return nil, "", invalidRequest("the logout token's iat is missing or not recent")
	case c.Exp != nil && !tok.Expiry.After(now):
		return nil, "", invalidRequest("the logout token has expired")
	case c.SID == "" && tok.Subject == "":
		return nil, "", invalidRequest("the logout token names neither sid nor sub")
	}
	return tok, c.SID, nil
}
