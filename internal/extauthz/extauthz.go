// Package extauthz is `bffgate extauthz`: the BFF as the authorization
// service that a proxy asks about every request, over HTTP. One process
// serves several apps and these contracts, each on its own path:
//
//	/_bffgate/nginx     nginx auth_request: the original request line in
//	                    X-Original-Method and X-Original-URI, the Host header
//	/_bffgate/forward   Caddy forward_auth and Traefik forwardAuth:
//	                    X-Forwarded-Method, -Uri, -Host (and -Proto)
//	/_bffgate/envoy/... Envoy's HTTP ext_authz (http_service with
//	                    path_prefix /_bffgate/envoy): the check request's own
//	                    method, path after the prefix, and Host
//	anything else       the BFF's own endpoints (/login, /oauth/callback,
//	                    /session, ...), which the proxy routes to bffgate
//	                    directly
//
// An allow is 200 with the headers the proxy copies upstream; a denial is
// the engine's answer (status, headers such as Set-Cookie and Location,
// body). The forwarded request line is trusted only from the proxy: every
// request must come from a loopback address, or carry the configured
// shared secret. docs/extauthz.md has each proxy's configuration.
package extauthz

import (
	"context"
	"crypto/subtle"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/bffgate/bffgate/core/bff"
	"github.com/bffgate/bffgate/internal/metrics"
	"github.com/bffgate/bffgate/internal/serve"
)

// The paths of the contracts on bffgate's listener.
const (
	PathNginx   = "/_bffgate/nginx"
	PathForward = "/_bffgate/forward"
	PathEnvoy   = "/_bffgate/envoy" // a prefix: the original path follows
)

// HeaderRemove is the header of Envoy's HTTP ext_authz that lists, comma
// separated, the headers to remove from the request before it goes
// upstream (the HTTP form of OkHttpResponse.headers_to_remove).
const HeaderRemove = "X-Envoy-Auth-Headers-To-Remove"

// Limits on the forwarded request line, beyond the engine's own.
const (
	maxMethod = 32
	maxHost   = 1024
)

// Server is the authorization service: an http.Handler for the proxy's
// subrequests and for the BFF endpoints it routes to bffgate. It is safe
// for concurrent use.
type Server struct {
	apps         []*app // hosts named first, then the longest prefix
	secret       []byte // nil: trust loopback peers only
	secretHeader string
	log          *slog.Logger
	lastWarn     atomic.Int64 // unix second of the last untrusted-request log
	logged       http.Handler // the access log for requests no app serves; nil: off
	admin        http.Handler // nil without admin_listen
}

type app struct {
	name     string
	hosts    map[string]bool // nil: any host
	prefix   string
	bff      *bff.Engine
	identity []string     // canonical identity header names
	managed  []string     // Authorization, Cookie, identity, then Dpop with a DPoP route
	logged   http.Handler // the access log with this app's name and cookie; nil: off
	routes   []Route      // longest path first
}

// route returns the policy (or nil) and the bff.Route of the app's route
// for path.
func (a *app) route(path string) (*bff.Policy, bff.Route) {
	for i := range a.routes {
		if strings.HasPrefix(path, a.routes[i].Path) {
			return &a.routes[i].Policy, a.routes[i].route()
		}
	}
	return nil, bff.Route{}
}

// contract is how one proxy hands over the original request and takes
// the answer.
type contract int

const (
	direct  contract = iota // the request itself, routed to bffgate
	nginx                   // auth_request
	forward                 // Caddy forward_auth, Traefik forwardAuth
	envoy                   // Envoy HTTP ext_authz
)

