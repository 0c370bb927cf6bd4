package bff

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/bffgate/bffgate/core/session"
	"github.com/bffgate/bffgate/core/session/memstore"
)

// Request is what a gateway adapter reads from the client's request. The
// BFF does not modify it.
type Request struct {
	Method   string
	Host     string // the Host the client asked for, for the same-origin check
	Path     string // the request path as received (escaped), without the query
	RawQuery string
	Header   http.Header // the client's headers
	// Body is read only by the back-channel logout endpoint, at most 64
	// KiB. Adapters may pass a reader that fetches the body lazily; nil
	// means no body.
	Body io.Reader
}

// Result is the BFF's decision for one request: either answer the client
// (Status != 0) or forward the request upstream with edited headers.
type Result struct {
	// Status, Header and Body are the response to write when Status != 0.
	Status int
	Header http.Header
	Body   []byte

	// When Status == 0 the request goes upstream: first every header named
	// in Del is removed, then every header in Set replaces the one of the
	// same name. Set always holds Authorization.
	Set http.Header
	Del []string
}

// Forward reports whether the request goes on upstream.
func (r *Result) Forward() bool { return r.Status == 0 }

// BFF is the engine: build one with New per configuration and call Handle
// for every request. It is safe for concurrent use.
type BFF struct {
	cfg         Config
	keys        [][32]byte // login cookie keys; keys[0] seals
	store       session.Store
	locker      session.Locker // nil when the store has none
	closer      io.Closer      // the store New made, closed by Close; nil otherwise
	now         func() time.Time
	log         *slog.Logger
	routes      map[string]route
	loginPrefix string   // name prefix of login cookies
	identityDel []string // identity header names, canonical, to strip
	origins     map[string]bool
	loginParams map[string]bool
	idle, max   time.Duration
	skew        time.Duration

	prov      providerCache
	refreshes singleflight.Group
}

type route func(ctx context.Context, req *Request) Result

// New validates cfg, fills in its defaults, and returns the engine. It does
// not contact the provider: discovery happens on first use and is retried
// until it succeeds, so a gateway can start before its provider.
func New(cfg Config) (*BFF, error) {
	cfg = cfg.withDefaults()
	keys, err := cfg.validate()
	if err != nil {
		return nil, err
	}
	b := &BFF{
		cfg:         cfg,
		keys:        keys,
		store:       cfg.Store,
		now:         cfg.Now,
		log:         cfg.Logger,
		loginPrefix: cfg.CookieName + "-login-",
		origins:     map[string]bool{},
		loginParams: map[string]bool{},
		idle:        time.Duration(cfg.SessionIdleTimeout) * time.Second,
		max:         time.Duration(cfg.SessionMaxLifetime) * time.Second,
		skew:        time.Duration(cfg.RefreshSkew) * time.Second,
	}
	switch {
	case b.store != nil:
	case cfg.redisConfigured():
		st, err := cfg.newRedisStore()
		if err != nil {
			return nil, err
		}
		b.store, b.closer = st, st
	default:
		b.store = memstore.NewMax(cfg.Now, cfg.MemoryMaxSessions)
	}
	b.locker, _ = b.store.(session.Locker)
	for _, o := range cfg.AllowedOrigins {
		b.origins[o] = true
	}
	for _, p := range cfg.LoginParams {
		b.loginParams[p] = true
	}
	for _, h := range cfg.IdentityHeaders {
		b.identityDel = append(b.identityDel, http.CanonicalHeaderKey(h.Header))
	}
	p, pre := cfg.Paths, cfg.PathPrefix
	b.routes = map[string]route{
		pre + p.Login:             b.login,
		pre + p.Callback:          b.callback,
		pre + p.Session:           b.session,
		pre + p.Token:             b.token,
		pre + p.Logout:            b.logout,
		pre + p.LogoutCallback:    b.logoutCallback,
		pre + p.BackchannelLogout: b.backchannelLogout,
	}
	b.prov.b = b
	return b, nil
}

// Handle decides what to do with one request: answer it (BFF endpoints,
// errors) or forward it upstream with the session's access token. It never
// forwards a request it could not authenticate.
func (b *BFF) Handle(ctx context.Context, req *Request) Result {
	if len(req.Path) > maxPath || len(req.RawQuery) > maxQuery {
		return b.fail(req, http.StatusRequestURITooLong, "uri_too_long", "the request URI is too long")
	}
	if n := cookieBytes(req.Header); n > maxCookieBytes {
		return b.fail(req, http.StatusRequestHeaderFieldsTooLarge, "cookie_too_large", "the Cookie header is too large")
	}
	if isPreflight(req) {
		return b.preflight(req)
	}
	if r, ok := b.routes[req.Path]; ok {
		return r(ctx, req)
	}
	return b.api(ctx, req)
}

// Limits on what the BFF reads from a request.
const (
	maxPath        = 8 << 10
	maxQuery       = 8 << 10
	maxCookieBytes = 16 << 10
	maxBody        = 64 << 10
)

// apiError is the body of every error the BFF answers.
type apiError struct {
	Authenticated *bool  `json:"authenticated,omitempty"`
	Error         string `json:"error"`
	Description   string `json:"error_description,omitempty"`
}

