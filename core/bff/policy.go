package bff

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/bffgate/bffgate/core/session"
)

// Policy is what a route asks of a session beyond a login: claims of the
// ID token, scopes of the access token, and how (acr) and how recently
// (auth_time) the user authenticated. The engine checks it before it
// forwards a request; a session that falls short is answered 403
// insufficient_scope (claims, scopes: logging in again does not help) or
// 401 insufficient_user_authentication with the acr_values and max_age a
// step-up login needs (see Config.LoginParams), and the request never
// reaches the upstream. The zero Policy asks nothing.
//
// One Policy type serves every adapter: Config.Policy for all of an
// engine's API requests (a Tyk API, a Kong route), and Request.Policy for
// the route an adapter matched (a bffgate serve route, an ext_authz app
// route). Check it with Validate when the configuration is read.
type Policy struct {
	// Claims are the ID token claims the session must have, all of them.
	// Defaults to none.
	Claims []ClaimRule `json:"claims"`
	// Scopes the access token must have, all of them, as the token
	// response's scope (or the configured scopes when the provider sent
	// none) says; a refresh that narrows the scope narrows it here too.
	// Defaults to none.
	Scopes []string `json:"scopes"`
	// ACRValues are the authentication context classes accepted (the ID
	// token's acr), any one of them, e.g. ["urn:example:mfa"]. A session
	// with another acr, or none, is answered 401
	// insufficient_user_authentication with these acr_values. Defaults to
	// any.
	ACRValues []string `json:"acr_values"`
	// MaxAge is the longest time, in seconds, since the user last
	// authenticated at the provider (the ID token's auth_time). An older
	// login, or an ID token without auth_time, is answered 401
	// insufficient_user_authentication with this max_age. Defaults to 0:
	// no limit.
	MaxAge int `json:"max_age"`
}

// ClaimRule requires one claim of the ID token.
type ClaimRule struct {
	// Claim is the claim's name, e.g. "groups", or a dotted path into
	// nested objects ("realm_access.roles") when no claim has the whole
	// name. Required.
	Claim string `json:"claim"`
	// Values accepted, any one of them: a string claim must equal one, a
	// number or boolean written as text ("42", "true") too, and an array
	// claim must hold one. Defaults to none: the claim must be present and
	// not null, false or "".
	Values []string `json:"values"`
}

// Bounds on a policy, so that its answers and step-up requests stay small.
const (
	maxPolicyItems = 64  // claims, scopes, acr_values, values of a claim
	maxPolicyValue = 256 // bytes of a claim name, value, scope or acr
	maxACRValues   = 256 // bytes of an acr_values parameter
	maxMaxAge      = 366 * 24 * 3600
)

// IsZero reports whether p asks nothing.
func (p *Policy) IsZero() bool {
	return p == nil || len(p.Claims) == 0 && len(p.Scopes) == 0 && len(p.ACRValues) == 0 && p.MaxAge == 0
}

// Validate checks p. field is where the configuration holds it (e.g.
// "policy", "routes[2].policy"); a *ConfigError names the field below it.
func (p *Policy) Validate(field string) error {
	if p == nil {
		return nil
	}
	if len(p.Claims) > maxPolicyItems || len(p.Scopes) > maxPolicyItems || len(p.ACRValues) > maxPolicyItems {
		return cfgErr(field, "lists more than %d claims, scopes or acr_values", maxPolicyItems)
	}
	// Field names are built only for an error: Kong validates each
	// route's policy on every request.
	for i, c := range p.Claims {
		f := func() string { return fmt.Sprintf("%s.claims[%d]", field, i) }
		if c.Claim == "" || len(c.Claim) > maxPolicyValue || hasControl(c.Claim) {
			return cfgErr(f()+".claim", "%q: name a claim of the ID token, e.g. \"groups\"", c.Claim)
		}
		if len(c.Values) > maxPolicyItems {
			return cfgErr(f()+".values", "lists more than %d values", maxPolicyItems)
		}
		for j, v := range c.Values {
			if len(v) > maxPolicyValue || hasControl(v) {
				return cfgErr(fmt.Sprintf("%s.values[%d]", f(), j), "must be at most %d bytes of text", maxPolicyValue)
			}
		}
	}
	for i, s := range p.Scopes {
		if !validScopeToken(s) {
			return cfgErr(fmt.Sprintf("%s.scopes[%d]", field, i), "%q is not a scope (RFC 6749 §3.3: printable ASCII, no space, quote or backslash)", s)
		}
	}
	for i, a := range p.ACRValues {
		if !validScopeToken(a) {
			return cfgErr(fmt.Sprintf("%s.acr_values[%d]", field, i), "%q is not an acr value: printable ASCII, no space, quote or backslash", a)
		}
	}
	if len(strings.Join(p.ACRValues, " ")) > maxACRValues {
		return cfgErr(field+".acr_values", "are longer than %d bytes together", maxACRValues)
	}
	if p.MaxAge < 0 || p.MaxAge > maxMaxAge {
		return cfgErr(field+".max_age", "is %d: give seconds between 1 and %d, or 0 for no limit", p.MaxAge, maxMaxAge)
	}
	return nil
}

