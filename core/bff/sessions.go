package bff

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/bffgate/bffgate/core/session"
)

// The user's list of sessions ("my sessions"): GET <prefix>/sessions
// lists them, DELETE <prefix>/sessions/{id} ends one. Both need the
// session cookie and pass the Origin and CSRF checks of /logout. A
// session is named in the list by an opaque ID, a hash of its store key:
// neither the cookie nor the store key can be had from it, and only the
// caller's own sessions are looked up, so another user's ID is simply not
// found.

// sessionListing is one entry of the list.
type sessionListing struct {
	ID        string    `json:"id"`
	Current   bool      `json:"current"`
	Device    string    `json:"device"`
	CreatedAt time.Time `json:"createdAt"`
	LastSeen  time.Time `json:"lastSeenAt"`
	EndsAt    time.Time `json:"endsAt"`
}

// listID names a session in the list.
func listID(key string) string {
	sum := sha256.Sum256([]byte("bffgate session list id v1\x00" + key))
	return base64.RawURLEncoding.EncodeToString(sum[:16])
}

// sessionItem reports whether path is <prefix>/sessions/{id}, and the id.
func (b *Engine) sessionItem(path string) (string, bool) {
	id, ok := strings.CutPrefix(path, b.cfg.PathPrefix+b.cfg.Paths.Sessions+"/")
	return id, ok && id != "" && !strings.Contains(id, "/")
}

var errNoSuchSession = fail(http.StatusNotFound, CodeNotFound, "you have no session of this id")

// mySessions loads the caller's session and lists the user's sessions.
func (b *Engine) mySessions(ctx context.Context, req *Request) (session.ID, []session.Listing, error) {
	if err := b.guard(req, true); err != nil {
		return session.ID{}, nil, err
	}
	id, s, err := b.load(ctx, req, true)
	if err != nil {
		return id, nil, err
	}
	list, err := b.sessions.List(ctx, s.Issuer, s.Subject)
	if errors.Is(err, session.ErrNoList) {
		return id, nil, fail(http.StatusNotFound, CodeNotFound, "this session store cannot list sessions")
	}
	if err != nil {
		b.logLimited(slog.LevelError, "bffgate: listing sessions failed", "error", err)
		return id, nil, errStoreDown
	}
	return id, list, nil
}

// listSessions answers GET <prefix>/sessions: the user's sessions,
// newest first, the caller's marked current.
func (b *Engine) listSessions(ctx context.Context, req *Request) Result {
	if req.Method != http.MethodGet {
		return b.methodNotAllowed(req, "GET")
	}
	id, list, err := b.mySessions(ctx, req)
	if err != nil {
		return b.answer(req, err)
	}
	cur := id.StoreKey()
	out := make([]sessionListing, 0, len(list))
	for _, l := range list {
		out = append(out, sessionListing{
			ID: listID(l.Key), Current: l.Key == cur, Device: l.Device,
			CreatedAt: l.Created.UTC().Truncate(time.Second), LastSeen: l.LastSeen.UTC().Truncate(time.Second),
			EndsAt: l.Ends.UTC().Truncate(time.Second),
		})
	}
	return b.json(req, http.StatusOK, struct {
		Sessions []sessionListing `json:"sessions"`
	}{out})
}

// endSession answers DELETE <prefix>/sessions/{id}: it ends that session
// of the user's (204), the caller's own included (then its cookie is
// cleared too). An ID that is not one of the user's sessions is 404,
// whoever's it is.
func (b *Engine) endSession(ctx context.Context, req *Request, listed string) Result {
	if req.Method != http.MethodDelete {
		return b.methodNotAllowed(req, "DELETE")
	}
	id, list, err := b.mySessions(ctx, req)
	if err != nil {
		return b.answer(req, err)
	}
	for _, l := range list {
		if listID(l.Key) != listed {
			continue
		}
		if err := b.sessions.EndKeys(ctx, l.Key); err != nil {
			return b.answer(req, errStoreDown)
		}
		b.obs.Session("ended", "user", 1)
		r := Result{Status: http.StatusNoContent, Header: http.Header{"Cache-Control": {"no-store"}}}
		b.cors(req, r.Header)
		if l.Key == id.StoreKey() {
			r.Header.Add("Set-Cookie", b.clearSessionCookie())
		}
		return r
	}
	return b.answer(req, errNoSuchSession)
}

// capSessions ends the user's oldest sessions past session_max_per_user,
// after a login saved the session under newKey. It fails open: a store
// that cannot list leaves the sessions be (and says so in the log).
func (b *Engine) capSessions(ctx context.Context, s *session.Session, newKey string) {
	if b.cfg.SessionMaxPerUser <= 0 {
		return
	}
	list, err := b.sessions.List(ctx, s.Issuer, s.Subject)
	if err != nil {
		b.logLimited(slog.LevelWarn, "bffgate: session_max_per_user: listing the user's sessions failed", "error", err)
		return
	}
	var old []string
	kept := 1                // the new session
	for _, l := range list { // newest first
		if l.Key == newKey {
			continue
		}
		if kept < b.cfg.SessionMaxPerUser {
			kept++
			continue
		}
		old = append(old, l.Key)
	}
	if len(old) == 0 {
		return
	}
	if err := b.sessions.EndKeys(ctx, old...); err != nil {
		b.logLimited(slog.LevelWarn, "bffgate: session_max_per_user: ending the oldest sessions failed", "error", err)
		return
	}
	b.obs.Session("ended", "limit", len(old))
}

// tagStream names the session of a forwarded WebSocket or EventSource
// request on its Result (Result.Session).
func (b *Engine) tagStream(req *Request, s *session.Session, r *Result) {
	v, _ := cookieValue(req.Header, b.cfg.CookieName)
	id, err := session.ParseID(v)
	if err != nil {
		return
	}
	r.Session, r.SessionEnds = id.StoreKey(), s.Created.Add(b.max)
}

// SessionAlive reports whether the session a Result named (Result.Session)
// is still in the store, without counting as a use of it: an adapter
// holding a connection open asks now and then, to close it when the
// session idled out or was ended elsewhere (another node, `bffgate
// sessions revoke`). An error means the store could not answer.
func (b *Engine) SessionAlive(ctx context.Context, key string) (bool, error) {
	return b.sessions.Alive(ctx, key)
}

// deviceLabel is a coarse label of a browser from its User-Agent, for the
// user's list of sessions: the browser's family and the platform, never
// versions or the raw header.
func deviceLabel(ua string) string {
	has := func(s string) bool { return strings.Contains(ua, s) }
	browser := "Browser"
	switch {
	case has("Edg/") || has("Edge/"):
		browser = "Edge"
	case has("OPR/") || has("Opera"):
		browser = "Opera"
	case has("Firefox/") || has("FxiOS/"):
		browser = "Firefox"
	case has("Chrome/") || has("CriOS/") || has("Chromium/"):
		browser = "Chrome"
	case has("Safari/"):
		browser = "Safari"
	}
	os := ""
	switch {
	case has("iPhone") || has("iPad") || has("iPod"):
		os = "iOS"
	case has("Android"):
		os = "Android"
	case has("Windows"):
		os = "Windows"
	case has("Mac OS X") || has("Macintosh"):
		os = "macOS"
	case has("CrOS"):
		os = "ChromeOS"
	case has("Linux"):
		os = "Linux"
	}
	if os == "" {
		return browser
	}
	return browser + " on " + os
}
