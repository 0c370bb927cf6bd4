package bff

import (
	"net/http"
)

// NewRequest reads a bff.Request from an *http.Request. Adapters built on
// net/http (the Tyk plugin, Middleware) share it.
func NewRequest(r *http.Request) *Request {
	return &Request{
		Method:   r.Method,
		Host:     r.Host,
		Path:     r.URL.EscapedPath(),
		RawQuery: r.URL.RawQuery,
		Header:   r.Header,
		Body:     r.Body,
	}
}

// HandleHTTP decides on an *http.Request: Handle, or HandlePublic for a
// public route. Adapters built on net/http (bffgate serve, the Tyk
// plugin) share it.
func (b *Engine) HandleHTTP(r *http.Request, public bool) Result {
	if public {
		return b.HandlePublic(r.Context(), NewRequest(r))
	}
	return b.Handle(r.Context(), NewRequest(r))
}

// HandleHTTPRoute is HandleHTTP for a route that asks for rt (see
// Route): bffgate serve's routes with a resource or DPoP.
func (b *Engine) HandleHTTPRoute(r *http.Request, rt Route) Result {
	return b.HandleRoute(r.Context(), NewRequest(r), rt)
}

// ApplyTo edits the upstream request's headers as a forwarding Result
// says: Del first, then Set. Call it last, on the request that is sent.
func (r *Result) ApplyTo(h http.Header) {
	for _, name := range r.Del {
		delete(h, name) // a look-alike under its own, non-canonical, name
		h.Del(name)
	}
	for name, v := range r.Set {
		h[name] = v
	}
}

// ApplyToResponse sets the Result's ResponseHeader on the upstream's
// response headers.
func (r *Result) ApplyToResponse(h http.Header) {
	for name, v := range r.ResponseHeader {
		if name == "Vary" {
			h.Add(name, v[0])
			continue
		}
		h[name] = v
	}
}

// Write writes a responding Result to w.
func (r *Result) Write(w http.ResponseWriter) {
	h := w.Header()
	for name, v := range r.Header {
		h[name] = v
	}
	w.WriteHeader(r.Status)
	if len(r.Body) > 0 {
		_, _ = w.Write(r.Body)
	}
}

// WriteError answers w with ErrorResult: the error shape of every
// bffgate answer, for net/http adapters' own errors.
func WriteError(w http.ResponseWriter, status int, code Code, desc string) {
	r := ErrorResult(status, code, desc)
	r.Write(w)
}

// Middleware returns a handler that runs the BFF in front of next: the
// BFF's endpoints and every refusal are answered here; authenticated API
// requests reach next with the access token in Authorization and without
// the session cookie.
func (b *Engine) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		res := b.Handle(r.Context(), NewRequest(r))
		if !res.Forward() {
			res.Write(w)
			return
		}
		res.ApplyTo(r.Header)
		// Set before next writes: an upstream's own CORS headers would
		// be added beside these.
		res.ApplyToResponse(w.Header())
		next.ServeHTTP(w, r)
	})
}
