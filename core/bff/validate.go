package bff

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/bffgate/bffgate/core/internal/envsecret"
)

// validate checks a config that has its defaults and resolves its secrets;
// every error names the field and says how to fix it.
func (c *Config) validate() (keys [][32]byte, err error) {
	for _, check := range []func() error{c.validateClient, c.validateFAPI, c.validatePaths, c.validateCookies, c.validateDurations, c.validateRequests, c.validateForwarding, c.validateDBSC, c.validateRoute} {
		if err := check(); err != nil {
			return nil, err
		}
	}
	return c.cookieKeys()
}

// validateClient checks the provider and client fields, and resolves the client secret.
func (c *Config) validateClient() error {
	if c.Issuer == "" {
		return cfgErr("issuer", "is empty: set it to the OpenID Provider's issuer URL, e.g. https://idp.example.com/realms/main")
	}
	if u, err := url.Parse(c.Issuer); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return cfgErr("issuer", "%q is not an absolute http(s) URL", c.Issuer)
	}
	if c.ClientID == "" {
		return cfgErr("client_id", "is empty: set it to the client ID registered at the OpenID Provider")
	}
	var err error
	if c.ClientSecret, err = resolveSecret("client_secret", c.ClientSecret); err != nil {
		return err
	}
	if c.ClientSecret == "" && (c.ClientAuthMethod == AuthSecretBasic || c.ClientAuthMethod == AuthSecretPost) {
		return cfgErr("client_secret", `is empty: bffgate is a confidential client; set the client's secret, or "env:NAME" to read it from the environment`)
	}
	if err := absoluteURL("redirect_url", c.RedirectURL, true); err != nil {
		return err
	}
	if err := absoluteURL("post_logout_redirect_url", c.PostLogoutRedirectURL, false); err != nil {
		return err
	}
	if !slices.Contains(c.Scopes, "openid") {
		return cfgErr("scopes", `lacks "openid": bffgate needs an ID token; add it`)
	}
	if c.PushedAuthorization != PARAuto && c.PushedAuthorization != PAROff && c.PushedAuthorization != PARRequired {
		return cfgErr("pushed_authorization", "%q: use %q, %q or %q", c.PushedAuthorization, PARAuto, PARRequired, PAROff)
	}
	if c.Mode != ModeBFF && c.Mode != ModeTokenMediating {
		return cfgErr("mode", "%q is not a mode: use %q or %q", c.Mode, ModeBFF, ModeTokenMediating)
	}
	return nil
}

// validatePaths checks the path prefix and the endpoints' paths.
func (c *Config) validatePaths() error {
	if c.PathPrefix != "" && (!strings.HasPrefix(c.PathPrefix, "/") || strings.HasSuffix(c.PathPrefix, "/")) {
		return cfgErr("path_prefix", "%q must start with / and not end with one, e.g. /app", c.PathPrefix)
	}
	seen := map[string]string{}
	for _, p := range c.paths() {
		if !strings.HasPrefix(*p.path, "/") || strings.ContainsAny(*p.path, "?#% ") {
			return cfgErr("paths."+p.field, "%q must be a plain path starting with /", *p.path)
		}
		if other, dup := seen[*p.path]; dup {
			return cfgErr("paths."+p.field, "%q is also paths.%s: give each endpoint its own path", *p.path, other)
		}
		seen[*p.path] = p.field
	}
	return nil
}

// validateCookies checks the cookie name and attributes.
func (c *Config) validateCookies() error {
	if !validCookieName(c.CookieName) {
		return cfgErr("cookie_name", "%q is not a valid cookie name", c.CookieName)
	}
	if c.CookieSameSite != "lax" && c.CookieSameSite != "strict" {
		return cfgErr("cookie_same_site", `%q: use "lax" or "strict"`, c.CookieSameSite)
	}
	if len(c.CookieKeys) == 0 {
		return cfgErr("cookie_keys", "is empty: add a key made with `openssl rand -base64 32` (the same on every gateway node)")
	}
	return nil
}

// cookieKeys resolves and decodes the cookie keys.
func (c *Config) cookieKeys() (keys [][32]byte, err error) {
	for i, k := range c.CookieKeys {
		field := fmt.Sprintf("cookie_keys[%d]", i)
		v, err := resolveSecret(field, k)
		if err != nil {
			return nil, err
		}
		b, err := decodeKey(v)
		if err != nil {
			return nil, cfgErr(field, "is not a base64 32-byte key: make one with `openssl rand -base64 32`")
		}
		keys = append(keys, b)
	}
	return keys, nil
}