// New builds the service: one engine per app.
func New(c *Config) (*Server, error) {
	secret, err := c.secret()
	if err != nil {
		return nil, err
	}
	sh, err := c.secretHeader()
	if err != nil {
		return nil, err
	}
	if len(c.Apps) == 0 {
		return nil, errors.New("bffgate extauthz: config: apps: add at least one app, e.g. {\"bff\": {...}}")
	}
	s := &Server{secretHeader: sh, log: slog.Default()}
	if secret != "" {
		s.secret = []byte(secret)
	}
	var m *metrics.Metrics
	if c.AdminListen != "" {
		m = metrics.New()
	}
	switch c.AccessLog {
	case "", "on", "off":
	default:
		return nil, fmt.Errorf("bffgate extauthz: config: access_log: %q: use \"on\" or \"off\"", c.AccessLog)
	}
	for i, a := range c.Apps {
		name := a.Name
		if name == "" {
			name = fmt.Sprintf("apps[%d]", i)
		}
		prefix := a.PathPrefix
		if prefix == "" {
			prefix = "/"
		}
		if !strings.HasPrefix(prefix, "/") || !bff.SafePath(prefix) {
			return nil, fmt.Errorf("bffgate extauthz: config: %s: path_prefix: %q must be a plain path starting with /", name, a.PathPrefix)
		}
		if strings.HasPrefix(prefix, "/_bffgate") {
			return nil, fmt.Errorf("bffgate extauthz: config: %s: path_prefix: %q overlaps bffgate's own /_bffgate/ paths", name, a.PathPrefix)
		}
		ap := &app{name: name, prefix: prefix}
		if len(a.Hosts) > 0 {
			ap.hosts = map[string]bool{}
			for _, h := range a.Hosts {
				if h == "" || strings.ContainsAny(h, "/ ") {
					return nil, fmt.Errorf("bffgate extauthz: config: %s: hosts: %q is not a host", name, h)
				}
				ap.hosts[strings.ToLower(h)] = true
			}
		}
		for _, h := range a.BFF.IdentityHeaders {
			ap.identity = append(ap.identity, http.CanonicalHeaderKey(h.Header))
		}
		ap.managed = append([]string{"Authorization", "Cookie"}, ap.identity...)
		for j, rt := range a.Routes {
			field := fmt.Sprintf("routes[%d]", j)
			if !strings.HasPrefix(rt.Path, "/") || !bff.SafePath(rt.Path) {
				s.Close()
				return nil, fmt.Errorf("bffgate extauthz: config: %s: %s.path: %q must be a plain path starting with /", name, field, rt.Path)
			}
			if err := rt.Policy.Validate(field + ".policy"); err != nil {
				s.Close()
				return nil, fmt.Errorf("bffgate extauthz: %s: %w", name, err)
			}
		}
		ap.routes = slices.Clone(a.Routes)
		sort.SliceStable(ap.routes, func(i, j int) bool { return len(ap.routes[i].Path) > len(ap.routes[j].Path) })
		bc := a.BFF
		if m != nil {
			bc.Observer = m
		}
		if ap.bff, err = bff.New(bc); err != nil {
			s.Close()
			return nil, fmt.Errorf("bffgate extauthz: %s: %w", name, err)
		}
		dpop := a.BFF.Route.DPoPURL != ""
		for j, rt := range a.Routes {
			if err := ap.bff.CheckRoute(fmt.Sprintf("routes[%d]", j), rt.route()); err != nil {
				ap.bff.Close()
				s.Close()
				return nil, fmt.Errorf("bffgate extauthz: %s: %w", name, err)
			}
			dpop = dpop || rt.DPoPURL != ""
		}
		if dpop {
			// Forward auth answers every managed header: the proof too.
			ap.managed = append(ap.managed, "Dpop")
		}
		if a.BFF.Logger != nil {
			s.log = a.BFF.Logger
		}
		s.apps = append(s.apps, ap)
		if c.AccessLog != "off" {
			d := bc.WithDefaults() // the logger and cookie name the engine uses
			ap.logged = serve.AccessLog(http.HandlerFunc(s.serveLogged), d.Logger.With("app", name), d.CookieName)
			if s.logged == nil {
				s.logged = serve.AccessLog(http.HandlerFunc(s.serveLogged), d.Logger, d.CookieName)
			}
		}
	}
	if m != nil {
		s.admin = serve.AdminHandler(s.Ready, m.Handler())
	}
	for i, a := range s.apps {
		for _, b := range s.apps[:i] {
			if sameHosts(a.hosts, b.hosts) && a.prefix == b.prefix {
				return nil, fmt.Errorf("bffgate extauthz: config: %s and %s serve the same hosts and path_prefix", b.name, a.name)
			}
		}
	}
	sort.SliceStable(s.apps, func(i, j int) bool {
		a, b := s.apps[i], s.apps[j]
		if (a.hosts != nil) != (b.hosts != nil) {
			return a.hosts != nil
		}
		return len(a.prefix) > len(b.prefix)
	})
	return s, nil
}

