package bff

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
	"golang.org/x/sync/singleflight"
)

const grantTokenExchange = "urn:ietf:params:oauth:grant-type:token-exchange"

// provider is what discovery tells about the OpenID Provider, ready to use.
type provider struct {
	oauth2        oauth2.Config
	idTokens      *oidc.IDTokenVerifier // ID tokens: aud = client, nonce checked by the caller
	logoutTokens  *oidc.IDTokenVerifier // logout tokens: expiry checked by the caller
	endSession    string                // RP-initiated logout endpoint, "" if none
	issInResponse bool                  // RFC 9207 iss is always sent
	tokenExchange bool                  // RFC 8693 grant supported
	tokenURL      string
	parEndpoint   string // RFC 9126 pushed authorization requests, "" if none
	revocation    string // RFC 7009 token revocation, "" if none
	jwksURL       string
}

// providerCache discovers the provider once. Concurrent requests share
// one discovery; after a failure, requests within discoveryRetry get the
// same error at once instead of queueing behind calls that time out.
type providerCache struct {
	b      *Engine
	flight singleflight.Group

	mu      sync.Mutex // guards the fields below
	p       *provider
	lastErr error
	failed  time.Time
}

// discoveryRetry is how long a failed discovery is remembered.
const discoveryRetry = 2 * time.Second

// errIdP marks the provider being unreachable or answering garbage.
var errIdP = errors.New("identity provider unavailable")

// cached returns the discovered provider, or nil before discovery.
func (c *providerCache) cached() *provider {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.p
}

// get returns the discovered provider, discovering it on first use.
func (c *providerCache) get(ctx context.Context) (*provider, error) {
	c.mu.Lock()
	p, lastErr, failed := c.p, c.lastErr, c.failed
	c.mu.Unlock()
	if p != nil {
		return p, nil
	}
	if lastErr != nil && c.b.now().Sub(failed) < discoveryRetry {
		return nil, lastErr
	}
	ch := c.flight.DoChan("discover", func() (any, error) {
		p, err := c.b.discover(ctx)
		c.mu.Lock()
		defer c.mu.Unlock()
		if err != nil {
			c.lastErr, c.failed = err, c.b.now()
			return nil, err
		}
		c.p = p
		return p, nil
	})
	select {
	case <-ctx.Done():
		return nil, fmt.Errorf("%w: %v", errIdP, ctx.Err())
	case res := <-ch:
		if res.Err != nil {
			return nil, res.Err
		}
		return res.Val.(*provider), nil
	}
}

func (b *Engine) discover(ctx context.Context) (*provider, error) {
	// go-oidc keeps the context it discovers with for fetching keys later,
	// so it gets one that outlives this request; the client's timeout
	// bounds every call.
	octx := oidc.ClientContext(context.WithoutCancel(ctx), b.cfg.HTTPClient)
	op, err := oidc.NewProvider(octx, b.cfg.Issuer)
	if err != nil {
		b.logLimited(slog.LevelWarn, "bffgate: OpenID Provider discovery failed", "issuer", b.cfg.Issuer, "error", err)
		return nil, fmt.Errorf("%w: discovery: %v", errIdP, err)
	}
	var meta struct {
		EndSession    string   `json:"end_session_endpoint"`
		IssInResponse bool     `json:"authorization_response_iss_parameter_supported"`
		Grants        []string `json:"grant_types_supported"`
		Challenge     []string `json:"code_challenge_methods_supported"`
		PAR           string   `json:"pushed_authorization_request_endpoint"`
		Revocation    string   `json:"revocation_endpoint"`
		JWKS          string   `json:"jwks_uri"`
	}
	if err := op.Claims(&meta); err != nil {
		return nil, fmt.Errorf("%w: discovery document: %v", errIdP, err)
	}
	if err := b.checkProfile(op); err != nil {
		return nil, err
	}
	if len(meta.Challenge) > 0 && !slices.Contains(meta.Challenge, "S256") {
		b.logLimited(slog.LevelWarn, "bffgate: the provider does not list PKCE S256 in code_challenge_methods_supported; bffgate sends it anyway", "issuer", b.cfg.Issuer)
	}
	ep := op.Endpoint()
	ep.AuthStyle = oauth2.AuthStyleInHeader
	return &provider{
		oauth2: oauth2.Config{
			ClientID: b.cfg.ClientID, ClientSecret: b.cfg.ClientSecret,
			Endpoint: ep, RedirectURL: b.cfg.RedirectURL, Scopes: b.cfg.Scopes,
		},
		idTokens: op.Verifier(&oidc.Config{ClientID: b.cfg.ClientID, Now: b.now}),
		logoutTokens: op.Verifier(&oidc.Config{ClientID: b.cfg.ClientID, Now: b.now,
			SkipExpiryCheck: true}),
		endSession:    meta.EndSession,
		issInResponse: meta.IssInResponse,
		tokenExchange: slices.Contains(meta.Grants, grantTokenExchange),
		tokenURL:      ep.TokenURL,
		parEndpoint:   meta.PAR,
		revocation:    meta.Revocation,
		jwksURL:       meta.JWKS,
	}, nil
}

// octx returns the context for one call to the provider: the BFF's HTTP
// client, and the request's cancellation.
func (b *Engine) octx(ctx context.Context) context.Context {
	return context.WithValue(ctx, oauth2.HTTPClient, b.cfg.HTTPClient)
}

// idpFailure classifies an error from a call to the provider: the
// provider's own OAuth error (with its code), or the provider not being
// reachable.
func idpFailure(err error) *failure {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		if re.ErrorCode != "" {
			return fail(http.StatusBadGateway, CodeIdPError, "the identity provider answered "+safeCode(re.ErrorCode))
		}
		return fail(http.StatusBadGateway, CodeIdPError, fmt.Sprintf("the identity provider answered HTTP %d", re.Response.StatusCode))
	}
	var ne net.Error
	var ue *url.Error
	if errors.As(err, &ne) || errors.As(err, &ue) || errors.Is(err, errIdP) || errors.Is(err, context.DeadlineExceeded) {
		return fail(http.StatusBadGateway, CodeIdPUnavailable, "the identity provider could not be reached; try again")
	}
	return fail(http.StatusBadGateway, CodeIdPError, "the identity provider's answer could not be used")
}

// safeCode keeps an OAuth error code printable and short, since it came
// from the network and goes back into a response.
func safeCode(s string) string {
	if len(s) > 64 {
		s = s[:64]
	}
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-' || r == '.' {
			return r
		}
		return -1
	}, s)
}
