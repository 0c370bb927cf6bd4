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
// its API requests: bffgate serve's routes[], ext_authz's apps[].routes[],
// and as Config.Route a Tyk API's or a Kong route's. The zero Route asks
// nothing.
type Route struct {
	// Resource (RFC 8707), when set, forwards a token for this resource
	// only: one of Config.Resources, got with the refresh token and kept in
	// the session beside the others, never the session's own token or
	// another resource's.
	Resource string `json:"resource"`
	// DPoPURL, when set, forwards the DPoP-bound token (Config.DPoP) as
	// "Authorization: DPoP <token>" with a fresh DPoP proof (RFC 9449 §7).
	// It is the upstream's base URL, e.g. "https://api.internal/v1": the
	// proof's htu is it joined with the request's path (less StripPrefix),
	// as a reverse proxy to it joins them. Without it a DPoP-bound token
	// goes as Bearer, for upstreams that do not check the binding.
	DPoPURL string `json:"dpop_url"`
	// StripPrefix is the start of the request's path that the gateway
	// strips before it calls the upstream (Kong's strip_path, Tyk's
	// strip_listen_path): the proof's htu joins DPoPURL with the rest.
	// Only with DPoPURL. Defaults to "": the whole path.
	StripPrefix string `json:"strip_prefix"`
}

// routeKey carries a request's Route from HandleRoute to the API path.
type routeKey struct{}

// HandleRoute is Handle for a request to a route that asks for rt: its
// API requests are forwarded as rt says. The zero rt is Config.Route's.
// Requests to the BFF's own paths are handled as by Handle.
func (b *Engine) HandleRoute(ctx context.Context, req *Request, rt Route) Result {
	if rt == (Route{}) {
		return b.Handle(ctx, req)
	}
	return b.Handle(context.WithValue(ctx, routeKey{}, &rt), req)
}

// routeOf returns the route of a request: HandleRoute's, else
// Config.Route, or nil for none.
func (b *Engine) routeOf(ctx context.Context) *Route {
	if rt, _ := ctx.Value(routeKey{}).(*Route); rt != nil {
		return rt
	}
	if b.cfg.Route != (Route{}) {
		return &b.cfg.Route
	}
	return nil
}

// CheckRoute reports whether this engine can serve rt, for adapters to
// call when they start (or, for routes they learn per request, before
// HandleRoute): a resource must be one of Config.Resources, and a DPoP
// route needs Config.DPoP and an absolute http(s) URL. field names the
// route in the adapter's config; errors name its resource, dpop_url or
// strip_prefix below it.
func (b *Engine) CheckRoute(field string, rt Route) error {
	return b.cfg.checkRoute(field, rt)
}

// validateRoute checks Config.Route.
func (c *Config) validateRoute() error { return c.checkRoute("route", c.Route) }

func (c *Config) checkRoute(field string, rt Route) error {
	if rt.Resource != "" && !slices.Contains(c.Resources, rt.Resource) {
		return cfgErr(field+".resource", "%q is not one of resources %q: add it there, so login asks the provider for it", rt.Resource, c.Resources)
	}
	if rt.DPoPURL != "" {
		if !c.DPoP {
			return cfgErr(field+".dpop_url", "needs dpop on in the BFF's config: the session's tokens must be DPoP-bound (and dpop cannot go with mode %q)", ModeTokenMediating)
		}
		if u, err := url.Parse(rt.DPoPURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
			return cfgErr(field+".dpop_url", "the upstream URL %q is not an absolute http(s) URL without query", rt.DPoPURL)
		}
	}
	if rt.StripPrefix != "" {
		if rt.DPoPURL == "" {
			return cfgErr(field+".strip_prefix", "counts only for DPoP proofs: set dpop_url too, or drop it")
		}
		if !strings.HasPrefix(rt.StripPrefix, "/") {
			return cfgErr(field+".strip_prefix", "%q must start with /", rt.StripPrefix)
		}
	}
	return nil
}

// htu is the proof's target URI for a request to path on route rt: the
// upstream's URL as the gateway calls it.
func (rt *Route) htu(path string) string {
	if rest, ok := strings.CutPrefix(path, rt.StripPrefix); ok && rt.StripPrefix != "" {
		path = rest
		if !strings.HasPrefix(path, "/") {
			path = "/" + path
		}
	}
	return strings.TrimSuffix(rt.DPoPURL, "/") + path
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
	proof, err := dk.proof(req.Method, rt.htu(req.Path), at, "", b.now())
	if err != nil {
		return b.answer(req, err)
	}
	r.Set["Authorization"] = []string{"DPoP " + at}
	r.Set["Dpop"] = []string{proof}
	return r
}
