package bff

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/bffgate/bffgate/core/session"
)

// Step-up (RFC 9470): a route's policy, or an upstream, answers 401
// insufficient_user_authentication with the acr_values and max_age it
// needs; the app sends the browser to the login path with them
// (/login?acr_values=…&max_age=…); the login path checks them and passes
// them to the provider (in the pushed request with PAR); the callback
// checks that the ID token's acr and auth_time meet them, and starts the
// session anew under a new ID, as every login does (no fixation, a new
// absolute lifetime), ending the browser's old session. The new session
// is made from the new ID token alone: a login by another user gives
// that user's session, never one merged with the old.

// stepUpLeeway is the clock difference between the provider and bffgate
// that a max_age check forgives.
const stepUpLeeway = 30 * time.Second

// stepUpRequest is what a login asked of the authentication, from its
// acr_values and max_age parameters.
type stepUpRequest struct {
	ACRValues string // space-separated, "" for any
	MaxAge    *int   // nil for none
}

// stepUpParams reads and checks the acr_values and max_age parameters of
// a login, where login_params passes them on: bounded, well-formed values
// only, as they go to the provider and into the login cookie.
func (b *Engine) stepUpParams(q url.Values) (stepUpRequest, error) {
	var su stepUpRequest
	if vals, ok := q["acr_values"]; ok && b.loginParams["acr_values"] {
		if len(vals) != 1 || !validACRValues(vals[0]) {
			return su, fail(http.StatusBadRequest, CodeInvalidRequest, "acr_values must be one parameter of at most 256 bytes: acr values (printable ASCII, no quote or backslash) separated by single spaces")
		}
		su.ACRValues = vals[0]
	}
	if vals, ok := q["max_age"]; ok && b.loginParams["max_age"] {
		n, ok := parseMaxAge(vals)
		if !ok {
			return su, fail(http.StatusBadRequest, CodeInvalidRequest, "max_age must be one parameter: a whole number of seconds up to "+strconv.Itoa(maxMaxAge))
		}
		su.MaxAge = &n
	}
	return su, nil
}

// validACRValues reports whether v is a list of acr values separated by
// single spaces, at most maxACRValues bytes and maxPolicyItems values.
func validACRValues(v string) bool {
	if len(v) > maxACRValues {
		return false
	}
	parts := strings.Split(v, " ")
	if len(parts) > maxPolicyItems {
		return false
	}
	for _, p := range parts {
		if !validScopeToken(p) {
			return false
		}
	}
	return true
}

// parseMaxAge reads one max_age value: decimal digits only (no sign, no
// spaces), at most maxMaxAge.
func parseMaxAge(vals []string) (int, bool) {
	if len(vals) != 1 || vals[0] == "" || len(vals[0]) > 8 || strings.Trim(vals[0], "0123456789") != "" {
		return 0, false
	}
	n, err := strconv.Atoi(vals[0])
	return n, err == nil && n <= maxMaxAge
}

// checkStepUp checks that the ID token's claims meet what the login asked
// for: an acr among its acr_values (a provider may answer with another,
// as acr_values are voluntary claims), and an auth_time within its
// max_age (OpenID Connect Core §3.1.2.1 makes the provider send one).
func (b *Engine) checkStepUp(st *loginState, claims map[string]any) error {
	if st.ACRValues != "" {
		acr, _ := claims["acr"].(string)
		if acr == "" || !strings.Contains(" "+st.ACRValues+" ", " "+acr+" ") {
			return fail(http.StatusUnauthorized, CodeInsufficientUserAuthentication, "the identity provider did not authenticate the user with one of the acr_values asked for")
		}
	}
	if st.MaxAge != nil {
		at, ok := authTime(claims)
		if !ok || b.now().Sub(at) > time.Duration(*st.MaxAge)*time.Second+stepUpLeeway {
			return fail(http.StatusUnauthorized, CodeInsufficientUserAuthentication, "the identity provider did not authenticate the user within the max_age asked for")
		}
	}
	return nil
}

