package serve

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/bffgate/bffgate/core/bff"
)

// Limits bound what one client, or one upstream, can hold of the proxy:
// connections, time and request bodies. Durations are whole seconds. The
// zero value is the defaults below; -1 turns a limit off where noted.
type Limits struct {
	// MaxConnections caps the client connections open at once. A
	// connection over the cap is accepted and closed at once, so it costs
	// the proxy neither a file descriptor nor a goroutine for longer than
	// that; idle keep-alive connections count until IdleTimeout closes
	// them. Defaults to half of the file descriptors left after 1,024
	// (kept for upstream connections, Redis and files) under the process's
	// RLIMIT_NOFILE, at most 10,000 and at least 64. -1: no cap.
	MaxConnections int `json:"max_connections"`
	// ReadHeaderTimeout bounds reading a request's line and headers.
	// Defaults to 10.
	ReadHeaderTimeout int `json:"read_header_timeout"`
	// IdleTimeout closes a keep-alive connection that has waited this long
	// for its next request. Defaults to 60.
	IdleTimeout int `json:"idle_timeout"`
	// BodyTimeout bounds reading a request's whole body, counted from the
	// end of its headers; a client slower than that is cut off. Requests
	// without a body are not affected. Defaults to 60.
	BodyTimeout int `json:"body_timeout"`
	// WriteTimeout bounds each write of the response to the client: a
	// client that stops reading is cut off after this long. It bounds
	// every write, not the whole response, so long downloads and streamed
	// responses (Server-Sent Events) go on as long as the client keeps
	// reading; the wait for the upstream's headers is UpstreamTimeout's.
	// Defaults to 60.
	WriteTimeout int `json:"write_timeout"`
	// UpstreamTimeout bounds the wait for an upstream's response headers
	// once the request is sent; past it the client gets 504
	// upstream_timeout. The response body is not bounded by it. Defaults
	// to 60.
	UpstreamTimeout int `json:"upstream_timeout"`
	// MaxBodyBytes caps request bodies on every route that sets no
	// max_body_bytes of its own, and on the BFF's own endpoints; a larger
	// body gets 413 body_too_large. Defaults to 1 MiB (1048576), nginx's
	// client_max_body_size. -1: no cap.
	MaxBodyBytes int64 `json:"max_body_bytes"`
	// SessionCheck is how often, in seconds, the proxy checks that the
	// session of each open WebSocket or Server-Sent Events connection is
	// still in the store, and closes the connections of one that is gone
	// (idled out, ended on another node or by `bffgate sessions revoke`).
	// Ends this process makes (logout, back-channel logout, the user's
	// list of sessions) and the session's absolute end close them at
	// once. Defaults to 30.
	SessionCheck int `json:"session_check"`
}

// Defaults of Limits.
const (
	defaultReadHeaderTimeout = 10 * time.Second
	defaultIdleTimeout       = 60 * time.Second
	defaultBodyTimeout       = 60 * time.Second
	defaultWriteTimeout      = 60 * time.Second
	defaultUpstreamTimeout   = 60 * time.Second
	defaultMaxBodyBytes      = 1 << 20
	defaultSessionCheck      = 30 * time.Second
	maxDefaultConnections    = 10000
	minDefaultConnections    = 64
	reservedFiles            = 1024
)

func seconds(n int, def time.Duration) time.Duration {
	if n <= 0 {
		return def
	}
	return time.Duration(n) * time.Second
}

// maxConnections is the cap in force; 0 means none.
func (l Limits) maxConnections() int {
	switch {
	case l.MaxConnections < 0:
		return 0
	case l.MaxConnections > 0:
		return l.MaxConnections
	}
	n := maxDefaultConnections
	if files, ok := openFileLimit(); ok {
		n = min(n, max(minDefaultConnections, (int(min(files, 1<<30))-reservedFiles)/2))
	}
	return n
}

// maxBody is the body cap for a route that sets routeMax; 0 means none.
func (l Limits) maxBody(routeMax int64) int64 {
	n := routeMax
	if n == 0 {
		n = l.MaxBodyBytes
	}
	switch {
	case n < 0:
		return 0
	case n == 0:
		return defaultMaxBodyBytes
	}
	return n
}