func sameHosts(a, b map[string]bool) bool {
	if (a == nil) != (b == nil) {
		return false
	}
	for h := range a {
		if b[h] {
			return true
		}
	}
	return a == nil
}

// Close releases what the engines opened (Redis connections).
func (s *Server) Close() error {
	var errs []error
	for _, a := range s.apps {
		errs = append(errs, a.bff.Close())
	}
	return errors.Join(errs...)
}

// ServeHTTP answers one request to bffgate. With the access log on, its
// line names the request the proxy asks about (the forwarded method and
// path), not bffgate's own /_bffgate/ path.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if s.logged == nil {
		res := s.decide(r)
		res.Write(w)
		return
	}
	view, a := s.logView(r)
	h := s.logged
	if a != nil {
		h = a.logged
	}
	h.ServeHTTP(w, view)
}

// origKey carries the request to bffgate in the context of its access
// log's view of it.
type origKey struct{}

func (s *Server) serveLogged(w http.ResponseWriter, view *http.Request) {
	r, _ := view.Context().Value(origKey{}).(*http.Request)
	if r == nil {
		r = view
	}
	res := s.decide(r)
	res.Write(w)
}

// logView is the request as the access log shows it: the forwarded method
// and path when they are well formed (else bffgate's own), and the app
// that serves it (nil: none). It shares r's header, so the request ID the
// log sets reaches the engine.
func (s *Server) logView(r *http.Request) (*http.Request, *app) {
	method, uri, host := r.Method, r.RequestURI, r.Host
	switch p := r.URL.Path; {
	case p == PathNginx:
		method, uri = one(r.Header, "X-Original-Method"), one(r.Header, "X-Original-Uri")
	case p == PathForward:
		method, uri, host = one(r.Header, "X-Forwarded-Method"), one(r.Header, "X-Forwarded-Uri"), one(r.Header, "X-Forwarded-Host")
	case strings.HasPrefix(p, PathEnvoy+"/"):
		uri = strings.TrimPrefix(r.RequestURI, PathEnvoy)
	}
	view := r.WithContext(context.WithValue(r.Context(), origKey{}, r))
	req, bad := request(method, uri, host, r.Header)
	if bad != "" {
		return view, nil
	}
	if u, err := url.ParseRequestURI(uri); err == nil {
		view.Method, view.URL = req.Method, u
	}
	return view, s.app(req.Host, req.Path)
}

// Ready reports whether every app can serve: its session store answers
// and its provider's discovery has succeeded.
func (s *Server) Ready(ctx context.Context) error {
	for _, a := range s.apps {
		if err := a.bff.Ready(ctx); err != nil {
			return fmt.Errorf("%s: %w", a.name, err)
		}
	}
	return nil
}

// Admin is the admin listener's handler (/healthz, /readyz, /metrics), or
// nil when the config has no admin_listen.
func (s *Server) Admin() http.Handler { return s.admin }

