package serve

import (
	"context"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
)

// ServeReload is Serve that also reloads its configuration: on each value
// from reload (SIGHUP) it calls load and builds the new config with
// Proxy.Reload. New requests go to the new proxy at once; requests in
// flight finish on the old one, which is closed after its last request.
// Sessions are kept. A config that does not load or build is refused with
// a log line, and the old one keeps serving. Fields RestartOnly names keep
// the values they had at start, with a log line saying so.
func ServeReload(ctx context.Context, c *Config, ln net.Listener, p *Proxy, reload <-chan os.Signal, load func() (*Config, error)) error {
	l := &live{}
	l.cur.Store(&generation{p: p})
	if reload != nil {
		done := make(chan struct{})
		defer close(done)
		go func() {
			for {
				select {
				case <-ctx.Done():
					return
				case <-done:
					return
				case <-reload:
					l.reload(c, load)
				}
			}
		}()
	}
	return serveLive(ctx, c, ln, l)
}

// reload loads and builds the next config and swaps it in, or logs why not.
func (l *live) reload(start *Config, load func() (*Config, error)) {
	cur := l.cur.Load().p
	nc, err := load()
	if err == nil {
		var np *Proxy
		if np, err = cur.Reload(nc); err == nil {
			if fields := RestartOnly(start, nc); len(fields) > 0 {
				np.log.Warn("bffgate: these fields apply only at start; restart to change them", "fields", fields)
			}
			l.swap(np)
			np.log.Info("bffgate: configuration reloaded")
			return
		}
	}
	cur.log.Error("bffgate: reload refused; the previous configuration keeps serving", "error", err)
}

// RestartOnly names the fields of next, changed from the config the
// process started with, that a reload does not apply: the listeners, TLS,
// tracing, the in-process store's cap and the server's connection-level
// limits.
func RestartOnly(start, next *Config) []string {
	var f []string
	add := func(changed bool, name string) {
		if changed {
			f = append(f, name)
		}
	}
	add(start.Listen != next.Listen, "listen")
	add(start.AdminListen != next.AdminListen, "admin_listen")
	add((start.TLS == nil) != (next.TLS == nil) || start.TLS != nil && *start.TLS != *next.TLS, "tls")
	add((start.Tracing == nil) != (next.Tracing == nil) || start.Tracing != nil && *start.Tracing != *next.Tracing, "tracing")
	// The in-process store carries over with the cap it was made with.
	add(start.BFF.MemoryMaxSessions != next.BFF.MemoryMaxSessions, "bff.memory_max_sessions")
	a, b := start.Limits, next.Limits
	add(a.MaxConnections != b.MaxConnections, "limits.max_connections")
	add(a.ReadHeaderTimeout != b.ReadHeaderTimeout, "limits.read_header_timeout")
	add(a.IdleTimeout != b.IdleTimeout, "limits.idle_timeout")
	add(a.BodyTimeout != b.BodyTimeout, "limits.body_timeout")
	add(a.WriteTimeout != b.WriteTimeout, "limits.write_timeout")
	return f
}

// live is the handler of a reloading server: it passes each request to
// the current generation.
type live struct {
	cur atomic.Pointer[generation]
}

// generation is one Proxy with a count of its requests in flight, so that
// it is closed after its last one once it has been replaced.
type generation struct {
	p *Proxy

	mu       sync.Mutex // guards the fields below
	inFlight int
	retired  bool
	closed   bool
}

// acquire counts a request in, or reports that g is closed (replaced and
// drained) and the request must take the current generation.
func (g *generation) acquire() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return false
	}
	g.inFlight++
	return true
}

func (g *generation) release() {
	g.mu.Lock()
	g.inFlight--
	last := g.retired && g.inFlight == 0 && !g.closed
	g.closed = g.closed || last
	g.mu.Unlock()
	if last {
		_ = g.p.Close()
	}
}

func (g *generation) retire() {
	g.mu.Lock()
	g.retired = true
	last := g.inFlight == 0 && !g.closed
	g.closed = g.closed || last
	g.mu.Unlock()
	if last {
		_ = g.p.Close()
	}
}

func (l *live) swap(p *Proxy) {
	l.cur.Swap(&generation{p: p}).retire()
}

// with runs f with the current generation, counted in flight.
func (l *live) with(f func(p *Proxy)) {
	for {
		g := l.cur.Load()
		if g.acquire() {
			defer g.release()
			f(g.p)
			return
		}
	}
}

func (l *live) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	l.with(func(p *Proxy) { p.Handler.ServeHTTP(w, r) })
}

// admin serves the current generation's admin handler.
func (l *live) admin() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		l.with(func(p *Proxy) { p.Admin.ServeHTTP(w, r) })
	})
}
