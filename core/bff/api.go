package bff

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"github.com/bffgate/bffgate/core/session"
)

// api authenticates an API request and forwards it with the session's
// access token, or answers why not. It takes no lock unless the token must
// be refreshed.
func (b *BFF) api(ctx context.Context, req *Request) Result {
	if r, ok := b.guard(req, false); !ok {
		return r
	}
	s, r, ok := b.fresh(ctx, req)
	if !ok {
		return r
	}
	return b.forward(req, s)
}

// fresh loads the request's session, sliding its idle timer, and refreshes
// its access token when it is about to expire: what every request that
// uses the token needs. When ok is false, r is the answer.
func (b *BFF) fresh(ctx context.Context, req *Request) (s *session.Session, r Result, ok bool) {
	id, s, r, ok := b.load(ctx, req, true)
	if !ok || !b.needsRefresh(s) {
		return s, r, ok
	}
	next, r, ok := b.refresh(ctx, req, id)
	if !ok && r.Status != http.StatusUnauthorized && b.now().Before(s.Expiry) {
		// Inside refresh_skew the token still works: a provider or store
		// that failed the refresh need not fail the request. The next
		// request tries again.
		return s, Result{}, true
	}
	return next, r, ok
}

// forward builds the upstream header edits for an authenticated request.
func (b *BFF) forward(req *Request, s *session.Session) Result {
	r := Result{Set: make(http.Header, 2+len(b.cfg.IdentityHeaders)), Del: b.headerDel(req.Header)}
	r.Set["Authorization"] = []string{bearer(s) + s.AccessToken}
	if v, changed := b.upstreamCookie(req.Header); changed {
		r.setOrDel("Cookie", v)
	}
	if v, changed := connectionTokens(req.Header); changed {
		r.setOrDel("Connection", v)
	}
	for i, h := range b.cfg.IdentityHeaders {
		if v, ok := identityClaim(s.Identity, h.Claim); ok {
			r.Set[b.identityDel[i]] = []string{v}
		}
	}
	r.ResponseHeader = b.corsHeader(req)
	return r
}

// bearer returns the Authorization scheme with its trailing space. Token
// types are case-insensitive (RFC 6749 §5.1); upstreams expect "Bearer".
func bearer(s *session.Session) string {
	if s.TokenType == "" || strings.EqualFold(s.TokenType, "bearer") {
		return "Bearer "
	}
	return s.TokenType + " "
}

// headerValue renders a claim for a header: strings, numbers and booleans,
// with no control characters.
func headerValue(v any) (string, bool) {
	var s string
	switch v := v.(type) {
	case string:
		s = v
	case float64:
		s = strconv.FormatFloat(v, 'f', -1, 64)
	case bool:
		s = strconv.FormatBool(v)
	default:
		return "", false
	}
	if len(s) > 1024 || strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return "", false
	}
	return s, true
}

// load reads and opens the request's session. slide resets its idle
// timer. When ok is false, r is the answer (401, 503).
func (b *BFF) load(ctx context.Context, req *Request, slide bool) (id session.ID, s *session.Session, r Result, ok bool) {
	v, has := cookieValue(req.Header, b.cfg.CookieName)
	if !has || v == "" {
		return id, nil, b.fail(req, http.StatusUnauthorized, "unauthenticated", "no session: log in first"), false
	}
	id, err := session.ParseID(v)
	if err != nil {
		return id, nil, b.unauthorized(req, "invalid_session", "the session cookie is malformed"), false
	}
	ttl := time.Duration(0)
	if slide {
		ttl = b.idle
	}
	raw, err := b.store.Get(ctx, id.StoreKey(), ttl)
	if errors.Is(err, session.ErrNotFound) {
		return id, nil, b.unauthorized(req, "invalid_session", "the session has ended or never existed: log in again"), false
	}
	if err != nil {
		b.logLimited(slog.LevelError, "bffgate: session store unavailable", "error", err)
		return id, nil, b.fail(req, http.StatusServiceUnavailable, "session_store_unavailable", "the session store is unavailable; try again"), false
	}
	s, err = session.Open(id, raw)
	if err != nil {
		_ = b.store.Delete(ctx, id.StoreKey())
		return id, nil, b.unauthorized(req, "invalid_session", "the session could not be read: log in again"), false
	}
	if !b.now().Before(s.Created.Add(b.max)) {
		_ = b.store.Delete(ctx, id.StoreKey())
		return id, nil, b.unauthorized(req, "session_expired", "the session reached its maximum lifetime: log in again"), false
	}
	return id, s, Result{}, true
}