// validScopeToken reports whether s is a scope-token of RFC 6749 §3.3
// (also the form of an acr value here), at most maxPolicyValue bytes.
func validScopeToken(s string) bool {
	if s == "" || len(s) > maxPolicyValue {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c >= 0x7f || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

func hasControl(s string) bool {
	return strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f })
}

// policyRefusal is why a session does not meet a policy: the answer's
// body, apart from the status.
type policyRefusal struct {
	Authenticated bool   `json:"authenticated"` // the session stays valid
	Error         Code   `json:"error"`
	Description   string `json:"error_description"`
	// insufficient_scope: what the session lacks (claim names, not the
	// values the policy wants).
	Scope  string   `json:"scope,omitempty"`
	Claims []string `json:"claims,omitempty"`
	// insufficient_user_authentication: what a step-up login asks for.
	ACRValues string `json:"acr_values,omitempty"`
	MaxAge    *int   `json:"max_age,omitempty"`
}

// enforce checks the engine's policy and the request's route policy on s,
// and returns the answer when s falls short of either.
func (b *Engine) enforce(req *Request, s *session.Session) (Result, bool) {
	for _, p := range [...]*Policy{&b.cfg.Policy, req.Policy} {
		if p.IsZero() {
			continue
		}
		if ref := b.evaluate(p, s); ref != nil {
			return b.refuse(req, ref), true
		}
	}
	return Result{}, false
}

// evaluate checks one policy: claims and scopes first (403, which a new
// login would not change), then acr and auth_time (401, which a step-up
// login fixes).
func (b *Engine) evaluate(p *Policy, s *session.Session) *policyRefusal {
	var claims map[string]any
	if len(p.Claims) > 0 || len(p.ACRValues) > 0 || p.MaxAge > 0 {
		if s.TokenClaims == "" {
			// Saved before sessions kept the ID token's claims (every
			// login since keeps at least "{}"): what the user has is
			// unknown, and a new login tells.
			return &policyRefusal{Error: CodeInsufficientUserAuthentication,
				Description: "this session predates route policies: log in again"}
		}
		_ = json.Unmarshal([]byte(s.TokenClaims), &claims) // malformed: no claims, no rule met
	}
	var missingScopes []string
	granted := strings.Fields(s.Scope)
	for _, want := range p.Scopes {
		if !slices.Contains(granted, want) {
			missingScopes = append(missingScopes, want)
		}
	}
	var missingClaims []string
	for _, r := range p.Claims {
		if !r.matches(claims) {
			missingClaims = append(missingClaims, r.Claim)
		}
	}
	if len(missingScopes) > 0 || len(missingClaims) > 0 {
		return &policyRefusal{Error: CodeInsufficientScope, Scope: strings.Join(missingScopes, " "), Claims: missingClaims,
			Description: "this route needs scopes or claims the session does not have"}
	}
	ref := &policyRefusal{Error: CodeInsufficientUserAuthentication}
	if len(p.ACRValues) > 0 {
		if acr, _ := claims["acr"].(string); !slices.Contains(p.ACRValues, acr) {
			ref.ACRValues = strings.Join(p.ACRValues, " ")
			ref.Description = "this route needs a stronger login: log in again with these acr_values"
		}
	}
	if p.MaxAge > 0 {
		at, ok := authTime(claims)
		if !ok || b.now().Sub(at) > time.Duration(p.MaxAge)*time.Second {
			ref.MaxAge = &p.MaxAge
			if ref.Description == "" {
				ref.Description = "this route needs a recent login: log in again with this max_age"
			}
		}
	}
	if ref.Description == "" {
		return nil
	}
	if ref.MaxAge != nil && ref.ACRValues != "" {
		ref.Description = "this route needs a stronger, recent login: log in again with these acr_values and max_age"
	}
	return ref
}