// logStepUp says how a login relates to the session it replaces: a
// step-up of the same user, or another user's login (a fresh session,
// nothing carried over).
func (b *Engine) logStepUp(ctx context.Context, req *Request, s *session.Session, st *loginState) {
	if st.ACRValues == "" && st.MaxAge == nil {
		return
	}
	var old *session.Session
	if v, ok := cookieValue(req.Header, b.cfg.CookieName); ok {
		if id, err := session.ParseID(v); err == nil {
			old, _ = b.sessions.Load(ctx, id, false)
		}
	}
	if old != nil && (old.Issuer != s.Issuer || old.Subject != s.Subject) {
		b.log.Info("bffgate: step-up login by another user: a fresh session", "sub", s.Subject)
		return
	}
	b.log.Info("bffgate: step-up login", "sub", s.Subject)
}

// Bounds on an upstream's challenge that StepUpChallenge reads.
const (
	maxChallengeBytes  = 4 << 10
	maxChallengeParams = 32
)

// StepUpChallenge turns an upstream's RFC 9470 challenge — a 401 (or 403)
// with `WWW-Authenticate: Bearer error="insufficient_user_authentication",
// acr_values="…", max_age=…` — into bffgate's own answer for the browser:
// 401 JSON insufficient_user_authentication with the acr_values and
// max_age (when well-formed), which the JS client turns into a step-up.
// ok is false for any other response, which goes to the client as it is.
// Adapters that see the upstream's response call it there (bffgate
// serve's reverse proxy) and then add the forwarding Result's
// ResponseHeader.
func StepUpChallenge(status int, h http.Header) (r Result, ok bool) {
	if status != http.StatusUnauthorized && status != http.StatusForbidden {
		return Result{}, false
	}
	for _, v := range h.Values("WWW-Authenticate") {
		if len(v) > maxChallengeBytes {
			continue
		}
		for _, c := range parseChallenges(v) {
			if !strings.EqualFold(c.scheme, "Bearer") || c.params["error"] != string(CodeInsufficientUserAuthentication) {
				continue
			}
			ref := &policyRefusal{Authenticated: true, Error: CodeInsufficientUserAuthentication,
				Description: "the API needs a stronger or more recent login: log in again with these acr_values and max_age"}
			if a := c.params["acr_values"]; validACRValues(a) {
				ref.ACRValues = a
			}
			if m, has := c.params["max_age"]; has {
				if n, ok := parseMaxAge([]string{m}); ok {
					ref.MaxAge = &n
				}
			}
			r := jsonResult(http.StatusUnauthorized, ref)
			r.code = ref.Error
			r.Header.Set("WWW-Authenticate", ref.challenge())
			return r, true
		}
	}
	return Result{}, false
}

// challenge is one challenge of a WWW-Authenticate value.
type challenge struct {
	scheme string
	params map[string]string // lower-case names
}

// parseChallenges reads the challenges of one WWW-Authenticate value (RFC
// 9110 §11.6.1): auth-scheme, then auth-params name=token or
// name="quoted string", separated by commas. A token68 is skipped;
// anything malformed ends the parse with what was read.
func parseChallenges(v string) []challenge {
	var out []challenge
	n := 0
	for i := 0; i < len(v) && n < maxChallengeParams; n++ {
		for i < len(v) && (v[i] == ' ' || v[i] == '\t' || v[i] == ',') {
			i++
		}
		start := i
		for i < len(v) && isTokenChar(v[i]) && v[i] != '=' {
			i++
		}
		name := v[start:i]
		if name == "" {
			return out
		}
		j := i
		for j < len(v) && (v[j] == ' ' || v[j] == '\t') {
			j++
		}
		if j >= len(v) || v[j] != '=' {
			out = append(out, challenge{scheme: name, params: map[string]string{}})
			continue
		}
		if len(out) == 0 {
			return out
		}
		i = j + 1
		for i < len(v) && (v[i] == ' ' || v[i] == '\t') {
			i++
		}
		var val string
		if i < len(v) && v[i] == '"' {
			var sb strings.Builder
			i++
			for i < len(v) && v[i] != '"' {
				if v[i] == '\\' && i+1 < len(v) {
					i++
				}
				sb.WriteByte(v[i])
				i++
			}
			if i >= len(v) {
				return out // unterminated
			}
			i++
			val = sb.String()
		} else {
			start := i
			for i < len(v) && isTokenChar(v[i]) {
				i++
			}
			val = v[start:i]
		}
		out[len(out)-1].params[strings.ToLower(name)] = val
	}
	return out
}
