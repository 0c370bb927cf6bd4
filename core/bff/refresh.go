package bff

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"golang.org/x/oauth2"

	"github.com/bffgate/bffgate/core/session"
)

// loadUnbound reads and opens the request's session; slide resets its
// idle timer. Its errors are failures to answer with (401, 503). It does
// not check DBSC's bound cookie: load does.
func (b *Engine) loadUnbound(ctx context.Context, req *Request, slide bool) (session.ID, *session.Session, error) {
	v, has := cookieValue(req.Header, b.cfg.CookieName)
	if !has || v == "" {
		return session.ID{}, nil, errNoSession
	}
	id, err := session.ParseID(v)
	if err != nil {
		return id, nil, fail(http.StatusUnauthorized, CodeInvalidSession, "the session cookie is malformed")
	}
	s, err := b.sessions.Load(ctx, id, slide)
	return id, s, b.loadFailure(err)
}

// loadFailure turns an error of session.Manager.Load into the answer.
func (b *Engine) loadFailure(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, session.ErrNotFound):
		return fail(http.StatusUnauthorized, CodeInvalidSession, "the session has ended or never existed: log in again")
	case errors.Is(err, session.ErrMalformed):
		return fail(http.StatusUnauthorized, CodeInvalidSession, "the session could not be read: log in again")
	case errors.Is(err, session.ErrExpired):
		b.obs.Session("ended", "expired", 1)
		return fail(http.StatusUnauthorized, CodeSessionExpired, "the session reached its maximum lifetime: log in again")
	}
	b.logLimited(slog.LevelError, "bffgate: session store unavailable", "error", err)
	return errStoreDown
}

// fresh loads the request's session, sliding its idle timer, and refreshes
// its access token when it is about to expire: what every request that
// uses the token needs.
func (b *Engine) fresh(ctx context.Context, req *Request) (*session.Session, error) {
	_, s, err := b.freshID(ctx, req)
	return s, err
}

// freshID is fresh, with the session's ID.
func (b *Engine) freshID(ctx context.Context, req *Request) (session.ID, *session.Session, error) {
	id, s, err := b.load(ctx, req, true)
	if err != nil || !b.needsRefresh(s) {
		return id, s, err
	}
	next, err := b.refresh(ctx, id)
	var f *failure
	if errors.As(err, &f) && f.status != http.StatusUnauthorized && b.now().Before(s.Expiry) {
		// Inside refresh_skew the token still works: a provider or store
		// that failed the refresh need not fail the request. The next
		// request tries again.
		return id, s, nil
	}
	return id, next, err
}

func (b *Engine) needsRefresh(s *session.Session) bool {
	return !s.Expiry.IsZero() && !b.now().Add(b.skew).Before(s.Expiry)
}

// refresh gets a new access token for the session. One refresh per
// session runs at a time in this process (and across nodes when the store
// is a session.Locker); requests that arrive meanwhile wait for its result
// instead of refreshing again, which a provider rotating refresh tokens
// would treat as token theft.
//
// The refresh runs apart from the request: a request waits for it at most
// http_timeout, and the refresh goes on for up to refreshTimeout, so that a
// provider that answers late has its answer (and its rotated refresh
// token) saved rather than lost, which would end the session at the next
// refresh.
func (b *Engine) refresh(ctx context.Context, id session.ID) (*session.Session, error) {
	return b.refreshFor(ctx, id, "")
}

// refreshFor is refresh, which also gets a token for resource (RFC 8707)
// when it is not "" and the session has none that lasts. It shares the
// session's one flight: a request that joins another's may get a session
// without its resource's token, and tries again (resourceToken).
func (b *Engine) refreshFor(ctx context.Context, id session.ID, resource string) (*session.Session, error) {
	ran := false // whether this request's refresh ran, or another's was shared
	ch := b.refreshes.DoChan(id.StoreKey(), func() (any, error) {
		ran = true
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), b.refreshTimeout())
		defer cancel()
		return b.refreshOnce(rctx, id, resource)
	})
	wait := time.NewTimer(time.Duration(b.cfg.HTTPTimeout) * time.Second)
	defer wait.Stop()
	var s *session.Session
	var err error
	select {
	case <-ctx.Done():
		err = fail(http.StatusGatewayTimeout, CodeTimeout, "the request ended while the session was being refreshed")
	case <-wait.C:
		err = fail(http.StatusGatewayTimeout, CodeIdPTimeout, "the identity provider is slow to refresh the session; the refresh goes on: try again")
	case res := <-ch:
		if err = res.Err; err == nil {
			s = res.Val.(*session.Session)
		}
		if b.observed && err == nil {
			outcome := "shared"
			if ran {
				outcome = "refreshed"
			}
			b.obs.Refresh(outcome, "")
		}
	}
	if b.observed && err != nil {
		code := CodeInternal
		if f, ok := err.(*failure); ok {
			code = f.code
		}
		b.obs.Refresh("failed", code)
	}
	return s, err
}

// refreshTimeout bounds one refresh from the lock to the save: three times
// http_timeout, so the provider's call (http_timeout for the answer to
// start, the rest to finish) and the retried save fit in.
func (b *Engine) refreshTimeout() time.Duration {
	return 3 * time.Duration(b.cfg.HTTPTimeout) * time.Second
}

