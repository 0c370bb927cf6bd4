package serve

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"net/http"
	"time"

	"github.com/bffgate/bffgate/core/bff"
)

// accessLog writes one structured line per request to log: method, path
// (never the query, which can hold codes and states), kind, status, the
// error code of an error answer, duration, the request ID, and a short tag
// of the session cookie that cannot be turned back into it, and the
// client's address (see withClient); an upstream failure adds its cause. Nothing else of the request is logged: no header,
// no cookie, no token. The request ID is the client's X-Request-Id when it
// is a plain token of at most 64 characters, else a new one; it goes
// upstream and back to the client.
func accessLog(h http.Handler, log *slog.Logger, cookieName string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := r.Header.Get("X-Request-Id")
		if !plainID(id) {
			id = newRequestID()
		}
		r.Header.Set("X-Request-Id", id)
		w.Header().Set("X-Request-Id", id)
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		r, x := withExchange(r)
		n := &x.note
		h.ServeHTTP(sw, r)
		attrs := []any{
			"method", r.Method, "path", r.URL.EscapedPath(), "kind", n.kind, "status", sw.status,
		}
		if n.code != "" {
			attrs = append(attrs, "code", string(n.code))
		}
		attrs = append(attrs, "duration_ms", float64(time.Since(start).Microseconds())/1000, "request_id", id,
			"client", clientOf(r).addr)
		if c, err := r.Cookie(cookieName); err == nil && c.Value != "" {
			attrs = append(attrs, "session", sessionTag(c.Value))
		}
		if n.err != nil {
			attrs = append(attrs, "error", n.err.Error())
		}
		log.Info("bffgate: request", attrs...)
	})
}

// note is what the handlers tell the access log of a request, beyond its
// status: what kind of request it was ("bff": one of the engine's own
// endpoints or a refusal of an unsafe path; "api", "public", "static",
// "none": no route), the error code of an error answer, and the cause of
// an upstream failure. Codes come from the engine's Result and from
// serve's own errors, never from reading the body.
type note struct {
	kind string
	code bff.Code
	err  error
}

// exchange is what serve's handlers share of one request: withClient
// puts it in the request's context, once, so that the access log, the
// route and the reverse proxy's hooks hand things on by setting its
// fields instead of each deriving a context (and a copy of the request)
// of its own.
type exchange struct {
	client client      // who sent it (withClient)
	note   note        // what the access log and the span say of it
	result *bff.Result // the engine's decision, on a forwarded request
	start  time.Time   // when it went to the reverse proxy, for upstream timing
}

type exchangeKey struct{}

// exchangeOf is the request's exchange, or a throwaway one for a request
// that did not come through withClient (a handler tested alone).
func exchangeOf(r *http.Request) *exchange {
	_, x := withExchange(r)
	return x
}

// withExchange returns r with an exchange in its context, and that
// exchange: the one it has, or a new one. The handlers that read what
// inner ones note (the access log, the span) use it, so they see those
// notes even when nothing outside them made the exchange.
func withExchange(r *http.Request) (*http.Request, *exchange) {
	if x, ok := r.Context().Value(exchangeKey{}).(*exchange); ok {
		return r, x
	}
	x := &exchange{client: peerClient(r)}
	return r.WithContext(context.WithValue(r.Context(), exchangeKey{}, x)), x
}

// noteOf is the request's note.
func noteOf(r *http.Request) *note { return &exchangeOf(r).note }

// writeError is bff.WriteError, noted for the access log.
func writeError(w http.ResponseWriter, r *http.Request, status int, code bff.Code, desc string) {
	noteOf(r).code = code
	bff.WriteError(w, status, code, desc)
}

// sessionTag is 8 hex digits of a hash of the session cookie: enough to
// follow one session through the log, useless to anyone holding the log.
func sessionTag(cookie string) string {
	sum := sha256.Sum256([]byte("bffgate access log v1\x00" + cookie))
	return hex.EncodeToString(sum[:4])
}

func plainID(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

func newRequestID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// statusWriter remembers the status written, and passes on what the
// proxy needs of the writer (flushing for streams, upgrades).
type statusWriter struct {
	http.ResponseWriter
	status      int
	wroteHeader bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wroteHeader {
		w.status, w.wroteHeader = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	w.wroteHeader = true
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection (deadlines,
// flushing, hijacking for WebSocket upgrades).
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