// decide answers one request to bffgate: a subrequest of one of the
// contracts, or a BFF endpoint routed here.
func (s *Server) decide(r *http.Request) bff.Result {
	if !s.Trusted(r.RemoteAddr, r.Header.Values(s.secretHeader)) {
		// At most one line a second: a flood of untrusted requests must
		// not flood the log.
		if now := time.Now().Unix(); s.lastWarn.Swap(now) != now {
			s.log.Warn("bffgate extauthz: refused a request that does not come from the trusted proxy", "remote", r.RemoteAddr)
		}
		return bff.ErrorResult(http.StatusForbidden, bff.CodeInvalidRequest, "the request does not come from the trusted proxy")
	}
	h := r.Header             // this request is ours to edit
	delete(h, s.secretHeader) // the engine and the upstream never see it

	var k contract
	var method, uri, host string
	switch p := r.URL.Path; {
	case p == PathNginx:
		k, method, uri, host = nginx, one(h, "X-Original-Method"), one(h, "X-Original-Uri"), r.Host
	case p == PathForward:
		k, method, uri, host = forward, one(h, "X-Forwarded-Method"), one(h, "X-Forwarded-Uri"), one(h, "X-Forwarded-Host")
	case strings.HasPrefix(p, PathEnvoy+"/"):
		// The original path is exactly what follows the prefix on the
		// request line (not the decoded path): an absolute-form request
		// line has no such prefix and is refused as not a path.
		k, method, uri, host = envoy, r.Method, strings.TrimPrefix(r.RequestURI, PathEnvoy), r.Host
	case strings.HasPrefix(p, "/_bffgate/") || p == "/_bffgate":
		return bff.ErrorResult(http.StatusNotFound, bff.CodeNotFound, "no such bffgate endpoint")
	default:
		k, method, uri, host = direct, r.Method, r.RequestURI, r.Host
	}
	req, bad := request(method, uri, host, h)
	if bad != "" {
		return bff.ErrorResult(http.StatusBadRequest, bff.CodeInvalidRequest, bad)
	}
	a := s.app(req.Host, req.Path)
	if a == nil {
		return bff.ErrorResult(http.StatusNotFound, bff.CodeNotFound, "no app serves this host and path")
	}
	if k == direct {
		req.Body = r.Body // the engine reads at most 64 KiB
	} else if a.bff.Owns(req.Path) {
		// The proxy would read a 2xx answer (/session, /token, /logout)
		// as an allow and send the request on, after the engine acted on
		// it: the BFF's own endpoints are routed to bffgate directly.
		return errDirect
	}
	policy, rt := a.route(req.Path)
	req.Policy = policy
	res := a.bff.HandleRoute(r.Context(), req, rt)
	if !res.Forward() {
		if k != direct && res.Status >= 200 && res.Status < 300 {
			return errDirect // a CORS preflight: also routed directly
		}
		return res
	}
	if k == direct {
		return bff.ErrorResult(http.StatusNotFound, bff.CodeNotFound, "bffgate answers only the BFF's own endpoints here; API requests go through the proxy's auth subrequest")
	}
	s.stripOthers(a, &res, req.Header)
	switch k {
	case envoy:
		return allowEnvoy(&res)
	default:
		return a.allowForward(&res, req.Header)
	}
}

// stripOthers keeps the other apps' cookies from this app's upstream too:
// a __Host- cookie has Path=/, so the browser sends every app's session
// cookie on a shared host to every path of it.
func (s *Server) stripOthers(a *app, res *bff.Result, in http.Header) {
	if len(s.apps) < 2 {
		return
	}
	h := http.Header{}
	switch v, ok := res.Set["Cookie"]; {
	case ok:
		h["Cookie"] = v
	case slices.Contains(res.Del, "Cookie"):
		return
	default:
		if v := in.Values("Cookie"); len(v) > 0 {
			h["Cookie"] = v
		}
	}
	before := strings.Join(h["Cookie"], "; ")
	for _, o := range s.apps {
		if o != a {
			o.bff.StripCookies(h)
		}
	}
	if strings.Join(h["Cookie"], "; ") == before {
		return
	}
	if v := h.Get("Cookie"); v != "" {
		if res.Set == nil {
			res.Set = http.Header{}
		}
		res.Set["Cookie"] = []string{v}
		return
	}
	delete(res.Set, "Cookie")
	res.Del = append(res.Del[:len(res.Del):len(res.Del)], "Cookie")
}

// SecretHeader is the header (in gRPC, the metadata key, lower case)
// that carries the shared secret.
func (s *Server) SecretHeader() string { return s.secretHeader }

// MayListen checks that the service may listen on addr: anywhere with a
// shared secret, else only on a loopback address.
func (s *Server) MayListen(addr string) error {
	if s.secret != nil {
		return nil
	}
	return loopbackOnly(addr)
}