// refreshOnce is one refresh: lock, reload, re-check, refresh, save,
// unlock.
func (b *Engine) refreshOnce(ctx context.Context, id session.ID, resource string) (*session.Session, error) {
	release, err := b.sessions.Lock(ctx, id)
	if err != nil {
		return nil, errStoreDown
	}
	defer release()
	// Re-read: another node, or an earlier flight here, may have refreshed.
	s, err := b.sessions.Load(ctx, id, false)
	if errors.Is(err, session.ErrNotFound) {
		return nil, fail(http.StatusUnauthorized, CodeSessionExpired, "the session has ended: log in again")
	}
	if err != nil {
		return nil, b.loadFailure(err)
	}
	if !b.needsRefresh(s) && (resource == "" || b.resourceFresh(s, resource)) {
		return s, nil
	}
	if s.RefreshToken == "" && !b.needsRefresh(s) {
		return nil, fail(http.StatusBadGateway, CodeIdPError, "the session has no refresh token to get a token for the route's resource with: ask for offline_access")
	}
	if s.RefreshToken == "" {
		_ = b.sessions.End(ctx, id)
		return nil, fail(http.StatusUnauthorized, CodeSessionExpired, "the access token expired and there is no refresh token: log in again")
	}
	next := s
	if b.needsRefresh(s) {
		next, err = b.refreshTokens(ctx, s, "")
	}
	if err == nil && resource != "" && !b.resourceFresh(next, resource) {
		withResource, rerr := b.refreshTokens(ctx, next, resource)
		if rerr != nil && next != s {
			// Keep what the first refresh got (a rotated refresh token
			// is the only one that works now); the resource's failure
			// is this request's answer.
			if err := b.saveRetrying(ctx, id, next); err != nil {
				b.logLimited(slog.LevelError, "bffgate: saving a refreshed session failed; the session will end at its next refresh", "error", err)
				return nil, errStoreDown
			}
		}
		next, err = withResource, rerr
	}
	var re *oauth2.RetrieveError
	if errors.As(err, &re) && re.ErrorCode == "invalid_grant" {
		_ = b.sessions.End(ctx, id)
		b.log.Info("bffgate: refresh token rejected; session ended", "sub", s.Subject)
		b.obs.Session("ended", "refresh_rejected", 1)
		return nil, fail(http.StatusUnauthorized, CodeSessionExpired, "the identity provider ended the session: log in again")
	}
	if err != nil {
		b.logLimited(slog.LevelWarn, "bffgate: refresh failed; session kept", "error", err)
		return nil, idpFailure(err)
	}
	if err := b.saveRetrying(ctx, id, next); err != nil {
		// The provider rotated the refresh token; losing it loses the
		// session, so say so plainly.
		b.logLimited(slog.LevelError, "bffgate: saving a refreshed session failed; the session will end at its next refresh", "error", err)
		return nil, errStoreDown
	}
	return next, nil
}

// refreshTokens asks the provider for new tokens for s (the refresh token
// grant) and returns the session with them: its own access token, or with
// resource, the token for that resource (RFC 8707 §2.2) beside the others.
func (b *Engine) refreshTokens(ctx context.Context, s *session.Session, resource string) (*session.Session, error) {
	p, err := b.prov.get(ctx)
	if err != nil {
		return nil, err
	}
	dk, err := parseDPoPKey(s.DPoPKey)
	if err != nil {
		return nil, err
	}
	// The refresh client lets a slow answer finish (refreshTimeout) where
	// http_timeout would drop it after the provider rotated the token.
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {s.RefreshToken}}
	if resource != "" {
		form.Set("resource", resource)
	}
	tok, err := b.tokenCall(ctx, b.refreshClient, p, form, dk)
	if err != nil {
		return nil, err
	}
	if resource != "" {
		next := *s
		next.SetResource(session.ResourceToken{Resource: resource, AccessToken: tok.AccessToken, TokenType: tok.Type(), Expiry: b.expiry(tok)})
		if tok.RefreshToken != "" {
			next.RefreshToken = tok.RefreshToken
		}
		return &next, nil
	}
	next := *s
	next.AccessToken, next.TokenType, next.Expiry = tok.AccessToken, tok.Type(), b.expiry(tok)
	if tok.ExpiresIn > 0 && time.Duration(tok.ExpiresIn)*time.Second <= b.skew {
		b.logLimited(slog.LevelWarn, "bffgate: access tokens live no longer than refresh_skew, so every request refreshes; lower refresh_skew",
			"expires_in", tok.ExpiresIn, "refresh_skew", b.cfg.RefreshSkew)
	}
	if tok.RefreshToken != "" {
		next.RefreshToken = tok.RefreshToken
	}
	if sc, _ := tok.Extra("scope").(string); sc != "" {
		next.Scope = sc
	}
	// OpenID Connect Core §12.2: a new ID token must be for the same
	// subject; keep it for id_token_hint.
	if raw, _ := tok.Extra("id_token").(string); raw != "" && b.cfg.LogoutIDTokenHint {
		if idt, err := p.idTokens.Verify(ctx, raw); err == nil && idt.Subject == s.Subject && idt.Issuer == s.Issuer {
			next.IDToken = raw
		}
	}
	return &next, nil
}

// saveRetrying saves a refreshed session, trying again while the store
// fails and ctx allows: the provider has rotated the refresh token, and
// only the saved one works from now on.
func (b *Engine) saveRetrying(ctx context.Context, id session.ID, s *session.Session) error {
	backoff := 50 * time.Millisecond
	for {
		err := b.sessions.Save(ctx, id, s)
		if err == nil {
			return nil
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
		backoff = min(2*backoff, time.Second)
	}
}

// expiry is when tok expires by the BFF's clock. The library computes
// Token.Expiry with time.Now, which Config.Now may differ from.
func (b *Engine) expiry(tok *oauth2.Token) time.Time {
	if tok.ExpiresIn > 0 {
		return b.now().Add(time.Duration(tok.ExpiresIn) * time.Second)
	}
	return tok.Expiry
}