// Serve answers requests with p's handler on ln, under c.Limits, and the
// admin listener's on c.AdminListen when p has one, until ctx is done;
// then it stops accepting and waits up to 5 seconds for the requests in
// flight before closing every connection. It closes ln.
func Serve(ctx context.Context, c *Config, ln net.Listener, p *Proxy) error {
	return ServeReload(ctx, c, ln, p, nil, nil)
}

func serveLive(ctx context.Context, c *Config, ln net.Listener, l *live) error {
	if tr := l.cur.Load().p.tracer; tr != nil {
		defer tr.shutdown() // after the requests in flight
	}
	if l.cur.Load().p.Admin != nil {
		aln, err := net.Listen("tcp", c.AdminListen)
		if err != nil {
			ln.Close()
			return fmt.Errorf("admin_listen: %w", err)
		}
		admin := &http.Server{Handler: l.admin(), ReadHeaderTimeout: 5 * time.Second, IdleTimeout: time.Minute}
		go func() { _ = admin.Serve(aln) }()
		defer admin.Close()
	}
	if st := l.cur.Load().p.streams; st != nil {
		// A reload keeps the registry: ask the engine serving now.
		wctx, stop := context.WithCancel(ctx)
		defer stop()
		alive := func(ctx context.Context, key string) (bool, error) {
			return l.cur.Load().p.Engine.SessionAlive(ctx, key)
		}
		go st.watch(wctx, seconds(c.Limits.SessionCheck, defaultSessionCheck), alive)
	}
	srv := newServer(c.Limits, l)
	if n := c.Limits.maxConnections(); n > 0 {
		ln = limitListener(ln, n)
	}
	// The certificate of the config the process started with: its files
	// are reread when they change; other files need a restart.
	certs := l.cur.Load().p.certs
	served := make(chan struct{})  // Serve returned
	stopped := make(chan struct{}) // the shutdown is over, or never began
	go func() {
		defer close(stopped)
		select {
		case <-ctx.Done():
		case <-served:
			return
		}
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if srv.Shutdown(sctx) != nil {
			_ = srv.Close()
		}
	}()
	var err error
	if certs != nil {
		srv.TLSConfig = certs.config()
		err = srv.ServeTLS(ln, "", "")
	} else {
		err = srv.Serve(ln)
	}
	close(served)
	<-stopped // Serve returns as soon as Shutdown begins
	if !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// newServer is the http.Server for h. Only the header and idle timeouts
// are the server's; body and write deadlines are set per request (see
// deadlines), so that the body deadline does not bound the wait for the
// upstream, and a write deadline bounds each write rather than the whole
// response; a route that streams or upgrades can still change them with an
// http.ResponseController.
func newServer(l Limits, h http.Handler) *http.Server {
	return &http.Server{
		Handler:           deadlines(h, seconds(l.BodyTimeout, defaultBodyTimeout), seconds(l.WriteTimeout, defaultWriteTimeout)),
		ReadHeaderTimeout: seconds(l.ReadHeaderTimeout, defaultReadHeaderTimeout),
		IdleTimeout:       seconds(l.IdleTimeout, defaultIdleTimeout),
		MaxHeaderBytes:    64 << 10,
	}
}

// deadlines sets, for each request, a read deadline for its body (net/http
// lifts it once the body has been read) and a write deadline before each
// write of the response.
func deadlines(h http.Handler, body, write time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		// A deadline left from the previous request on this connection.
		_ = rc.SetWriteDeadline(time.Time{})
		if r.Body != nil && r.Body != http.NoBody {
			if rc.SetReadDeadline(time.Now().Add(body)) == nil {
				r.Body = &deadlineBody{r.Body}
			}
		}
		h.ServeHTTP(&writeDeadline{ResponseWriter: w, rc: rc, d: write}, r)
	})
}

// deadlineBody marks its read errors as the client's (bodyError).
type deadlineBody struct{ io.ReadCloser }

func (b *deadlineBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil && err != io.EOF {
		err = &bodyError{err}
	}
	return n, err
}

