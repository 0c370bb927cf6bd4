package bff

import (
	"net/http"
	"strings"
)

// corsHeader returns the CORS headers for a forwarded request's response,
// or nil for a same-origin or unknown caller.
func (b *Engine) corsHeader(req *Request) http.Header {
	if o := req.Header.Get("Origin"); o == "" || !b.origins[o] {
		return nil
	}
	h := make(http.Header, 3)
	b.cors(req, h)
	return h
}

// cors adds CORS headers for an allowed cross-origin caller.
func (b *Engine) cors(req *Request, h http.Header) {
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
func (b *Engine) preflight(req *Request) Result {
	if !b.origins[req.Header.Get("Origin")] {
		return b.answer(req, fail(http.StatusForbidden, CodeOriginNotAllowed, "this origin is not in allowed_origins"))
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
func (b *Engine) originAllowed(req *Request) bool {
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
	// Same origin: the scheme of redirect_url and the Host asked for.
	// Scheme, host and port all count (RFC 6454 §5).
	scheme, host, found := strings.Cut(o[0], "://")
	return found && host != "" && strings.EqualFold(scheme, b.siteScheme) && strings.EqualFold(host, req.Host)
}

// csrfOK reports whether the request carries the CSRF header, or needs
// none (relaxed mode, safe method).
func (b *Engine) csrfOK(req *Request, always bool) bool {
	if !always && b.cfg.CSRFUnsafeMethodsOnly {
		switch req.Method {
		case http.MethodGet, http.MethodHead, http.MethodOptions:
			return true
		}
	}
	v := req.Header[b.csrfKey]
	return len(v) == 1 && v[0] == b.cfg.CSRFHeaderValue
}

var errOrigin = fail(http.StatusForbidden, CodeOriginNotAllowed, "the request's Origin is not this site nor in allowed_origins")

// isStream reports whether req opens a WebSocket (RFC 6455 handshake) or
// an EventSource stream (GET with Accept: text/event-stream).
func isStream(req *Request) bool {
	if req.Method != http.MethodGet {
		return false
	}
	if strings.EqualFold(req.Header.Get("Upgrade"), "websocket") {
		return true
	}
	return strings.HasPrefix(req.Header.Get("Accept"), "text/event-stream")
}

// guard runs the Origin and CSRF checks that state-changing BFF endpoints
// and API requests share.
func (b *Engine) guard(req *Request, alwaysCSRF bool) error {
	if !b.originAllowed(req) {
		return errOrigin
	}
	if !alwaysCSRF && isStream(req) {
		// Browsers cannot add a header to a WebSocket handshake or an
		// EventSource request. They do say where the request comes from:
		// the Origin (checked above), which a WebSocket handshake always
		// has, or, for a same-origin EventSource, which has none, Fetch
		// Metadata. A request that shows neither is refused.
		if len(req.Header["Origin"]) == 1 || req.Header.Get("Sec-Fetch-Site") == "same-origin" {
			return nil
		}
		return fail(http.StatusForbidden, CodeOriginNotAllowed, "a WebSocket or EventSource request must show its Origin")
	}
	if !b.csrfOK(req, alwaysCSRF) {
		return fail(http.StatusForbidden, CodeCSRFHeader, "send the header "+b.cfg.CSRFHeader+": "+b.cfg.CSRFHeaderValue)
	}
	return nil
}
