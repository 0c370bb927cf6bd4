package bff

import (
	"context"
	"net/http"
	"net/url"
	"strings"

	"github.com/bffgate/bffgate/core/session"
)

// withResources adds the configured resources (RFC 8707 §2.1) to an
// authorization request URL, so the grant covers every API whose route
// names one.
func (b *Engine) withResources(authURL string) string {
	if len(b.cfg.Resources) == 0 {
		return authURL
	}
	var q strings.Builder
	for _, r := range b.cfg.Resources {
		q.WriteString("&resource=")
		q.WriteString(url.QueryEscape(r))
	}
	return authURL + q.String()
}

// resourceFresh reports whether s holds a token for resource that does
// not expire within refresh_skew.
func (b *Engine) resourceFresh(s *session.Session, resource string) bool {
	t, ok := s.Resource(resource)
	return ok && (t.Expiry.IsZero() || b.now().Add(b.skew).Before(t.Expiry))
}

// resourceToken returns the session's token for resource (RFC 8707),
// first getting one with the refresh token when it has none or it is
// about to expire, under the session's one refresh at a time. Tokens for
// one resource never go to another: each is kept and found by its
// resource.
func (b *Engine) resourceToken(ctx context.Context, id session.ID, s *session.Session, resource string) (session.ResourceToken, error) {
	for range 2 { // a flight joined may have been another request's
		if b.resourceFresh(s, resource) {
			t, _ := s.Resource(resource)
			return t, nil
		}
		next, err := b.refreshFor(ctx, id, resource)
		if err != nil {
			return session.ResourceToken{}, err
		}
		s = next
	}
	if b.resourceFresh(s, resource) {
		t, _ := s.Resource(resource)
		return t, nil
	}
	return session.ResourceToken{}, fail(http.StatusBadGateway, CodeIdPError, "the identity provider gave no lasting token for the route's resource")
}
