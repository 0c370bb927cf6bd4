package bff

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/bffgate/bffgate/core/session"
)

// Route is what one gateway route asks of the engine beyond Config, for
// its API requests (bffgate serve's routes). The zero Route asks nothing.
type Route struct {
	// Resource (RFC 8707), when set, forwards a token for this resource
	// only: one of Config.Resources, got with the refresh token and kept in
	// the session beside the others, never the session's own token or
	// another resource's.
	Resource string
	// DPoPURL, when set, forwards the DPoP-bound token (Config.DPoP) as
	// "Authorization: DPoP <token>" with a fresh DPoP proof (RFC 9449 §7).
	// It is the upstream's base URL, e.g. "https://api.internal/v1": the
	// proof's htu is it joined with the request's path, as a reverse proxy
	// to it joins them. Without it a DPoP-bound token goes as Bearer, for
	// upstreams that do not check the binding.
	DPoPURL string
}

// routeKey carries a request's Route from HandleRoute to the API path.
type routeKey struct{}

// HandleRoute is Handle for a request to a route that asks for rt: its
// API requests are forwarded as rt says. Requests to the BFF's own paths
// are handled as by Handle.
func (b *Engine) HandleRoute(ctx context.Context, req *Request, rt Route) Result {
	if rt == (Route{}) {
		return b.Handle(ctx, req)
	}
	return b.Handle(context.WithValue(ctx, routeKey{}, &rt), req)
}

func routeOf(ctx context.Context) *Route {
	rt, _ := ctx.Value(routeKey{}).(*Route)
	return rt
}

// CheckRoute reports whether this engine can serve rt, for adapters to
// call when they start: a resource must be one of Config.Resources, and
// a DPoP route needs Config.DPoP and an absolute http(s) URL. field names
// the route's field in the adapter's config for the error.
func (b *Engine) CheckRoute(field string, rt Route) error {
	if rt.Resource != "" && !slices.Contains(b.cfg.Resources, rt.Resource) {
		return cfgErr(field+".resource", "%q is not one of resources %q: add it there, so login asks the provider for it", rt.Resource, b.cfg.Resources)
	}
	if rt.DPoPURL != "" {
		if !b.cfg.DPoP {
			return cfgErr(field+".dpop", "needs dpop on in the BFF's config: the session's tokens must be DPoP-bound")
		}
		if u, err := url.Parse(rt.DPoPURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return cfgErr(field+".dpop", "the upstream URL %q is not an absolute http(s) URL", rt.DPoPURL)
		}
	}
	return nil
}

// forwardRoute forwards an authenticated API request as its route asks.
func (b *Engine) forwardRoute(ctx context.Context, req *Request, id session.ID, s *session.Session, rt *Route) Result {
	at, tt := s.AccessToken, s.TokenType
	if rt.Resource != "" {
		tok, err := b.resourceToken(ctx, id, s, rt.Resource)
		if err != nil {
			return b.answer(req, err)
		}
		at, tt = tok.AccessToken, tok.TokenType
	}
	r := b.forward(req, s)
	r.Set["Authorization"] = []string{bearer(&session.Session{TokenType: tt}) + at}
	if rt.DPoPURL == "" {
		return r
	}
	dk, err := parseDPoPKey(s.DPoPKey)
	if err != nil || dk == nil || !strings.EqualFold(tt, "DPoP") {
		return b.answer(req, fail(http.StatusUnauthorized, CodeInvalidSession, "the session has no DPoP-bound token: log in again"))
	}
	proof, err := dk.proof(req.Method, strings.TrimSuffix(rt.DPoPURL, "/")+req.Path, at, "", b.now())
	if err != nil {
		return b.answer(req, err)
	}
	r.Set["Authorization"] = []string{"DPoP " + at}
	r.Set["Dpop"] = []string{proof}
	return r
}
