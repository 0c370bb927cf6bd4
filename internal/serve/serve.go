// Package serve is `bffgate serve`: the BFF as a standalone reverse proxy
// in front of one or more upstream routes, optionally serving the SPA's
// static files from the same origin.
package serve

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/bffgate/bffgate/core/bff"
	"github.com/bffgate/bffgate/core/session/memstore"
	"github.com/bffgate/bffgate/core/session/redisstore"
	"github.com/bffgate/bffgate/internal/configfile"
	"github.com/bffgate/bffgate/internal/metrics"
)

// Config is the file `bffgate serve -config FILE` reads.
type Config struct {
	// Listen is the address to listen on. Defaults to "127.0.0.1:8080".
	Listen string `json:"listen"`
	// BFF is the engine's configuration (see the config reference).
	BFF bff.Config `json:"bff"`
	// Routes send requests by longest path prefix to upstreams.
	Routes []Route `json:"routes"`
	// StaticDir, when set, serves the SPA's files for GET and HEAD requests
	// that match no route, with index.html for unknown paths (client-side
	// routing). A relative path is relative to the config file.
	StaticDir string `json:"static_dir"`
	// Limits bound connections, timeouts and request bodies (server.go).
	Limits Limits `json:"limits"`
	// AccessLog is "on" (one line per request, see accessLog) or "off".
	// Defaults to "on".
	AccessLog string `json:"access_log"`
	// AdminListen, when set, is the address of the admin listener, apart
	// from the app's routes: /healthz, /readyz and /metrics (Prometheus),
	// e.g. "127.0.0.1:9090". Defaults to none.
	AdminListen string `json:"admin_listen"`
	// TLS, when set, makes the listener serve HTTPS with this certificate,
	// reloaded when its files change. Defaults to plain HTTP.
	TLS *TLS `json:"tls"`
	// TrustedProxies are the peers (CIDR prefixes or addresses, e.g.
	// "10.0.0.0/8") whose X-Forwarded-For and X-Forwarded-Proto are
	// believed: for the access log's client address and what goes
	// upstream. From any other peer they are ignored. Defaults to none.
	TrustedProxies []string `json:"trusted_proxies"`
	// Tracing, when set, sends OpenTelemetry traces (tracing.go).
	// Defaults to off.
	Tracing *Tracing `json:"tracing"`
}

// Route is one upstream behind the proxy.
type Route struct {
	// Path is a path prefix, e.g. "/api/".
	Path string `json:"path"`
	// Upstream is the base URL requests go to, e.g. "http://127.0.0.1:9000".
	Upstream string `json:"upstream"`
	// Public routes skip the BFF: requests go upstream as they came, less
	// the session cookie (for APIs that take bearer tokens themselves, as
	// in token-mediating mode). Defaults to false: the BFF authenticates.
	Public bool `json:"public"`
	// MaxBodyBytes caps this route's request bodies (413 body_too_large).
	// Defaults to Limits.MaxBodyBytes. -1: no cap.
	MaxBodyBytes int64 `json:"max_body_bytes"`
	// Policy is what this route needs of the session (claims, scopes,
	// acr, a recent login), checked by the engine on top of bff.policy.
	// Defaults to none. Not for public routes.
	Policy *bff.Policy `json:"policy"`
	// Resource (RFC 8707) sends this route a token for this resource only,
	// one of bff.resources. Defaults to "": the session's own token.
	Resource string `json:"resource"`
	// DPoP forwards the session's DPoP-bound token (bff.dpop) with a DPoP
	// proof for the upstream's URL of each request. Defaults to false.
	DPoP bool `json:"dpop"`
}

// Load reads a config file strictly: unknown fields are errors, so a typo
// does not silently fall back to a default.
func Load(file string) (*Config, error) {
	var c Config
	if err := configfile.Load(file, &c); err != nil {
		return nil, err
	}
	rel := func(p *string) {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(filepath.Dir(file), *p)
		}
	}
	rel(&c.StaticDir)
	if c.TLS != nil {
		rel(&c.TLS.CertFile)
		rel(&c.TLS.KeyFile)
	}
	return &c, nil
}

// New builds the proxy's handler.
func New(c *Config) (*Proxy, error) { return build(c, nil) }

// Reload builds the proxy for c to replace p, as on SIGHUP: it keeps p's
// in-process session store (so no session is lost; with Redis the
// sessions are in Redis anyway) and p's metrics, and builds the rest
// anew: the engine, the routes, the static files, the access log. p
// itself is unchanged and keeps serving until it is replaced (see
// ServeReload). Fields read only when the process starts are listed by
// RestartOnly.
func (p *Proxy) Reload(c *Config) (*Proxy, error) { return build(c, p) }

