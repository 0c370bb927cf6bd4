package bff

import (
	"encoding/json"
	"net/http"
)

// Code is the machine-readable "error" of every JSON error bffgate
// answers, in the engine and in every adapter. Clients branch on it; the
// description beside it is for people.
type Code string

// The codes, by the request that meets them. docs/config.md and the JS
// client list the same set (a test holds them to Codes).
const (
	// Any request.
	CodeURITooLong       Code = "uri_too_long"       // 414: request line over 8 KiB
	CodeCookieTooLarge   Code = "cookie_too_large"   // 431: Cookie header over 16 KiB
	CodeInvalidPath      Code = "invalid_path"       // 400: dot segments, encoded slashes, control characters
	CodeMethodNotAllowed Code = "method_not_allowed" // 405
	CodeOriginNotAllowed Code = "origin_not_allowed" // 403: Origin neither this site nor allowed
	CodeCSRFHeader       Code = "csrf_header_missing"
	CodeInvalidRequest   Code = "invalid_request" // 400: malformed query, form or logout token
	CodeNotFound         Code = "not_found"       // 404
	CodeInternal         Code = "internal_error"  // 500: a bug; the log says more

	// Login and its callback.
	CodeInvalidReturnTo Code = "invalid_return_to"
	CodeInvalidState    Code = "invalid_state"
	CodeInvalidIssuer   Code = "invalid_issuer"
	CodeInvalidGrant    Code = "invalid_grant"
	CodeInvalidIDToken  Code = "invalid_id_token"
	CodeInvalidNonce    Code = "invalid_nonce"
	CodeLoginFailed     Code = "login_failed"

	// Sessions.
	CodeUnauthenticated Code = "unauthenticated" // 401: no session cookie
	CodeInvalidSession  Code = "invalid_session" // 401: malformed cookie, or no such session
	CodeSessionExpired  Code = "session_expired" // 401: lifetime reached, or refresh refused
	CodeStoreDown       Code = "session_store_unavailable"
	// 401: a DBSC-bound session without its valid bound cookie
	CodeDBSCRefreshRequired Code = "dbsc_refresh_required"

	// Route policies and step-up (policy.go, stepup.go).
	CodeInsufficientScope              Code = "insufficient_scope"               // 403: the route needs claims or scopes the session lacks
	CodeInsufficientUserAuthentication Code = "insufficient_user_authentication" // 401: the route (or the upstream) needs a stronger or more recent login

	// The token endpoint.
	CodeInvalidScope        Code = "invalid_scope"
	CodeExchangeUnsupported Code = "exchange_unsupported"

	// The provider.
	CodeIdPUnavailable Code = "idp_unavailable"
	CodeIdPError       Code = "idp_error"
	CodeIdPTimeout     Code = "idp_timeout" // 504: a refresh outlasted http_timeout; it goes on
	CodeTimeout        Code = "timeout"     // 504: the request ended while it waited

	// Adapters.
	CodeConfigInvalid       Code = "bffgate_config_invalid" // 500: the plugin's configuration is invalid
	CodeNoAPI               Code = "bffgate_no_api"         // 500: Tyk: no API of the config matches
	CodeUnavailable         Code = "bffgate_unavailable"    // 503: the engine could not start
	CodeUpstreamUnavailable Code = "upstream_unavailable"   // 502: bffgate serve could not reach the upstream
	CodeUpstreamTimeout     Code = "upstream_timeout"       // 504: bffgate serve: the upstream did not answer in time
	CodeBodyTooLarge        Code = "body_too_large"         // 413: bffgate serve: over the route's body limit
	CodeBodyTimeout         Code = "body_timeout"           // 408: bffgate serve: the body did not arrive in time
)

// Codes is every Code, for documentation and clients to be checked
// against.
var Codes = []Code{
	CodeURITooLong, CodeCookieTooLarge, CodeInvalidPath, CodeMethodNotAllowed, CodeOriginNotAllowed,
	CodeCSRFHeader, CodeInvalidRequest, CodeNotFound, CodeInternal,
	CodeInvalidReturnTo, CodeInvalidState, CodeInvalidIssuer, CodeInvalidGrant, CodeInvalidIDToken,
	CodeInvalidNonce, CodeLoginFailed,
	CodeUnauthenticated, CodeInvalidSession, CodeSessionExpired, CodeStoreDown, CodeDBSCRefreshRequired,
	CodeInsufficientScope, CodeInsufficientUserAuthentication,
	CodeInvalidScope, CodeExchangeUnsupported,
	CodeIdPUnavailable, CodeIdPError, CodeIdPTimeout, CodeTimeout,
	CodeConfigInvalid, CodeNoAPI, CodeUnavailable, CodeUpstreamUnavailable,
	CodeUpstreamTimeout, CodeBodyTooLarge, CodeBodyTimeout,
}

// failure is a request the engine refuses or cannot serve: found where it
// happens, returned as an error, and turned into a Result in one place
// (Engine.answer).
type failure struct {
	status int
	code   Code
	desc   string // for people; never a token, secret or raw input
	detail string // the provider's error code, for login_failed
}

func (f *failure) Error() string { return string(f.code) + ": " + f.desc }

func fail(status int, code Code, desc string) *failure {
	return &failure{status: status, code: code, desc: desc}
}

// The failures several paths share.
var (
	errStoreDown = fail(http.StatusServiceUnavailable, CodeStoreDown, "the session store is unavailable; try again")
	errNoSession = fail(http.StatusUnauthorized, CodeUnauthenticated, "no session: log in first")
)

// errorBody is the JSON of every error bffgate answers.
type errorBody struct {
	Authenticated *bool  `json:"authenticated,omitempty"` // false on 401s
	Error         Code   `json:"error"`
	Description   string `json:"error_description,omitempty"`
}

// ErrorResult is the answer for an error: the JSON body and headers every
// error of bffgate has. Adapters use it for their own errors (a plugin's
// bad configuration, an unreachable upstream), so that clients see one
// shape. desc must hold no token or secret.
func ErrorResult(status int, code Code, desc string) Result {
	body := errorBody{Error: code, Description: desc}
	if status == http.StatusUnauthorized {
		f := false
		body.Authenticated = &f
	}
	r := jsonResult(status, body)
	r.code = code
	return r
}

// jsonResult answers with v as JSON, uncacheable.
func jsonResult(status int, v any) Result {
	body, err := json.Marshal(v)
	if err != nil { // only our own types are marshalled: a bug
		status, body = http.StatusInternalServerError, []byte(`{"error":"internal_error"}`)
	}
	return Result{Status: status, Body: body, Header: http.Header{
		"Content-Type":           {"application/json"},
		"Cache-Control":          {"no-store"},
		"X-Content-Type-Options": {"nosniff"},
	}}
}

// answer turns an error into the Result for req: a failure as itself,
// anything else as a 500 (and a log line). An invalid or ended session
// also deletes the browser's session cookie.
func (b *Engine) answer(req *Request, err error) Result {
	f, ok := err.(*failure)
	if !ok {
		b.log.Error("bffgate: internal error", "error", err)
		f = fail(http.StatusInternalServerError, CodeInternal, "an internal error; the log says more")
	}
	r := ErrorResult(f.status, f.code, f.desc)
	b.cors(req, r.Header)
	if f.code == CodeInvalidSession || f.code == CodeSessionExpired {
		r.Header.Add("Set-Cookie", b.clearSessionCookie())
	}
	return r
}
