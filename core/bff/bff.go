package bff

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
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
	// Policy, when not nil, is the policy of the route the adapter matched,
	// checked on top of Config.Policy (see Policy).
	Policy *Policy
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
	// same name. Adapters apply them last, after their own header handling
	// (hop-by-hop removal, X-Forwarded-*), on exactly the request they
	// send. Set holds Authorization unless the path is public.
	Set http.Header
	Del []string
	// Session and SessionEnds, on a forwarded WebSocket handshake or
	// EventSource request, name its session (by the key that
	// Config.SessionEnded reports; not the cookie, nor usable as one) and
	// say when it ends at the latest: an adapter that holds the connection
	// open closes it then, or when the session ends sooner. Empty on
	// other results.
	Session     string
	SessionEnds time.Time
	// ResponseHeader, when not nil, holds headers to set on the upstream's
	// response before it reaches the client: the CORS headers for an
	// allowed cross-origin caller, so the SPA can read the API's answer.
	// They replace the upstream's headers of the same names.
	ResponseHeader http.Header

	code Code // the error code of an error answer, for the Observer
}

// Forward reports whether the request goes on upstream.
func (r *Result) Forward() bool { return r.Status == 0 }

// ErrorCode is the error code of an error answer, "" for a forward or an
// answer that is not an error: for adapters' access logs.
func (r *Result) ErrorCode() Code { return r.code }

// Engine is the BFF: build one with New per configuration and call Handle
// for every request. It is safe for concurrent use.
type Engine struct {
	cfg         Config
	keys        [][32]byte // login cookie keys; keys[0] seals
	store       session.Store
	sessions    *session.Manager
	closer      io.Closer // the store New made, closed by Close; nil otherwise
	now         func() time.Time
	log         *slog.Logger
	routes      map[string]route
	loginPrefix string   // name prefix of login cookies
	identityDel []string // identity header names, canonical, to strip
	csrfKey     string   // the CSRF header's canonical name, as req.Header keys it
	origins     map[string]bool
	siteScheme  string // the scheme of redirect_url: same-origin requests use it
	methods     map[string]bool
	public      []string // public_paths
	loginParams map[string]bool
	idle, max   time.Duration
	skew        time.Duration

	prov          providerCache
	refreshes     singleflight.Group
	refreshClient *http.Client // cfg.HTTPClient with refreshTimeout
	obs           Observer
	observed      bool              // cfg.Observer was set
	kinds         map[string]string // route path -> kind, for the Observer
	logs          logLimiter
	dbsc          *dbscState // nil when DBSC is off

	auth  *clientAuth            // how the client authenticates at the provider
	nonce atomic.Pointer[string] // the provider's last DPoP-Nonce
}

type route func(ctx context.Context, req *Request) Result

