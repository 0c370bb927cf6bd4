package bff

import (
	"net/http"
	"strings"
)

// Headers the gateway or the BFF sets upstream, whose look-alikes a client
// must not be able to slip past: a header named X_Forwarded_For or
// x-user_id is a different header to the gateway but the same one to CGI,
// WSGI, PHP and Rack upstreams, which read both as HTTP_X_..._... (the
// class of oauth2-proxy's CVE-2025-64484).
var gatewayHeaders = []string{
	"Authorization", "Forwarded", "X-Forwarded-For", "X-Forwarded-Host",
	"X-Forwarded-Proto", "X-Forwarded-Port", "X-Forwarded-Prefix", "X-Real-Ip",
}

// canonicalDashed reports whether name is in canonical form (as net/http
// keeps header names) with no "_": then it can only be an alias of a
// managed header by being that header. Adapters that hand over other
// forms (lower case, "_") get those checked.
func canonicalDashed(name string) bool {
	upper := true
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c == '_':
			return false
		case upper && 'a' <= c && c <= 'z', !upper && 'A' <= c && c <= 'Z':
			return false
		}
		upper = c == '-'
	}
	return true
}

// sameHeaderCGI reports whether two header names are the same header to a
// CGI-style upstream: equal but for ASCII case and "_" for "-".
func sameHeaderCGI(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		if cgiByte(a[i]) != cgiByte(b[i]) {
			return false
		}
	}
	return true
}

func cgiByte(c byte) byte {
	switch {
	case c == '_':
		return '-'
	case 'A' <= c && c <= 'Z':
		return c + 'a' - 'A'
	}
	return c
}

// headerDel returns the names to remove from a request before it goes
// upstream: the identity headers under their own names, and every header
// that only a CGI-style upstream would read as one of them or as a
// gateway header. The common request has none of the aliases and gets
// the configured names, shared: callers append to it only through a
// capacity-capped slice (Result.setOrDel).
func (b *Engine) headerDel(h http.Header) []string {
	del := b.identityDel
	for name := range h {
		if !canonicalDashed(name) && b.aliasOfManaged(name) {
			del = append(del[:len(del):len(del)], name) // a copy: never b.identityDel's array
		}
	}
	return del
}

// aliasOfManaged reports whether name, not itself a managed name written
// canonically, is read as one by some upstream.
func (b *Engine) aliasOfManaged(name string) bool {
	for _, m := range b.identityDel {
		if name != m && sameHeaderCGI(name, m) {
			return true
		}
	}
	for _, m := range gatewayHeaders {
		if name != m && sameHeaderCGI(name, m) {
			return true
		}
	}
	return false
}

// connectionTokens returns the Connection header a forwarded request may
// keep. A proxy removes every header its client names in Connection (RFC
// 9110 §7.6.1), and net/http, Tyk and Envoy do so after the BFF has set
// its headers: "Connection: Authorization" would strip the bearer, and
// "Connection: X-User-Id" the identity header. Only the connection options
// proxies act on themselves are kept. changed reports whether the header
// must be rewritten (to v, or removed when v is "").
func connectionTokens(h http.Header) (v string, changed bool) {
	lines, ok := h["Connection"]
	if !ok {
		return "", false
	}
	var kept []string
	for _, line := range lines {
		for tok := range strings.SplitSeq(line, ",") {
			tok = strings.TrimSpace(tok)
			switch strings.ToLower(tok) {
			case "close", "keep-alive", "upgrade":
				kept = append(kept, tok)
			case "":
			default:
				changed = true
			}
		}
	}
	if !changed && len(lines) == 1 {
		return "", false
	}
	return strings.Join(kept, ", "), true
}