func build(c *Config, prev *Proxy) (*Proxy, error) {
	var m *metrics.Metrics
	switch {
	case prev != nil:
		m = prev.metrics
	case c.AdminListen != "":
		m = metrics.New()
	}
	bc := c.BFF
	if m != nil {
		bc.Observer = m
	}
	// Tracing starts with the process: a reload keeps it.
	var tr *tracer
	switch {
	case prev != nil:
		tr = prev.tracer
	case c.Tracing != nil:
		var err error
		if tr, err = newTracer(c.Tracing); err != nil {
			return nil, err
		}
	}
	// serve makes the in-process store itself, so that a reload can hand
	// it to the next engine.
	var mem *memstore.Store
	var own io.Closer // a store serve made for this engine alone
	redis := bc.Redis.URL != "" || len(bc.Redis.Addrs) > 0
	if bc.Store == nil && !redis {
		if prev != nil && prev.mem != nil {
			mem = prev.mem
		} else {
			mem = memstore.NewMax(bc.Now, bc.WithDefaults().MemoryMaxSessions)
		}
		bc.Store = mem
	}
	if tr != nil {
		if bc.Store == nil { // Redis: made here to trace its calls
			st, err := redisstore.New(bc.Redis)
			var ce *redisstore.ConfigError
			if errors.As(err, &ce) {
				return nil, fmt.Errorf("bffgate: config: redis.%s: %s", ce.Field, ce.Msg)
			} else if err != nil {
				return nil, err
			}
			bc.Store, own = st, st
		}
		bc.Store = tr.store(bc.Store)
		if bc.HTTPClient == nil {
			bc.HTTPClient = &http.Client{Timeout: time.Duration(bc.WithDefaults().HTTPTimeout) * time.Second,
				Transport: tr.transport(http.DefaultTransport, "provider")}
		}
	}
	// Open WebSocket and SSE connections by session, closed when their
	// session ends; a reload keeps them, as it keeps the sessions.
	st := newStreams(bc.Now)
	if prev != nil && prev.streams != nil {
		st = prev.streams
	}
	next := bc.SessionEnded
	bc.SessionEnded = func(keys []string) {
		st.end(keys)
		if next != nil {
			next(keys)
		}
	}
	b, err := bff.New(bc)
	if err != nil {
		if own != nil {
			own.Close()
		}
		return nil, err
	}
	p, err := newProxy(c, b, m, tr, st)
	if err != nil {
		b.Close()
		if own != nil {
			own.Close()
		}
		return nil, err
	}
	p.tracer, p.ownStore = tr, own
	p.metrics, p.mem = m, mem
	p.log = c.BFF.WithDefaults().Logger
	if c.TLS != nil {
		if prev != nil && prev.certs != nil && *prev.tls == *c.TLS {
			p.certs = prev.certs
		} else if p.certs, err = newCertFile(c.TLS, p.log); err != nil {
			p.Close()
			return nil, err
		}
		t := *c.TLS
		p.tls = &t
	}
	return p, nil
}

// Proxy is a built bffgate serve: the app's handler, the engine, and the
// admin listener's handler (nil without admin_listen).
type Proxy struct {
	Handler http.Handler
	Engine  *bff.Engine
	Admin   http.Handler

	metrics   *metrics.Metrics
	mem       *memstore.Store // the in-process store, nil with Redis or a given Store
	transport *http.Transport // to the upstreams
	log       *slog.Logger
	tls       *TLS      // the config's tls, nil without
	certs     *certFile // its certificate
	tracer    *tracer   // nil without tracing
	ownStore  io.Closer // the Redis store serve made for tracing, nil otherwise
	streams   *streams  // open WebSocket and SSE connections, by session
}

// Close releases what p holds of its own: the engine's Redis connections
// and the idle upstream connections. The in-process store, which a
// reloaded Proxy shares, stays.
func (p *Proxy) Close() error {
	if p.transport != nil {
		p.transport.CloseIdleConnections()
	}
	if p.ownStore != nil {
		p.ownStore.Close()
	}
	return p.Engine.Close()
}