// unauthorized answers 401 and deletes the session cookie.
func (b *BFF) unauthorized(req *Request, code, desc string) Result {
	r := b.fail(req, http.StatusUnauthorized, code, desc)
	r.Header.Add("Set-Cookie", b.clearSessionCookie())
	return r
}

// ttl is how long a session may stay in the store from now: its idle
// timeout, cut short by its absolute end.
func (b *BFF) ttl(s *session.Session) time.Duration {
	return min(b.idle, s.Created.Add(b.max).Sub(b.now()))
}

// indexes are the back-channel logout indexes a session belongs to. They
// hash the issuer with the sid or sub, so the store holds no identifiers
// in clear.
func indexes(s *session.Session) []string {
	idx := []string{indexName("sub", s.Issuer, s.Subject)}
	if s.SID != "" {
		idx = append(idx, indexName("sid", s.Issuer, s.SID))
	}
	return idx
}

func indexName(kind, iss, v string) string {
	sum := sha256.Sum256([]byte(iss + "\x00" + v))
	return kind + ":" + base64.RawURLEncoding.EncodeToString(sum[:18])
}

func (b *BFF) save(ctx context.Context, id session.ID, s *session.Session) error {
	sealed, err := session.Seal(id, s)
	if err != nil {
		return err
	}
	ttl := b.ttl(s)
	if ttl <= 0 {
		return nil
	}
	return b.store.Set(ctx, id.StoreKey(), sealed, ttl, indexes(s)...)
}

// expiry is when tok expires by the BFF's clock. The library computes
// Token.Expiry with time.Now, which Config.Now may differ from.
func (b *BFF) expiry(tok *oauth2.Token) time.Time {
	if tok.ExpiresIn > 0 {
		return b.now().Add(time.Duration(tok.ExpiresIn) * time.Second)
	}
	return tok.Expiry
}

func (b *BFF) needsRefresh(s *session.Session) bool {
	return !s.Expiry.IsZero() && !b.now().Add(b.skew).Before(s.Expiry)
}

// refreshed is the outcome of one refresh, shared by every request that
// waited for it.
type refreshed struct {
	s                 *session.Session
	status            int
	code, description string
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
func (b *BFF) refresh(ctx context.Context, req *Request, id session.ID) (*session.Session, Result, bool) {
	key := id.StoreKey()
	ch := b.refreshes.DoChan(key, func() (any, error) {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), b.refreshTimeout())
		defer cancel()
		return b.refreshOnce(rctx, id), nil
	})
	wait := time.NewTimer(time.Duration(b.cfg.HTTPTimeout) * time.Second)
	defer wait.Stop()
	var out refreshed
	select {
	case <-ctx.Done():
		return nil, b.fail(req, http.StatusGatewayTimeout, "timeout", "the request ended while the session was being refreshed"), false
	case <-wait.C:
		out = refreshed{status: http.StatusGatewayTimeout, code: "idp_timeout",
			description: "the identity provider is slow to refresh the session; the refresh goes on: try again"}
	case res := <-ch:
		out = res.Val.(refreshed)
	}
	if out.s == nil {
		if out.status == http.StatusUnauthorized {
			return nil, b.unauthorized(req, out.code, out.description), false
		}
		return nil, b.fail(req, out.status, out.code, out.description), false
	}
	return out.s, Result{}, true
}

// refreshTimeout bounds one refresh from the lock to the save: three times
// http_timeout, so the provider's call (http_timeout for the answer to
// start, the rest to finish) and the retried save fit in.
func (b *BFF) refreshTimeout() time.Duration {
	return 3 * time.Duration(b.cfg.HTTPTimeout) * time.Second
}