// Check decides on one whole request, for a transport that carries it in
// one message (Envoy's gRPC ext_authz, in its own module): uri is the
// request target (path and query) as received. It picks the app and runs
// the engine on every path, the BFF's own included (such a transport can
// answer any status), and keeps the other apps' cookies from the
// upstream. The caller must have checked Trusted.
func (s *Server) Check(ctx context.Context, method, uri, host string, h http.Header, body io.Reader) bff.Result {
	delete(h, s.secretHeader)
	req, bad := request(method, uri, host, h)
	if bad != "" {
		return bff.ErrorResult(http.StatusBadRequest, bff.CodeInvalidRequest, bad)
	}
	a := s.app(req.Host, req.Path)
	if a == nil {
		return bff.ErrorResult(http.StatusNotFound, bff.CodeNotFound, "no app serves this host and path")
	}
	req.Body = body
	policy, rt := a.route(req.Path)
	req.Policy = policy
	res := a.bff.HandleRoute(ctx, req, rt)
	if res.Forward() {
		s.stripOthers(a, &res, req.Header)
	}
	return res
}

// Trusted reports whether a caller is the proxy: it sent the shared
// secret (secret holds the values it sent), or, when none is configured,
// it calls from a loopback address (remote is host:port).
func (s *Server) Trusted(remote string, secret []string) bool {
	if s.secret != nil {
		return len(secret) == 1 && subtle.ConstantTimeCompare([]byte(secret[0]), s.secret) == 1
	}
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// one returns the single value of a header, or "" when it is missing or
// repeated (a repeated request line is refused, not guessed at).
func one(h http.Header, name string) string {
	if v := h.Values(name); len(v) == 1 {
		return v[0]
	}
	return ""
}

// request builds the engine's request from the forwarded request line, or
// says why it cannot (bad is a description for people, never raw input).
func request(method, uri, host string, h http.Header) (req *bff.Request, bad string) {
	if method == "" || len(method) > maxMethod || !validToken(method) {
		return nil, "the forwarded method is missing or malformed"
	}
	if uri == "" || uri[0] != '/' {
		return nil, "the forwarded URI is missing or not a path"
	}
	for i := 0; i < len(uri); i++ {
		if c := uri[i]; c <= 0x20 || c >= 0x7f {
			return nil, "the forwarded URI has spaces, control or non-ASCII characters"
		}
	}
	if strings.Contains(uri, "#") {
		return nil, "the forwarded URI has a fragment"
	}
	path, query, _ := strings.Cut(uri, "?")
	host = strings.TrimSpace(host)
	if len(host) > maxHost || strings.ContainsFunc(host, func(r rune) bool { return r <= 0x20 || r >= 0x7f || r == '/' || r == '@' }) {
		return nil, "the forwarded host is malformed"
	}
	return &bff.Request{Method: method, Host: host, Path: path, RawQuery: query, Header: h}, ""
}

// app chooses the app for a request: hosts named before any host, then
// the longest path prefix.
func (s *Server) app(host, path string) *app {
	host = strings.ToLower(host)
	bare := host
	if h, _, err := net.SplitHostPort(host); err == nil {
		bare = h
	}
	for _, a := range s.apps {
		if a.hosts != nil && !a.hosts[host] && !a.hosts[bare] {
			continue
		}
		if strings.HasPrefix(path, a.prefix) {
			return a
		}
	}
	return nil
}

// allowForward is the allow of nginx, Caddy and Traefik: 200 with the
// value the upstream must get for each header the BFF manages —
// Authorization, Cookie (the client's cookies less the BFF's) and every
// identity header, each present, empty when the upstream must get none.
// The proxy sets each of them on the upstream request from this answer
// (nginx: proxy_set_header, which sends no header for an empty value;
// Traefik: authResponseHeaders; Caddy: the request_header edits in
// docs/extauthz.md, which send an empty one). A header the engine
// would remove that these proxies cannot be told to remove (a look-alike
// such as X_User, read as X-User by CGI-style upstreams) is refused.
func (a *app) allowForward(res *bff.Result, in http.Header) bff.Result {
	managed := a.managed
	for name := range res.Set {
		if name != "Connection" && !slices.Contains(managed, name) {
			return lookAlike()
		}
	}
	for _, name := range res.Del {
		if name != "Connection" && !slices.Contains(managed, name) {
			return lookAlike()
		}
	}
	out := http.Header{"Cache-Control": {"no-store"}}
	for _, name := range managed {
		var v string
		switch set, ok := res.Set[name]; {
		case ok:
			v = strings.Join(set, ", ")
		case slices.Contains(res.Del, name):
		case name == "Cookie":
			v = strings.Join(in.Values(name), "; ")
		default:
			v = strings.Join(in.Values(name), ", ")
		}
		// Always sent, empty for none: Caddy leaves the placeholder of a
		// header the answer lacks as it is, "{http.reverse_proxy.header.X}".
		out[name] = []string{v}
	}
	for name, v := range res.ResponseHeader {
		out[name] = v
	}
	return bff.Result{Status: http.StatusOK, Header: out}
}

var errDirect = bff.ErrorResult(http.StatusNotFound, bff.CodeNotFound, "route this path to bffgate directly, not through the auth subrequest")

func lookAlike() bff.Result {
	return bff.ErrorResult(http.StatusBadRequest, bff.CodeInvalidRequest, "the request has a header that some upstreams read as one the BFF sets; drop it")
}

// allowEnvoy is the allow of Envoy's HTTP ext_authz: 200 with the headers
// to set upstream (allowed_upstream_headers copies them) and, in
// x-envoy-auth-headers-to-remove, the headers to remove.
func allowEnvoy(res *bff.Result) bff.Result {
	out := http.Header{"Cache-Control": {"no-store"}}
	for name, v := range res.Set {
		if name != "Connection" {
			out[name] = []string{strings.Join(v, ", ")}
		}
	}
	var remove []string
	for _, name := range res.Del {
		if _, set := res.Set[http.CanonicalHeaderKey(name)]; !set && name != "Connection" {
			remove = append(remove, strings.ToLower(name))
		}
	}
	if len(remove) > 0 {
		out[HeaderRemove] = []string{strings.Join(remove, ", ")}
	}
	for name, v := range res.ResponseHeader {
		out[name] = v
	}
	return bff.Result{Status: http.StatusOK, Header: out}
}

// validToken reports whether s is an RFC 9110 token (a method or a header
// name).
func validToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return true
}