// refuse answers a policy refusal, with the RFC 6750 / RFC 9470
// challenge beside the JSON.
func (b *Engine) refuse(req *Request, ref *policyRefusal) Result {
	ref.Authenticated = true
	status := http.StatusUnauthorized
	if ref.Error == CodeInsufficientScope {
		status = http.StatusForbidden
	}
	r := b.json(req, status, ref)
	r.code = ref.Error
	r.Header.Set("WWW-Authenticate", ref.challenge())
	return r
}

// challenge is the WWW-Authenticate value of a refusal. Every value in it
// passed validScopeToken or is a number, so quoting needs no escapes.
func (ref *policyRefusal) challenge() string {
	c := `Bearer error="` + string(ref.Error) + `"`
	if ref.Scope != "" {
		c += `, scope="` + ref.Scope + `"`
	}
	if ref.ACRValues != "" {
		c += `, acr_values="` + ref.ACRValues + `"`
	}
	if ref.MaxAge != nil {
		c += ", max_age=" + strconv.Itoa(*ref.MaxAge)
	}
	return c
}

// matches reports whether the claims meet the rule.
func (r *ClaimRule) matches(claims map[string]any) bool {
	v, ok := lookupClaim(claims, r.Claim)
	if !ok {
		return false
	}
	if len(r.Values) == 0 {
		return v != nil && v != false && v != ""
	}
	if list, ok := v.([]any); ok {
		for _, e := range list {
			if s, ok := headerValue(e); ok && slices.Contains(r.Values, s) {
				return true
			}
		}
		return false
	}
	s, ok := headerValue(v)
	return ok && slices.Contains(r.Values, s)
}

// lookupClaim finds a claim by its whole name, or else by a dotted path
// into nested objects.
func lookupClaim(claims map[string]any, name string) (any, bool) {
	if v, ok := claims[name]; ok {
		return v, true
	}
	var cur any = claims
	for part := range strings.SplitSeq(name, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = m[part]; !ok {
			return nil, false
		}
	}
	return cur, true
}

// authTime reads the auth_time claim (seconds since the epoch).
func authTime(claims map[string]any) (time.Time, bool) {
	f, ok := claims["auth_time"].(float64)
	if !ok || f <= 0 || f > 1<<40 {
		return time.Time{}, false
	}
	return time.Unix(int64(f), 0), true
}

// Limits on the ID token claims a session keeps for policies.
const (
	maxTokenClaims     = 4 << 10 // bytes of the JSON object
	maxTokenClaimValue = 1 << 10 // bytes of one claim's JSON value
)

// protocolClaims are ID token claims that say nothing a policy asks.
var protocolClaims = map[string]bool{
	"iss": true, "aud": true, "exp": true, "iat": true, "nbf": true, "jti": true, "nonce": true,
	"at_hash": true, "c_hash": true, "s_hash": true, "azp": true, "sid": true,
}

// tokenClaims keeps the ID token's claims for route policies, as
// Session.TokenClaims: acr, amr and auth_time first, then the others by
// name, each at most 1 KiB of JSON, at most 4 KiB in all; the protocol's
// own claims are dropped.
func tokenClaims(all map[string]any) string {
	names := make([]string, 0, len(all))
	for n := range all {
		if !protocolClaims[n] && n != "acr" && n != "amr" && n != "auth_time" {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	names = append([]string{"acr", "amr", "auth_time"}, names...)
	out := []byte{'{'}
	for _, n := range names {
		v, ok := all[n]
		if !ok {
			continue
		}
		k, _ := json.Marshal(n)
		val, err := json.Marshal(v)
		if err != nil || len(val) > maxTokenClaimValue || len(out)+len(k)+len(val)+2 > maxTokenClaims {
			continue
		}
		if len(out) > 1 {
			out = append(out, ',')
		}
		out = append(append(append(out, k...), ':'), val...)
	}
	return string(append(out, '}'))
}
