package bff

import (
	"context"

	"github.com/bffgate/bffgate/core/session"
)

// resourceToken returns the session's token for resource (RFC 8707),
// getting one first when it has none or it is about to expire.
func (b *Engine) resourceToken(ctx context.Context, id session.ID, s *session.Session, resource string) (session.ResourceToken, error) {
	return session.ResourceToken{}, errNoResources
}

var errNoResources = fail(501, CodeInternal, "resource routes are not implemented yet")