// Run is `bffgate extauthz -config FILE [-listen ADDR]`: it serves until
// SIGINT or SIGTERM, then shuts down gracefully.
func Run(args []string) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return run(ctx, args, os.Stderr, nil)
}

// run serves until ctx ends; ready, if not nil, is told the address.
func run(ctx context.Context, args []string, logTo io.Writer, ready func(addr string)) error {
	fl := flag.NewFlagSet("bffgate extauthz", flag.ContinueOnError)
	file := fl.String("config", "", "the config file (JSON)")
	listen := fl.String("listen", "", "listen address; overrides the file's \"listen\"")
	if err := fl.Parse(args); err != nil {
		return err
	}
	if *file == "" {
		return errors.New("-config FILE is required")
	}
	cfg, err := Load(*file)
	if err != nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(logTo, nil))
	for i := range cfg.Apps {
		cfg.Apps[i].BFF.Logger = logger
	}
	s, err := New(cfg)
	if err != nil {
		return err
	}
	defer s.Close()
	addr, err := cfg.listen(*listen, s.secret != nil)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second, MaxHeaderBytes: 64 << 10}
	stop, err := ServeAdmin(cfg.AdminListen, s.Admin())
	if err != nil {
		ln.Close()
		return err
	}
	defer stop()
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	logger.Info("bffgate extauthz: serving", "url", "http://"+ln.Addr().String(), "admin", cfg.AdminListen)
	if ready != nil {
		ready(ln.Addr().String())
	}
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// ServeAdmin serves the admin handler h on addr until stop is called;
// with no addr or no handler it does nothing.
func ServeAdmin(addr string, h http.Handler) (stop func(), err error) {
	if addr == "" || h == nil {
		return func() {}, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("admin_listen: %w", err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second, IdleTimeout: time.Minute}
	go func() { _ = srv.Serve(ln) }()
	return func() { _ = srv.Close() }, nil
}
