// Package tykhost runs Tyk Go plugin hooks the way a Tyk gateway does, for
// bffgate's tests and benchmarks. A real Tyk gateway is no part of them
// (the Go module proxy refuses github.com/TykTechnologies/tyk, and none of
// Tyk's code is kept here; DEVELOPERS.md says how to check against one
// built by hand), so this small host stands in for it:
//
//   - Load opens a .so with Go's plugin package and looks a hook up by name
//     with Tyk's hook type, func(http.ResponseWriter, *http.Request), as
//     Tyk's goplugin.GetHandler does.
//   - Gateway routes a request to the API with the longest matching listen
//     path and runs its "pre" hooks with Tyk's contract (Tyk v5.14.0,
//     gateway/mw_go_plugin.go): a hook that called WriteHeader or Write
//     ended the request with that response; otherwise the request goes on
//     to the next hook and then through a reverse proxy to the API's
//     upstream, with whatever the hooks did to its headers, and with the
//     listen path stripped.
//   - Before the hooks the request gets the context Tyk gives it (seven
//     values set by copying the request, see withTykContext), and the
//     proxy copies bodies with pooled buffers as Tyk's does, so what the
//     host does around a hook costs what Tyk's does where it touches the
//     hook's own work.
//
// The host and the plugins it loads must be built alike, as Tyk and its
// plugins must: cgo, -trimpath, the goplugin tag, the same Go toolchain and
// the same version of every shared package. So the test binaries and
// programs using this package are built with
//
//	CGO_ENABLED=1 go test -trimpath -tags goplugin ./tyk-plugin/...
//
// The host links the packages that both bffgate and Tyk use (blank
// imports below), so loading bffgate.so here checks them as Tyk's loader
// does.
package tykhost

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net/http"
	"net/http/httputil"
	"net/url"
	"plugin"
	"strings"
	"sync"
	"time"

	// Packages of modules shared with Tyk v5.14.0 that its binary links
	// too: a plugin with another build of any of them does not load.
	_ "github.com/go-jose/go-jose/v4"
	_ "github.com/redis/go-redis/v9"
	_ "golang.org/x/oauth2"
	_ "golang.org/x/sync/singleflight"
)

// Hook is Tyk's Go plugin hook type for pre, auth and post hooks.
type Hook = func(http.ResponseWriter, *http.Request)

// Load opens the Go plugin at path and returns its hook named symbol. A Go
// plugin can be opened only once per process; opening the same path again
// returns the same plugin, and opening another build with the same plugin
// path fails with "plugin already loaded".
func Load(path, symbol string) (Hook, error) {
	p, err := plugin.Open(path)
	if err != nil {
		return nil, err
	}
	s, err := p.Lookup(symbol)
	if err != nil {
		return nil, err
	}
	h, ok := s.(func(http.ResponseWriter, *http.Request))
	if !ok {
		return nil, fmt.Errorf("tykhost: %s in %s is a %T, not Tyk's hook type func(http.ResponseWriter, *http.Request)", symbol, path, s)
	}
	return h, nil
}

// API is one API definition: where it listens, its pre hooks, where it
// proxies to.
type API struct {
	ListenPath      string   // e.g. "/app/"
	StripListenPath bool     // Tyk's strip_listen_path
	Target          *url.URL // the upstream
	Pre             []Hook   // custom_middleware.pre, in order
	// MaxIdleConnsPerHost is Tyk's max_idle_connections_per_host: the idle
	// connections to the upstream kept for reuse. 0, Tyk's default, is
	// net/http's default of 2 (Tyk recommends 500 in production).
	MaxIdleConnsPerHost int
}

// Gateway serves a set of APIs with Tyk's hook contract. Build it with New.
type Gateway struct {
	apis []route
}

type route struct {
	API
	prefix string
	proxy  *httputil.ReverseProxy
}

// New returns a gateway for apis.
func New(apis ...API) *Gateway {
	g := &Gateway{}
	for _, a := range apis {
		// One transport per API, as Tyk makes one per API definition, with
		// Tyk v5.14.0's max_idle_connections_per_host (gateway/
		// reverse_proxy.go): its default 0 keeps net/http's 2 idle
		// connections per upstream, so under load most requests open a new
		// connection.
		transport := http.DefaultTransport.(*http.Transport).Clone()
		transport.MaxIdleConnsPerHost = a.MaxIdleConnsPerHost
		r := route{API: a, prefix: strings.TrimSuffix(a.ListenPath, "/")}
		target, strip, prefix := a.Target, a.StripListenPath, r.prefix
		r.proxy = &httputil.ReverseProxy{
			Rewrite: func(pr *httputil.ProxyRequest) {
				pr.SetURL(target)
				pr.SetXForwarded()
				if strip {
					p := strings.TrimPrefix(pr.In.URL.Path, prefix)
					if !strings.HasPrefix(p, "/") {
						p = "/" + p
					}
					pr.Out.URL.Path = strings.TrimSuffix(target.Path, "/") + p
					pr.Out.URL.RawPath = ""
				}
				// Rewrite starts from the incoming request's headers as the
				// hooks left them (Tyk proxies r itself).
			},
			Transport:    transport,
			ErrorHandler: proxyError,
			// Tyk copies response bodies with 32 KiB buffers from a
			// sync.Pool (gateway/reverse_proxy.go, copyBuffer); without a
			// pool httputil allocates one per request, which in the
			// benchmark was three quarters of the host's allocations and
			// drove its garbage collection.
			BufferPool: bufferPool{},
		}
		g.apis = append(g.apis, r)
	}
	return g
}