// fail answers with a JSON error. code is machine readable; desc is for
// people and never holds a token or secret.
func (b *BFF) fail(req *Request, status int, code, desc string) Result {
	body := apiError{Error: code, Description: desc}
	if status == http.StatusUnauthorized {
		f := false
		body.Authenticated = &f
	}
	return b.json(req, status, body)
}

// json answers with v as JSON, uncacheable, with CORS headers for an
// allowed Origin.
func (b *BFF) json(req *Request, status int, v any) Result {
	body, err := json.Marshal(v)
	if err != nil { // only our own types are marshalled: a bug
		b.log.Error("bffgate: encoding a response", "error", err)
		status, body = http.StatusInternalServerError, []byte(`{"error":"internal_error"}`)
	}
	h := http.Header{
		"Content-Type":           {"application/json"},
		"Cache-Control":          {"no-store"},
		"X-Content-Type-Options": {"nosniff"},
	}
	b.cors(req, h)
	return Result{Status: status, Header: h, Body: body}
}

// redirect answers 302 to location.
func redirect(location string, cookies ...string) Result {
	h := http.Header{"Location": {location}, "Cache-Control": {"no-store"}}
	if len(cookies) > 0 {
		h["Set-Cookie"] = cookies
	}
	return Result{Status: http.StatusFound, Header: h}
}

// cors adds CORS headers for an allowed cross-origin caller.
func (b *BFF) cors(req *Request, h http.Header) {
	o := req.Header.Get("Origin")
	if o == "" || !b.origins[o] {
		return
	}
	h.Set("Access-Control-Allow-Origin", o)
	h.Set("Access-Control-Allow-Credentials", "true")
	h.Add("Vary", "Origin")
}

func isPreflight(req *Request) bool {
	return req.Method == http.MethodOptions && req.Header.Get("Origin") != "" &&
		req.Header.Get("Access-Control-Request-Method") != ""
}

// preflight answers a CORS preflight itself: allowed origins get the
// methods and headers they ask for; others a 403. Preflights carry no
// credentials, so they are never forwarded.
func (b *BFF) preflight(req *Request) Result {
	if !b.origins[req.Header.Get("Origin")] {
		return b.fail(req, http.StatusForbidden, "origin_not_allowed", "this origin is not in allowed_origins")
	}
	h := http.Header{"Cache-Control": {"no-store"}}
	b.cors(req, h)
	h.Set("Access-Control-Allow-Methods", "GET, HEAD, POST, PUT, PATCH, DELETE")
	if rh := req.Header.Get("Access-Control-Request-Headers"); rh != "" && len(rh) < 1024 {
		h.Set("Access-Control-Allow-Headers", rh)
	}
	h.Set("Access-Control-Max-Age", "600")
	return Result{Status: http.StatusNoContent, Header: h}
}

// originAllowed reports whether a request's Origin, when it has one, is
// this site or an allowed origin.
func (b *BFF) originAllowed(req *Request) bool {
	o, ok := req.Header["Origin"]
	if !ok || len(o) == 0 {
		return true
	}
	if len(o) > 1 {
		return false
	}
	if b.origins[o[0]] {
		return true
	}
	_, host, found := strings.Cut(o[0], "://")
	return found && host != "" && strings.EqualFold(host, req.Host)
}

// csrfOK reports whether the request carries the CSRF header, or needs
// none (relaxed mode, safe method).
func (b *BFF) csrfOK(req *Request, always bool) bool {
	if !always && b.cfg.CSRFUnsafeMethodsOnly {
		switch req.Method {
		case http.MethodGet, http.MethodHead, http.MethodOptions:
			return true
		}
	}
	v := req.Header[http.CanonicalHeaderKey(b.cfg.CSRFHeader)]
	return len(v) == 1 && v[0] == b.cfg.CSRFHeaderValue
}

// guard runs the Origin and CSRF checks that state-changing BFF endpoints
// and API requests share; ok is false with the answer when they fail.
func (b *BFF) guard(req *Request, alwaysCSRF bool) (Result, bool) {
	if !b.originAllowed(req) {
		return b.fail(req, http.StatusForbidden, "origin_not_allowed", "the request's Origin is not this site nor in allowed_origins"), false
	}
	if !b.csrfOK(req, alwaysCSRF) {
		return b.fail(req, http.StatusForbidden, "csrf_header_missing", "send the header "+b.cfg.CSRFHeader+": "+b.cfg.CSRFHeaderValue), false
	}
	return Result{}, true
}

func (b *BFF) methodNotAllowed(req *Request, allow string) Result {
	r := b.fail(req, http.StatusMethodNotAllowed, "method_not_allowed", "use "+allow)
	r.Header.Set("Allow", allow)
	return r
}

// Close releases what New opened (the Redis store's connections). A
// Store given in Config is the caller's to close.
func (b *BFF) Close() error {
	if b.closer == nil {
		return nil
	}
	return b.closer.Close()
}

// Owns reports whether path is one of the BFF's own endpoints, which Handle
// always answers itself.
func (b *BFF) Owns(path string) bool {
	_, ok := b.routes[path]
	return ok
}