func newProxy(c *Config, b *bff.Engine, m *metrics.Metrics, tr *tracer, st *streams) (*Proxy, error) {
	if len(c.Routes) == 0 && c.StaticDir == "" {
		return nil, errors.New("bffgate serve: config: routes: add at least one route, e.g. {\"path\": \"/\", \"upstream\": \"http://127.0.0.1:9000\"}")
	}
	trust, err := parseTrusted(c.TrustedProxies)
	if err != nil {
		return nil, err
	}
	h := &handler{bff: b}
	transport := NewTransport(c.Limits)
	var upstream http.RoundTripper = transport
	if tr != nil {
		upstream = tr.transport(transport, "upstream")
	}
	for i, r := range c.Routes {
		u, err := url.Parse(r.Upstream)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("bffgate serve: config: routes[%d].upstream: %q is not an http(s) URL", i, r.Upstream)
		}
		if !strings.HasPrefix(r.Path, "/") {
			return nil, fmt.Errorf("bffgate serve: config: routes[%d].path: %q must start with /", i, r.Path)
		}
		field := fmt.Sprintf("routes[%d].policy", i)
		if err := r.Policy.Validate(field); err != nil {
			return nil, fmt.Errorf("bffgate serve: %w", err)
		}
		if r.Public && !r.Policy.IsZero() {
			return nil, fmt.Errorf("bffgate serve: config: %s: a public route has no session to check: drop the policy or \"public\"", field)
		}
		routePath := r.Path
		rt := bff.Route{Resource: r.Resource}
		if r.DPoP {
			rt.DPoPURL = u.Scheme + "://" + u.Host + u.EscapedPath()
		}
		if err := b.CheckRoute(fmt.Sprintf("routes[%d]", i), rt); err != nil {
			// serve's routes say "dpop": true; the URL is their upstream's.
			if ce := (*bff.ConfigError)(nil); errors.As(err, &ce) && strings.HasSuffix(ce.Field, ".dpop_url") {
				ce.Field = strings.TrimSuffix(ce.Field, "_url")
			}
			return nil, fmt.Errorf("bffgate serve: %w", err)
		}
		if r.Public && rt != (bff.Route{}) {
			return nil, fmt.Errorf("bffgate serve: config: routes[%d].public: a public route sends no token, so it cannot have resource or dpop", i)
		}
		proxy := &httputil.ReverseProxy{
			Rewrite: func(pr *httputil.ProxyRequest) {
				pr.SetURL(u)
				// A trusted proxy's X-Forwarded-For goes on, with its
				// address added; anyone else's is dropped.
				cl := clientOf(pr.In)
				if cl.trusted {
					if xff := pr.In.Header["X-Forwarded-For"]; len(xff) > 0 {
						pr.Out.Header["X-Forwarded-For"] = []string{strings.Join(xff, ", ")}
					}
				}
				pr.SetXForwarded()
				pr.Out.Header.Set("X-Forwarded-Proto", cl.proto)
				// The BFF's edits go last, on the request that is sent:
				// after the proxy removed the hop-by-hop headers (and any
				// header the client named in Connection).
				if res := exchangeOf(pr.In).result; res != nil {
					res.ApplyTo(pr.Out.Header)
				}
			},
			ModifyResponse: func(resp *http.Response) error {
				x := exchangeOf(resp.Request)
				if x.result != nil {
					stepUp(resp)
					x.result.ApplyToResponse(resp.Header)
				}
				if m != nil {
					m.Upstream(routePath, time.Since(x.start), nil)
				}
				return nil
			},
			Transport:  upstream,
			BufferPool: BufferPool,
			ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
				if m != nil {
					m.Upstream(routePath, time.Since(exchangeOf(r).start), err)
				}
				proxyError(w, r, err)
			},
		}
		kind := "api"
		if r.Public {
			kind = "public"
		}
		h.routes = append(h.routes, route{prefix: r.Path, kind: kind, next: forward(b, proxy, r.Public, r.Policy, rt, st)})
	}
	for i, r := range c.Routes { // h.routes is in c.Routes' order until sorted
		h.routes[i].next = limitBody(h.routes[i].next, c.Limits.maxBody(r.MaxBodyBytes))
	}
	sort.SliceStable(h.routes, func(i, j int) bool { return len(h.routes[i].prefix) > len(h.routes[j].prefix) })
	if c.StaticDir != "" {
		if st, err := os.Stat(c.StaticDir); err != nil {
			return nil, fmt.Errorf("bffgate serve: config: static_dir: %q does not exist (a relative static_dir is relative to the config file's folder): build the SPA there, or fix the path", c.StaticDir)
		} else if !st.IsDir() {
			return nil, fmt.Errorf("bffgate serve: config: static_dir: %q is a file, not a folder: name the folder holding index.html", c.StaticDir)
		}
		h.static = spa(os.DirFS(c.StaticDir))
	}
	h.engine = limitBody(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		res := b.HandleHTTP(r, false)
		noteOf(r).code = res.ErrorCode()
		if res.Forward() { // the engine forwards no path it owns, nor an unsafe one: never
			writeError(w, r, http.StatusNotFound, bff.CodeNotFound, "no route for this path")
			return
		}
		res.Write(w)
	}), c.Limits.maxBody(0))
	var app http.Handler = h
	if tr != nil {
		app = tr.handler(app)
	}
	switch c.AccessLog {
	case "", "on":
		d := c.BFF.WithDefaults() // the logger and cookie name the engine uses
		app = accessLog(app, d.Logger, d.CookieName)
	case "off":
	default:
		return nil, fmt.Errorf("bffgate serve: config: access_log: %q: use \"on\" or \"off\"", c.AccessLog)
	}
	app = withClient(app, trust)
	p := &Proxy{Handler: app, Engine: b, transport: transport, streams: st}
	if m != nil {
		p.Admin = AdminHandler(b.Ready, m.Handler())
	}
	return p, nil
}