// ServeHTTP routes r to its API and runs the API's hooks, then the proxy.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var api *route
	for i := range g.apis {
		a := &g.apis[i]
		if (r.URL.Path == a.prefix || strings.HasPrefix(r.URL.Path, a.prefix+"/")) &&
			(api == nil || len(a.prefix) > len(api.prefix)) {
			api = a
		}
	}
	if api == nil {
		http.Error(w, `{"error":"Not Found"}`, http.StatusNotFound)
		return
	}
	withTykContext(r, api)
	for _, h := range api.Pre {
		if sent := runHook(h, w, r); sent {
			return
		}
	}
	api.proxy.ServeHTTP(w, r)
}

// tykKey is the type of the context keys withTykContext sets.
type tykKey int

const (
	keyStartTime  tykKey = iota // Tyk's ctx.RequestStartTime (handleWrapper)
	keyOrigPath                 // ctx.OriginalRequestPath (handleWrapper)
	keyMuxVars                  // gorilla/mux's route variables
	keyMuxRoute                 // gorilla/mux's matched route
	keySpanAttrs                // VersionCheck's trace span attributes
	keyVersion                  // ctx.VersionData: the API version the request is for
	keyDefinition               // ctx.Definition: the API definition
)

// withTykContext gives r the context a pre hook sees in Tyk v5.14.0: seven
// values above net/http's two and its two cancel contexts (twelve levels
// in all; dumped from a hook in a real gateway). Tyk sets each as
// internal/service/core.SetContext does, *r = *r.WithContext(ctx), a copy
// of the request per value; the last, the API definition, is set by the
// Go plugin middleware itself just before it calls the hook. So a hook
// that reads its context (a ctx.Value lookup, a timeout derived from it)
// walks as deep a chain here as in Tyk, and the host copies the request
// as often as Tyk does before the hook.
func withTykContext(r *http.Request, api *route) {
	for _, v := range [...]struct {
		key tykKey
		val any
	}{
		{keyStartTime, time.Now()},
		{keyOrigPath, r.URL.Path},
		{keyMuxVars, map[string]string{}},
		{keyMuxRoute, api},
		{keySpanAttrs, []string(nil)},
		{keyVersion, "Default"},
		{keyDefinition, &api.API},
	} {
		*r = *r.WithContext(context.WithValue(r.Context(), v.key, v.val))
	}
}

// bufferPool is httputil.BufferPool over a sync.Pool of 32 KiB buffers,
// as Tyk's reverse proxy keeps them.
type bufferPool struct{}

var buffers = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

func (bufferPool) Get() []byte  { return *buffers.Get().(*[]byte) }
func (bufferPool) Put(b []byte) { buffers.Put(&b) }

// proxyError answers 502 when the upstream fails, as Tyk does, and logs
// it unless the client went away.
func proxyError(w http.ResponseWriter, r *http.Request, err error) {
	if !errors.Is(err, context.Canceled) {
		log.Printf("tykhost: proxy error: %v", err)
	}
	w.WriteHeader(http.StatusBadGateway)
}

// runHook calls h as Tyk does and reports whether it sent a response. Tyk
// recovers a hook's panic; so does this, answering 500.
func runHook(h Hook, w http.ResponseWriter, r *http.Request) (sent bool) {
	rw := &responseWriter{ResponseWriter: w}
	defer func() {
		if p := recover(); p != nil {
			log.Printf("tykhost: hook panicked: %v", p)
			if !rw.sent {
				http.Error(w, `{"error":"Internal Server Error"}`, http.StatusInternalServerError)
			}
			sent = true
		}
	}()
	h(rw, r)
	return rw.sent
}

// responseWriter is Tyk's customResponseWriter: it notes whether the hook
// sent a response.
type responseWriter struct {
	http.ResponseWriter
	sent bool
}

func (w *responseWriter) WriteHeader(status int) {
	w.sent = true
	w.ResponseWriter.WriteHeader(status)
}

func (w *responseWriter) Write(b []byte) (int, error) {
	w.sent = true
	return w.ResponseWriter.Write(b)
}