// validateDurations checks the timeouts.
func (c *Config) validateDurations() error {
	for _, d := range []struct {
		field string
		v     int
	}{
		{"session_idle_timeout", c.SessionIdleTimeout}, {"session_max_lifetime", c.SessionMaxLifetime},
		{"refresh_skew", c.RefreshSkew}, {"token_max_lifetime", c.TokenMaxLifetime}, {"http_timeout", c.HTTPTimeout},
		{"session_max_per_user", c.SessionMaxPerUser},
	} {
		if d.v < 0 {
			return cfgErr(d.field, "is %d: give a positive number of seconds, or 0 for the default", d.v)
		}
	}
	if c.SessionIdleTimeout > c.SessionMaxLifetime {
		return cfgErr("session_idle_timeout", "(%d s) is longer than session_max_lifetime (%d s): lower it", c.SessionIdleTimeout, c.SessionMaxLifetime)
	}
	return nil
}

// validateRequests checks the CSRF header, the allowed origins and the
// paths the browser is sent back to.
func (c *Config) validateRequests() error {
	if c.CSRFHeader == "" || !validHeaderName(c.CSRFHeader) {
		return cfgErr("csrf_header", "%q is not a header name", c.CSRFHeader)
	}
	for i, o := range c.AllowedOrigins {
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.Path != "" || u.RawQuery != "" || u.User != nil {
			return cfgErr(fmt.Sprintf("allowed_origins[%d]", i), "%q is not an origin: write scheme://host[:port] with no path, e.g. https://spa.example.com", o)
		}
	}
	if !isLocalPath(c.DefaultReturnTo) {
		return cfgErr("default_return_to", "%q must be a path on this site, starting with a single /", c.DefaultReturnTo)
	}
	if c.LoginErrorPath != "" && !isLocalPath(c.LoginErrorPath) {
		return cfgErr("login_error_path", "%q must be a path on this site, starting with a single /", c.LoginErrorPath)
	}
	if !isLocalPath(c.PostLogoutReturnTo) {
		return cfgErr("post_logout_return_to", "%q must be a path on this site, starting with a single /", c.PostLogoutReturnTo)
	}
	return nil
}

// validateForwarding checks what decides on forwarded requests: public
// paths, methods and identity headers.
func (c *Config) validateForwarding() error {
	for i, p := range c.PublicPaths {
		if !SafePath(p) || strings.ContainsAny(p, "?#") {
			return cfgErr(fmt.Sprintf("public_paths[%d]", i), "%q must be a plain path prefix starting with /, e.g. /static/", p)
		}
	}
	for i, m := range c.AllowedMethods {
		field := fmt.Sprintf("allowed_methods[%d]", i)
		if !validHeaderName(m) || m != strings.ToUpper(m) {
			return cfgErr(field, "%q is not a method: write it in capitals, e.g. GET", m)
		}
		if m == "TRACE" || m == "TRACK" || m == "CONNECT" {
			return cfgErr(field, "%s cannot be forwarded with the session's token: remove it", m)
		}
	}
	if err := c.Policy.Validate("policy"); err != nil {
		return err
	}
	for i, h := range c.IdentityHeaders {
		field := fmt.Sprintf("identity_headers[%d]", i)
		if !validHeaderName(h.Header) || h.Claim == "" {
			return cfgErr(field, "needs a header name and a claim, e.g. {\"header\": \"X-User-Id\", \"claim\": \"sub\"}")
		}
		if k := http.CanonicalHeaderKey(h.Header); k == "Authorization" || k == "Cookie" || k == http.CanonicalHeaderKey(c.CSRFHeader) {
			return cfgErr(field+".header", "%q is managed by bffgate itself: choose another header", h.Header)
		}
	}
	return nil
}

// resolveSecret reads an "env:NAME" value from the environment.
func resolveSecret(field, v string) (string, error) {
	s, err := envsecret.Resolve(v)
	if err != nil {
		return "", cfgErr(field, "%v", err)
	}
	return s, nil
}

func absoluteURL(field, v string, required bool) error {
	if v == "" {
		if required {
			return cfgErr(field, "is empty: set the absolute URL the browser reaches, e.g. https://app.example.com/oauth/callback, and register it at the provider")
		}
		return nil
	}
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.Fragment != "" {
		return cfgErr(field, "%q is not an absolute http(s) URL without a fragment", v)
	}
	return nil
}

func decodeKey(s string) (k [32]byte, err error) {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.RawURLEncoding} {
		b, err := enc.DecodeString(strings.TrimSpace(s))
		if err == nil && len(b) == 32 {
			copy(k[:], b)
			return k, nil
		}
	}
	return k, errors.New("not a base64 32-byte key")
}

func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isTokenChar(s[i]) {
			return false
		}
	}
	return true
}

func validCookieName(s string) bool { return validHeaderName(s) }

// isTokenChar reports whether c may appear in an HTTP token (RFC 9110 §5.6.2).
func isTokenChar(c byte) bool {
	return c < 0x7f && c > ' ' && !strings.ContainsRune("\"(),/:;<=>?@[\\]{}", rune(c))
}