// NewTransport is the one transport of all routes: net/http's default,
// keeping enough idle connections per upstream for a busy proxy (the
// default keeps 2), with the upstream timeout of l.
func NewTransport(l Limits) *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = 1024
	t.MaxIdleConnsPerHost = 256
	t.ResponseHeaderTimeout = seconds(l.UpstreamTimeout, defaultUpstreamTimeout)
	return t
}

// BufferPool is the copy buffers of every route's proxy. Without one,
// httputil.ReverseProxy allocates (and zeroes) 32 KiB for each response
// it copies: most of what a proxied request allocates.
var BufferPool httputil.BufferPool = &bufferPool{}

type bufferPool struct{ p sync.Pool }

func (b *bufferPool) Get() []byte {
	if buf, ok := b.p.Get().(*[]byte); ok {
		return *buf
	}
	return make([]byte, 32<<10)
}

func (b *bufferPool) Put(buf []byte) { b.p.Put(&buf) }

// forward runs the engine on a request and, when it says so, sends the
// request upstream with the engine's header edits. Public routes skip
// authentication but not the engine: it still refuses unsafe paths and
// methods and removes the BFF's cookies and forged identity headers. A
// WebSocket or EventSource request of a session is served until that
// session ends (see streams).
func forward(b *bff.Engine, proxy http.Handler, public bool, policy *bff.Policy, rt bff.Route, st *streams) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var res bff.Result
		if public {
			res = b.HandleHTTP(r, true)
		} else {
			req := bff.NewRequest(r)
			req.Policy = policy
			res = b.HandleRoute(r.Context(), req, rt)
		}
		x := exchangeOf(r)
		x.note.code = res.ErrorCode()
		if !res.Forward() {
			res.Write(w)
			return
		}
		if res.Session != "" {
			ctx, done := st.start(r.Context(), res.Session, res.SessionEnds)
			defer done()
			r = r.WithContext(ctx)
		}
		x.result, x.start = &res, time.Now()
		proxy.ServeHTTP(w, r)
	})
}

// stepUp replaces an upstream's RFC 9470 challenge with the engine's
// insufficient_user_authentication JSON (bff.StepUpChallenge), so the JS
// client starts a step-up login. Any other response is left as it is.
func stepUp(resp *http.Response) {
	r, ok := bff.StepUpChallenge(resp.StatusCode, resp.Header)
	if !ok {
		return
	}
	resp.Body.Close()
	resp.StatusCode, resp.Status = r.Status, "401 Unauthorized"
	resp.TransferEncoding = nil
	resp.Header = r.Header
	resp.Body = io.NopCloser(bytes.NewReader(r.Body))
	resp.ContentLength = int64(len(r.Body))
	resp.Header.Set("Content-Length", strconv.Itoa(len(r.Body)))
}

type route struct {
	prefix string
	kind   string // "api" or "public", for the access log
	next   http.Handler
}

type handler struct {
	bff    *bff.Engine
	engine http.Handler // the BFF's own endpoints
	routes []route      // longest prefix first
	static http.Handler // nil when no static_dir
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// Routes are chosen on the decoded path; a path that some server reads
	// otherwise (dot segments, encoded slashes) never reaches that choice:
	// the engine refuses it.
	n := noteOf(r)
	if p := r.URL.EscapedPath(); h.bff.Owns(p) || !bff.SafePath(p) {
		n.kind = "bff"
		h.engine.ServeHTTP(w, r)
		return
	}
	for _, rt := range h.routes {
		if strings.HasPrefix(r.URL.Path, rt.prefix) {
			n.kind = rt.kind
			rt.next.ServeHTTP(w, r)
			return
		}
	}
	if h.static != nil && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
		n.kind = "static"
		h.static.ServeHTTP(w, r)
		return
	}
	n.kind = "none"
	writeError(w, r, http.StatusNotFound, bff.CodeNotFound, "no route for this path")
}

// spa serves files, and index.html for paths that name no file, so the
// app's client-side routes load the app.
func spa(root fs.FS) http.Handler {
	files := http.FileServerFS(root)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := strings.TrimPrefix(path.Clean(r.URL.Path), "/")
		if name == "" {
			name = "."
		}
		if _, err := fs.Stat(root, name); err != nil {
			r = r.Clone(r.Context())
			r.URL.Path = "/"
		}
		w.Header().Set("X-Content-Type-Options", "nosniff")
		files.ServeHTTP(w, r)
	})
}

func writeJSON(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(body))
}