// New validates cfg, fills in its defaults, and returns the engine. It does
// not contact the provider: discovery happens on first use and is retried
// until it succeeds, so a gateway can start before its provider.
func New(cfg Config) (*Engine, error) {
	cfg = cfg.withDefaults()
	keys, err := cfg.validate()
	if err != nil {
		return nil, err
	}
	auth, err := cfg.newClientAuth()
	if err != nil {
		return nil, err
	}
	if auth.cert != nil {
		if cfg.HTTPClient, err = withClientCertificate(cfg.HTTPClient, auth.cert); err != nil {
			return nil, err
		}
	}
	b := &Engine{
		cfg:         cfg,
		keys:        keys,
		store:       cfg.Store,
		now:         cfg.Now,
		log:         cfg.Logger,
		loginPrefix: cfg.CookieName + "-login-",
		origins:     map[string]bool{},
		loginParams: map[string]bool{},
		methods:     map[string]bool{},
		idle:        time.Duration(cfg.SessionIdleTimeout) * time.Second,
		max:         time.Duration(cfg.SessionMaxLifetime) * time.Second,
		skew:        time.Duration(cfg.RefreshSkew) * time.Second,
		auth:        auth,
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
	b.obs, b.observed = cfg.Observer, cfg.Observer != nil
	if !b.observed {
		b.obs = noObserver{}
	} else {
		b.store = observeStore(b.store, b.obs)
		c := *b.cfg.HTTPClient
		if c.Transport == nil {
			c.Transport = http.DefaultTransport
		}
		c.Transport = &observedTransport{next: c.Transport, obs: b.obs, b: b}
		b.cfg.HTTPClient = &c
	}
	if _, ok := cfg.Store.(session.Lister); cfg.Store != nil && !ok && cfg.SessionMaxPerUser > 0 {
		return nil, cfgErr("session_max_per_user", "needs a store that can list a user's sessions (a session.Lister): the given Store is not one; set 0")
	}
	b.sessions = &session.Manager{Store: b.store, Idle: b.idle, Max: b.max, Now: cfg.Now, Ended: cfg.SessionEnded}
	rc := *b.cfg.HTTPClient
	if rc.Timeout != 0 {
		rc.Timeout = b.refreshTimeout()
	}
	b.refreshClient = &rc
	for _, o := range cfg.AllowedOrigins {
		b.origins[o] = true
	}
	for _, m := range cfg.AllowedMethods {
		b.methods[m] = true
	}
	b.siteScheme, _, _ = strings.Cut(cfg.RedirectURL, "://")
	b.siteScheme = strings.ToLower(b.siteScheme)
	b.public = cfg.PublicPaths
	for _, p := range cfg.LoginParams {
		b.loginParams[p] = true
	}
	for _, h := range cfg.IdentityHeaders {
		b.identityDel = append(b.identityDel, http.CanonicalHeaderKey(h.Header))
	}
	b.csrfKey = http.CanonicalHeaderKey(cfg.CSRFHeader)
	p, pre := cfg.Paths, cfg.PathPrefix
	b.routes = map[string]route{
		pre + p.Login:             b.login,
		pre + p.Callback:          b.callback,
		pre + p.Session:           b.session,
		pre + p.Token:             b.token,
		pre + p.Logout:            b.logout,
		pre + p.LogoutCallback:    b.logoutCallback,
		pre + p.BackchannelLogout: b.backchannelLogout,
		pre + p.Sessions:          b.listSessions,
	}
	b.kinds = map[string]string{
		pre + p.Login: "login", pre + p.Callback: "callback", pre + p.Session: "session", pre + p.Token: "token",
		pre + p.Logout: "logout", pre + p.LogoutCallback: "logout_callback", pre + p.BackchannelLogout: "backchannel_logout",
		pre + p.Sessions: "sessions",
	}
	b.initDBSC()
	b.prov.b = b
	return b, nil
}

// Handle decides what to do with one request: answer it (BFF endpoints,
// errors) or forward it upstream with the session's access token. It never
// forwards a request it could not authenticate.
func (b *Engine) Handle(ctx context.Context, req *Request) Result {
	if !b.observed {
		return b.handle(ctx, req)
	}
	start := time.Now()
	r := b.handle(ctx, req)
	b.obs.Request(b.requestKind(req), r.Status, r.code, time.Since(start))
	return r
}

// isPublic reports whether path is below one of public_paths.
func (b *Engine) isPublic(path string) bool {
	for _, p := range b.public {
		if strings.HasPrefix(path, p) {
			return true
		}
	}
	return false
}

// requestKind names a request for Observer.Request.
func (b *Engine) requestKind(req *Request) string {
	switch {
	case isPreflight(req):
		return "preflight"
	case b.kinds[req.Path] != "":
		return b.kinds[req.Path]
	case b.Owns(req.Path):
		return "sessions"
	case b.isPublic(req.Path):
		return "public"
	}
	return "api"
}

func (b *Engine) handle(ctx context.Context, req *Request) Result {
	if len(req.Path) > maxPath || len(req.RawQuery) > maxQuery {
		return b.answer(req, fail(http.StatusRequestURITooLong, CodeURITooLong, "the request URI is too long"))
	}
	if n := cookieBytes(req.Header); n > maxCookieBytes {
		r := b.answer(req, fail(http.StatusRequestHeaderFieldsTooLarge, CodeCookieTooLarge, "the Cookie header is too large"))
		// Let the browser recover: its own login cookies are the ones the
		// BFF can take back (a returnTo-sized cookie bomb, abandoned logins).
		r.Header["Set-Cookie"] = b.expireLogins(req.Header)
		return r
	}
	if !SafePath(req.Path) {
		return b.answer(req, fail(http.StatusBadRequest, CodeInvalidPath, "the path has dot segments, encoded slashes or control characters"))
	}
	if isPreflight(req) {
		return b.preflight(req)
	}
	if r, ok := b.routes[req.Path]; ok {
		return r(ctx, req)
	}
	if id, ok := b.sessionItem(req.Path); ok {
		return b.endSession(ctx, req, id)
	}
	if !b.methods[req.Method] {
		return b.methodNotAllowed(req, strings.Join(b.cfg.AllowedMethods, ", "))
	}
	if b.isPublic(req.Path) {
		return b.upstreamEdits(req, nil)
	}
	return b.api(ctx, req)
}

// HandlePublic decides on a request to a public route, one that goes
// upstream without a session (a static site, an API that takes bearer
// tokens itself): it refuses unsafe paths and methods, and forwards the
// request with the BFF's cookies and every identity header (and its
// look-alikes) removed, so a client cannot forge them there either.
// Requests to the BFF's own paths are handled as by Handle.
func (b *Engine) HandlePublic(ctx context.Context, req *Request) Result {
	if !SafePath(req.Path) || b.Owns(req.Path) {
		return b.Handle(ctx, req)
	}
	start := time.Now()
	var r Result
	if !b.methods[req.Method] {
		r = b.methodNotAllowed(req, strings.Join(b.cfg.AllowedMethods, ", "))
	} else {
		r = b.upstreamEdits(req, nil)
	}
	if b.observed {
		b.obs.Request("public", r.Status, r.code, time.Since(start))
	}
	return r
}

// setOrDel adds an upstream edit: set name to v, or remove it when v is "".
func (r *Result) setOrDel(name, v string) {
	if v != "" {
		if r.Set == nil {
			r.Set = make(http.Header, 1)
		}
		r.Set[name] = []string{v}
		return
	}
	r.Del = append(r.Del[:len(r.Del):len(r.Del)], name)
}

// Limits on what the BFF reads from a request.
const (
	maxPath        = 8 << 10
	maxQuery       = 8 << 10
	maxCookieBytes = 16 << 10
	maxBody        = 64 << 10
)

// json answers with v as JSON, uncacheable, with CORS headers for an
// allowed Origin.
func (b *Engine) json(req *Request, status int, v any) Result {
	r := jsonResult(status, v)
	b.cors(req, r.Header)
	return r
}

// redirect answers 302 to location.
func redirect(location string, cookies ...string) Result {
	h := http.Header{"Location": {location}, "Cache-Control": {"no-store"}}
	if len(cookies) > 0 {
		h["Set-Cookie"] = cookies
	}
	return Result{Status: http.StatusFound, Header: h}
}

func (b *Engine) methodNotAllowed(req *Request, allow string) Result {
	r := b.answer(req, fail(http.StatusMethodNotAllowed, CodeMethodNotAllowed, "use "+allow))
	r.Header.Set("Allow", allow)
	return r
}

// Close releases what New opened (the Redis store's connections). A
// Store given in Config is the caller's to close.
func (b *Engine) Close() error {
	if b.closer == nil {
		return nil
	}
	return b.closer.Close()
}

// Owns reports whether path is one of the BFF's own endpoints, which Handle
// always answers itself.
func (b *Engine) Owns(path string) bool {
	_, ok := b.routes[path]
	if !ok {
		_, ok = b.sessionItem(path)
	}
	return ok
}

// Ready reports whether the engine can serve logins and sessions: the
// session store answers and the provider's discovery has succeeded (it is
// tried now if it has not). For readiness probes.
func (b *Engine) Ready(ctx context.Context) error {
	if _, err := b.store.Get(ctx, "bffgate-readiness-probe", 0); err != nil && !errors.Is(err, session.ErrNotFound) {
		return fmt.Errorf("session store: %w", err)
	}
	if _, err := b.prov.get(ctx); err != nil {
		return fmt.Errorf("provider: %w", err)
	}
	return nil
}
