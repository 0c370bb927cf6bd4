package bff

import (
	"context"
	"encoding/json"
	"net/http"
	"time"
)

// sessionInfo is the body of the session endpoint.
type sessionInfo struct {
	Authenticated bool            `json:"authenticated"`
	User          json.RawMessage `json:"user"`
	ExpiresAt     time.Time       `json:"expiresAt"` // the earlier of the two below
	// IdleExpiresAt is when the session idles out unless used again;
	// AbsoluteExpiresAt when it ends however it is used.
	IdleExpiresAt     time.Time `json:"idleExpiresAt"`
	AbsoluteExpiresAt time.Time `json:"absoluteExpiresAt"`
	Mode              string    `json:"mode"`
}

// session tells the app whether it is logged in and who the user is
// (GET). It never redirects: 401 JSON when there is no session.
func (b *Engine) session(ctx context.Context, req *Request) Result {
	if req.Method != http.MethodGet && req.Method != http.MethodHead {
		return b.methodNotAllowed(req, "GET")
	}
	if !b.originAllowed(req) {
		return b.answer(req, errOrigin)
	}
	_, s, err := b.load(ctx, req, true)
	if err != nil {
		r := b.answer(req, err)
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
	absolute, idle := s.Created.Add(b.max).UTC().Truncate(time.Second), b.now().Add(b.idle).UTC().Truncate(time.Second)
	expires := absolute
	if idle.Before(absolute) {
		expires = idle
	}
	return b.json(req, http.StatusOK, sessionInfo{
		Authenticated: true, User: userJSON, ExpiresAt: expires,
		IdleExpiresAt: idle, AbsoluteExpiresAt: absolute, Mode: b.cfg.Mode,
	})
}