// bodyError is a failure to read the client's body, told apart from the
// upstream's failures in proxyError.
type bodyError struct{ err error }

func (e *bodyError) Error() string { return "reading the request body: " + e.err.Error() }
func (e *bodyError) Unwrap() error { return e.err }

// writeDeadline gives each write d to finish. http.ResponseController
// reaches the connection through Unwrap (flushes, hijacks, deadlines).
type writeDeadline struct {
	http.ResponseWriter
	rc *http.ResponseController
	d  time.Duration
}

func (w *writeDeadline) WriteHeader(code int) {
	_ = w.rc.SetWriteDeadline(time.Now().Add(w.d))
	w.ResponseWriter.WriteHeader(code)
}

func (w *writeDeadline) Write(p []byte) (int, error) {
	_ = w.rc.SetWriteDeadline(time.Now().Add(w.d))
	return w.ResponseWriter.Write(p)
}

func (w *writeDeadline) Flush() {
	_ = w.rc.SetWriteDeadline(time.Now().Add(w.d))
	_ = w.rc.Flush()
}

func (w *writeDeadline) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// limitBody answers 413 body_too_large for a request whose body is larger
// than n bytes (0: no cap): at once when its Content-Length says so, else
// when reading it passes n (proxyError then answers).
func limitBody(h http.Handler, n int64) http.Handler {
	if n <= 0 {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > n {
			w.Header().Set("Connection", "close")
			writeError(w, r, http.StatusRequestEntityTooLarge, bff.CodeBodyTooLarge, bodyTooLarge)
			// Send the answer, then read on up to n bytes more (within the
			// body timeout), so that a body just over the cap is consumed
			// and the client reads the 413 rather than a reset.
			_ = http.NewResponseController(w).Flush()
			_, _ = io.CopyN(io.Discard, r.Body, n)
			return
		}
		if r.Body != nil && r.Body != http.NoBody {
			r.Body = http.MaxBytesReader(w, r.Body, n)
		}
		h.ServeHTTP(w, r)
	})
}

const bodyTooLarge = "the request body is larger than this route allows"

// proxyError is the reverse proxy's ErrorHandler. The upstream's failure
// goes on the request's access line, once, with its cause.
func proxyError(w http.ResponseWriter, r *http.Request, err error) {
	var big *http.MaxBytesError
	var be *bodyError
	var ne net.Error
	switch {
	case errors.As(err, &big):
		w.Header().Set("Connection", "close")
		writeError(w, r, http.StatusRequestEntityTooLarge, bff.CodeBodyTooLarge, bodyTooLarge)
	case errors.As(err, &be) && errors.As(be.err, &ne) && ne.Timeout():
		w.Header().Set("Connection", "close")
		writeError(w, r, http.StatusRequestTimeout, bff.CodeBodyTimeout, "the request body did not arrive in time")
	case errors.As(err, &be):
		w.Header().Set("Connection", "close")
		writeError(w, r, http.StatusBadRequest, bff.CodeInvalidRequest, "the request body could not be read")
	case errors.As(err, &ne) && ne.Timeout() && r.Context().Err() == nil:
		noteOf(r).err = causeOf(err)
		writeError(w, r, http.StatusGatewayTimeout, bff.CodeUpstreamTimeout, "the upstream did not answer in time")
	default:
		noteOf(r).err = causeOf(err)
		writeError(w, r, http.StatusBadGateway, bff.CodeUpstreamUnavailable, "the upstream could not be reached")
	}
}

// causeOf is err without the URL a *url.Error names (its query may hold
// what the log must not).
func causeOf(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// limitListener accepts at most n connections open at once; it closes any
// connection over that at once.
func limitListener(ln net.Listener, n int) net.Listener {
	return &capListener{Listener: ln, slots: make(chan struct{}, n)}
}

type capListener struct {
	net.Listener
	slots chan struct{} // one token per open connection
}

func (l *capListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		select {
		case l.slots <- struct{}{}:
			return &capConn{Conn: c, release: func() { <-l.slots }}, nil
		default:
			_ = c.Close()
		}
	}
}

type capConn struct {
	net.Conn
	release func()

	once sync.Once
}

func (c *capConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}
