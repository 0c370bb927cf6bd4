// Package serve is `bffgate serve`: the BFF as a standalone reverse proxy
// in front of one or more upstream routes, optionally serving the SPA's
// static files from the same origin.
package serve

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
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
}

// Load reads a config file strictly: unknown fields are errors, so a typo
// does not silently fall back to a default.
func Load(file string) (*Config, error) {
	var c Config
	if err := configfile.Load(file, &c); err != nil {
		return nil, err
	}
	if c.StaticDir != "" && !filepath.IsAbs(c.StaticDir) {
		c.StaticDir = filepath.Join(filepath.Dir(file), c.StaticDir)
	}
	return &c, nil
}

// New builds the proxy's handler.
func New(c *Config) (*Proxy, error) {
	var m *metrics.Metrics
	bc := c.BFF
	if c.AdminListen != "" {
		m = metrics.New()
		bc.Observer = m
	}
	st := newStreams(bc.Now)
	next := bc.SessionEnded
	bc.SessionEnded = func(keys []string) {
		st.end(keys)
		if next != nil {
			next(keys)
		}
	}
	b, err := bff.New(bc)
	if err != nil {
		return nil, err
	}
	p, err := newProxy(c, b, m, st)
	if err != nil {
		b.Close()
		return nil, err
	}
	return p, nil
}

// Proxy is a built bffgate serve: the app's handler, the engine, and the
// admin listener's handler (nil without admin_listen).
type Proxy struct {
	Handler http.Handler
	Engine  *bff.Engine
	Admin   http.Handler

	streams *streams // open WebSocket and SSE connections, by session
}

func newProxy(c *Config, b *bff.Engine, m *metrics.Metrics, st *streams) (*Proxy, error) {
	if len(c.Routes) == 0 && c.StaticDir == "" {
		return nil, errors.New("bffgate serve: config: routes: add at least one route, e.g. {\"path\": \"/\", \"upstream\": \"http://127.0.0.1:9000\"}")
	}
	h := &handler{bff: b}
	transport := NewTransport(c.Limits)
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
		proxy := &httputil.ReverseProxy{
			Rewrite: func(pr *httputil.ProxyRequest) {
				pr.SetURL(u)
				pr.SetXForwarded()
				// The BFF's edits go last, on the request that is sent:
				// after the proxy removed the hop-by-hop headers (and any
				// header the client named in Connection).
				if res, ok := pr.In.Context().Value(resultKey{}).(*bff.Result); ok {
					res.ApplyTo(pr.Out.Header)
				}
			},
			ModifyResponse: func(resp *http.Response) error {
				if res, ok := resp.Request.Context().Value(resultKey{}).(*bff.Result); ok {
					stepUp(resp)
					res.ApplyToResponse(resp.Header)
				}
				if m != nil {
					m.Upstream(routePath, time.Since(startOf(resp.Request)), nil)
				}
				return nil
			},
			Transport:  transport,
			BufferPool: BufferPool,
			ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
				if m != nil {
					m.Upstream(routePath, time.Since(startOf(r)), err)
				}
				proxyError(w, r, err)
			},
		}
		h.routes = append(h.routes, route{prefix: r.Path, next: forward(b, proxy, r.Public, r.Policy, st)})
	}
	for i, r := range c.Routes { // h.routes is in c.Routes' order until sorted
		h.routes[i].next = limitBody(h.routes[i].next, c.Limits.maxBody(r.MaxBodyBytes))
	}
	sort.SliceStable(h.routes, func(i, j int) bool { return len(h.routes[i].prefix) > len(h.routes[j].prefix) })
	if c.StaticDir != "" {
		if st, err := os.Stat(c.StaticDir); err != nil || !st.IsDir() {
			return nil, fmt.Errorf("bffgate serve: config: static_dir: %q is not a directory", c.StaticDir)
		}
		h.static = spa(os.DirFS(c.StaticDir))
	}
	h.engine = limitBody(b.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Only reached if the engine forwards a path it owns: never.
		http.Error(w, "not found", http.StatusNotFound)
	})), c.Limits.maxBody(0))
	var app http.Handler = h
	switch c.AccessLog {
	case "", "on":
		d := c.BFF.WithDefaults() // the logger and cookie name the engine uses
		app = accessLog(h, d.Logger, d.CookieName)
	case "off":
	default:
		return nil, fmt.Errorf("bffgate serve: config: access_log: %q: use \"on\" or \"off\"", c.AccessLog)
	}
	p := &Proxy{Handler: app, Engine: b, streams: st}
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

// startKey carries when a request reached the proxy, for upstream timing.
type startKey struct{}

func startOf(r *http.Request) time.Time {
	t, _ := r.Context().Value(startKey{}).(time.Time)
	return t
}

// resultKey carries the engine's Result from the route to the proxy's
// Rewrite and ModifyResponse.
type resultKey struct{}

// forward runs the engine on a request and, when it says so, sends the
// request upstream with the engine's header edits. Public routes skip
// authentication but not the engine: it still refuses unsafe paths and
// methods and removes the BFF's cookies and forged identity headers. A
// WebSocket or EventSource request of a session is served until that
// session ends (see streams).
func forward(b *bff.Engine, proxy http.Handler, public bool, policy *bff.Policy, st *streams) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var res bff.Result
		if public {
			res = b.HandleHTTP(r, true)
		} else {
			req := bff.NewRequest(r)
			req.Policy = policy
			res = b.Handle(r.Context(), req)
		}
		if !res.Forward() {
			res.Write(w)
			return
		}
		ctx := r.Context()
		if res.Session != "" {
			var done func()
			ctx, done = st.start(ctx, res.Session, res.SessionEnds)
			defer done()
		}
		ctx = context.WithValue(context.WithValue(ctx, resultKey{}, &res), startKey{}, time.Now())
		proxy.ServeHTTP(w, r.WithContext(ctx))
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
	if p := r.URL.EscapedPath(); h.bff.Owns(p) || !bff.SafePath(p) {
		h.engine.ServeHTTP(w, r)
		return
	}
	for _, rt := range h.routes {
		if strings.HasPrefix(r.URL.Path, rt.prefix) {
			rt.next.ServeHTTP(w, r)
			return
		}
	}
	if h.static != nil && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
		h.static.ServeHTTP(w, r)
		return
	}
	bff.WriteError(w, http.StatusNotFound, bff.CodeNotFound, "no route for this path")
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
