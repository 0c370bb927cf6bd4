package bff

import (
	"net/http"
	"strconv"
	"strings"
)

// Cookies are read straight from the Cookie header values: net/http's
// parser allocates every cookie of the request, and the hot path needs one.

// forEachCookie calls fn for each name=value pair in the Cookie headers,
// until fn returns false. Pairs without '=' are skipped.
func forEachCookie(h http.Header, fn func(name, value string) bool) {
	for _, line := range h["Cookie"] {
		for line != "" {
			var pair string
			pair, line, _ = strings.Cut(line, ";")
			name, value, ok := strings.Cut(strings.TrimSpace(pair), "=")
			if !ok {
				continue
			}
			if !fn(strings.TrimSpace(name), trimQuotes(strings.TrimSpace(value))) {
				return
			}
		}
	}
}

// trimQuotes removes the optional double quotes around a cookie value
// (RFC 6265 §4.1.1).
func trimQuotes(v string) string {
	if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
		return v[1 : len(v)-1]
	}
	return v
}

// cookieValue returns the value of the first cookie called name.
func cookieValue(h http.Header, name string) (value string, ok bool) {
	forEachCookie(h, func(n, v string) bool {
		if n == name {
			value, ok = v, true
			return false
		}
		return true
	})
	return value, ok
}

func cookieBytes(h http.Header) int {
	n := 0
	for _, line := range h["Cookie"] {
		n += len(line)
	}
	return n
}

// ownCookie reports whether a cookie is the BFF's: the session cookie, a
// login cookie or DBSC's bound cookie. The upstream never sees those.
func (b *Engine) ownCookie(name string) bool {
	return name == b.cfg.CookieName || strings.HasPrefix(name, b.loginPrefix) || (b.dbsc != nil && name == b.dbsc.cookie)
}

// upstreamCookie returns the Cookie header the upstream should see: the
// client's cookies without the BFF's own. changed is false when the client
// sent none of the BFF's cookies; value is "" when nothing is left.
func (b *Engine) upstreamCookie(h http.Header) (value string, changed bool) {
	var kept strings.Builder
	forEachCookie(h, func(n, v string) bool {
		if b.ownCookie(n) {
			changed = true
			return true
		}
		if kept.Len() > 0 {
			kept.WriteString("; ")
		}
		kept.WriteString(n)
		kept.WriteByte('=')
		kept.WriteString(v)
		return true
	})
	if !changed {
		return "", false
	}
	return kept.String(), true
}

// StripCookies removes the BFF's own cookies from h, for requests that
// bypass Handle (public routes of a proxy) but must not leak the session
// cookie upstream either.
func (b *Engine) StripCookies(h http.Header) {
	if v, changed := b.upstreamCookie(h); changed {
		if v == "" {
			h.Del("Cookie")
		} else {
			h.Set("Cookie", v)
		}
	}
}

// cookie builds a Set-Cookie header value. The BFF's cookies are always
// Secure and HttpOnly on Path=/ with no Domain, which the __Host- prefix
// requires. maxAge < 0 deletes the cookie.
func (b *Engine) cookie(name, value string, maxAge int, sameSite string) string {
	var s strings.Builder
	s.WriteString(name)
	s.WriteByte('=')
	s.WriteString(value)
	s.WriteString("; Path=/; Secure; HttpOnly; SameSite=")
	s.WriteString(sameSite)
	if maxAge < 0 {
		s.WriteString("; Max-Age=0")
	} else if maxAge > 0 {
		s.WriteString("; Max-Age=")
		s.WriteString(strconv.Itoa(maxAge))
	}
	return s.String()
}

func (b *Engine) sessionCookie(id string) string {
	ss := "Lax"
	if b.cfg.CookieSameSite == "strict" {
		ss = "Strict"
	}
	return b.cookie(b.cfg.CookieName, id, b.cfg.SessionMaxLifetime, ss)
}

func (b *Engine) clearSessionCookie() string {
	return b.cookie(b.cfg.CookieName, "", -1, "Lax")
}