// lockPoll is how often a node looks again at a refresh lock another node
// holds; lockTTL is how long a lock outlives a node that died holding it
// (the store renews it while its holder lives).
const (
	lockPoll = 50 * time.Millisecond
	lockTTL  = 3 * time.Second
)

func (b *BFF) refreshOnce(ctx context.Context, id session.ID) refreshed {
	key := id.StoreKey()
	if b.locker != nil {
		release, err := b.lockRefresh(ctx, key)
		if err != nil {
			return storeDown()
		}
		defer release()
	}
	// Re-read: another node, or an earlier flight here, may have refreshed.
	raw, err := b.store.Get(ctx, key, 0)
	if errors.Is(err, session.ErrNotFound) {
		return refreshed{status: http.StatusUnauthorized, code: "session_expired", description: "the session has ended: log in again"}
	}
	if err != nil {
		return storeDown()
	}
	s, err := session.Open(id, raw)
	if err != nil {
		return refreshed{status: http.StatusUnauthorized, code: "invalid_session", description: "the session could not be read: log in again"}
	}
	if !b.needsRefresh(s) {
		return refreshed{s: s}
	}
	if s.RefreshToken == "" {
		_ = b.store.Delete(ctx, key)
		return refreshed{status: http.StatusUnauthorized, code: "session_expired", description: "the access token expired and there is no refresh token: log in again"}
	}
	p, err := b.prov.get(ctx)
	if err != nil {
		st, c, d := idpFailure(err)
		return refreshed{status: st, code: c, description: d}
	}
	// The refresh client lets a slow answer finish (refreshTimeout) where
	// http_timeout would drop it after the provider rotated the token.
	octx := context.WithValue(ctx, oauth2.HTTPClient, b.refreshClient)
	tok, err := p.oauth2.TokenSource(octx, &oauth2.Token{RefreshToken: s.RefreshToken, Expiry: time.Unix(1, 0)}).Token()
	if err != nil {
		var re *oauth2.RetrieveError
		if errors.As(err, &re) && re.ErrorCode == "invalid_grant" {
			_ = b.store.Delete(ctx, key)
			b.log.Info("bffgate: refresh token rejected; session ended", "sub", s.Subject)
			return refreshed{status: http.StatusUnauthorized, code: "session_expired", description: "the identity provider ended the session: log in again"}
		}
		b.logLimited(slog.LevelWarn, "bffgate: refresh failed; session kept", "error", err)
		st, c, d := idpFailure(err)
		return refreshed{status: st, code: c, description: d}
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
	if err := b.saveRetrying(ctx, id, &next); err != nil {
		// The provider rotated the refresh token; losing it loses the
		// session, so say so plainly.
		b.logLimited(slog.LevelError, "bffgate: saving a refreshed session failed; the session will end at its next refresh", "error", err)
		return storeDown()
	}
	return refreshed{s: &next}
}

// saveRetrying saves a refreshed session, trying again while the store
// fails and ctx allows: the provider has rotated the refresh token, and
// only the saved one works from now on.
func (b *BFF) saveRetrying(ctx context.Context, id session.ID, s *session.Session) error {
	backoff := 50 * time.Millisecond
	for {
		err := b.save(ctx, id, s)
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

func storeDown() refreshed {
	return refreshed{status: http.StatusServiceUnavailable, code: "session_store_unavailable",
		description: "the session store is unavailable; try again"}
}

// lockRefresh takes the cross-node refresh lock for key, waiting while
// another node holds it.
func (b *BFF) lockRefresh(ctx context.Context, key string) (func(), error) {
	t := time.NewTicker(lockPoll)
	defer t.Stop()
	for {
		release, ok, err := b.locker.TryLock(ctx, "lock:"+key, lockTTL)
		if err != nil {
			return nil, err
		}
		if ok {
			return release, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("waiting for the refresh lock: %w", ctx.Err())
		case <-t.C:
		}
	}
}
