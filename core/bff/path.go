package bff

import (
	"net/url"
	"strings"
	"unicode/utf8"
)

// SafePath reports whether an escaped request path (as received, without
// the query) means the same thing to every server that might read it: the
// gateway choosing a route or listen path, the BFF matching its own paths
// and public_paths, and the upstream that finally serves it. A path that
// one of them could read as another path is refused, since the BFF decides
// on one reading and the upstream may act on another (CWE-22, "path
// confusion"). Refused, in any segment, raw or percent-encoded (also
// encoded twice): the dot segments "." and ".." (also before a ";"
// parameter, as Tomcat and Jetty read "..;"), "/" and "\" hidden in an
// escape, NUL and other control characters, and escapes that do not
// decode to UTF-8 (overlong forms such as %c0%ae). Plain paths, "%20",
// "%40" and other escapes of ordinary characters pass.
//
// Every adapter calls it, through Handle, on the exact path it forwards.
func SafePath(p string) bool {
	if p == "" || p[0] != '/' {
		return false
	}
	for i := 0; i < len(p); i++ {
		if c := p[i]; c < 0x20 || c == 0x7f || c == '\\' {
			return false
		}
	}
	if !strings.Contains(p, ".") && !strings.Contains(p, "%") {
		return true // the common case costs one scan
	}
	for seg := range strings.SplitSeq(p[1:], "/") {
		if !safeSegment(seg) {
			return false
		}
	}
	return true
}

// safeSegment checks one segment of an escaped path, decoding it up to
// three times so that double encodings are seen for what an upstream that
// decodes again would read.
func safeSegment(seg string) bool {
	for range 3 {
		if dotSegment(seg) {
			return false
		}
		if !strings.Contains(seg, "%") {
			return true
		}
		dec, err := url.PathUnescape(seg)
		if err != nil {
			// A stray "%" is an error to Go; other servers pass it on, and
			// an upstream would then read it as it likes.
			return false
		}
		if strings.ContainsAny(dec, "/\\") || !utf8.ValidString(dec) {
			return false
		}
		for i := 0; i < len(dec); i++ {
			if c := dec[i]; c < 0x20 || c == 0x7f {
				return false
			}
		}
		seg = dec
	}
	return !dotSegment(seg) && !strings.Contains(seg, "%") // no fourth encoding
}

// dotSegment reports whether seg is "." or "..", alone or before a ";"
// path parameter.
func dotSegment(seg string) bool {
	seg, _, _ = strings.Cut(seg, ";")
	return seg == "." || seg == ".."
}

// isLocalPath reports whether p is a path on this site that no browser
// resolves to another origin: one leading slash, then no slash or
// backslash, and no control characters anywhere.
func isLocalPath(p string) bool {
	if p == "" || p[0] != '/' {
		return false
	}
	if len(p) > 1 && (p[1] == '/' || p[1] == '\\') {
		return false
	}
	for i := 0; i < len(p); i++ {
		if p[i] < 0x20 || p[i] == 0x7f || p[i] == '\\' {
			return false
		}
	}
	// Percent-encoded slashes or backslashes right after the first slash
	// decode to the same tricks in some routers.
	lower := strings.ToLower(p)
	return !strings.HasPrefix(lower, "/%2f") && !strings.HasPrefix(lower, "/%5c")
}
