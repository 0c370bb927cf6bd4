package bff

import (
	"context"
	"net/http"
	"strconv"
	"strings"

	"github.com/bffgate/bffgate/core/session"
)

// api authenticates an API request and forwards it with the session's
// access token, or answers why not. It takes no lock unless the token must
// be refreshed.
func (b *Engine) api(ctx context.Context, req *Request) Result {
	if err := b.guard(req, false); err != nil {
		return b.answer(req, err)
	}
	id, s, err := b.freshID(ctx, req)
	if err != nil {
		return b.answer(req, err)
	}
	if r, refused := b.enforce(req, s); refused {
		return r
	}
	var r Result
	if rt := b.routeOf(ctx); rt != nil {
		if r = b.forwardRoute(ctx, req, id, s, rt); !r.Forward() {
			return r
		}
	} else {
		r = b.forward(req, s)
	}
	if isStream(req) {
		b.tagStream(req, s, &r)
	}
	return r
}

// forward builds the upstream header edits for an authenticated request:
// those of every forwarded request, and the bearer and identity headers.
func (b *Engine) forward(req *Request, s *session.Session) Result {
	r := b.upstreamEdits(req, make(http.Header, 2+len(b.cfg.IdentityHeaders)))
	r.Set["Authorization"] = []string{bearer(s) + s.AccessToken}
	for i, h := range b.cfg.IdentityHeaders {
		if v, ok := identityClaim(s.Identity, h.Claim); ok {
			r.Set[b.identityDel[i]] = []string{v}
		}
	}
	return r
}

// upstreamEdits are the edits every forwarded request gets, public or
// not: the BFF's cookies, client-sent identity headers and their
// look-alikes removed, Connection kept to the options proxies act on,
// and CORS headers for the answer of an allowed cross-origin caller. set
// is the Result's Set (nil for none yet).
func (b *Engine) upstreamEdits(req *Request, set http.Header) Result {
	r := Result{Set: set, Del: b.headerDel(req.Header)}
	if v, changed := b.upstreamCookie(req.Header); changed {
		r.setOrDel("Cookie", v)
	}
	if v, changed := connectionTokens(req.Header); changed {
		r.setOrDel("Connection", v)
	}
	r.ResponseHeader = b.corsHeader(req)
	return r
}

// bearer returns the Authorization scheme with its trailing space. Token
// types are case-insensitive (RFC 6749 §5.1); upstreams expect "Bearer".
func bearer(s *session.Session) string {
	// A DPoP-bound token goes as Bearer unless its route adds the proof
	// (forwardRoute): for upstreams that do not check the binding.
	if s.TokenType == "" || strings.EqualFold(s.TokenType, "bearer") || strings.EqualFold(s.TokenType, "dpop") {
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
