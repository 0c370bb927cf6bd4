package serve

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// trusted is the trusted_proxies list: the peers whose X-Forwarded-For and
// X-Forwarded-Proto are believed.
type trusted []netip.Prefix

// parseTrusted reads trusted_proxies: CIDR prefixes or single addresses.
func parseTrusted(list []string) (trusted, error) {
	var t trusted
	for i, s := range list {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			a, aerr := netip.ParseAddr(s)
			if aerr != nil {
				return nil, fmt.Errorf("bffgate serve: config: trusted_proxies[%d]: %q is not a CIDR prefix or an IP address, e.g. \"10.0.0.0/8\"", i, s)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		t = append(t, p.Masked())
	}
	return t, nil
}

func (t trusted) has(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range t {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// client is who sent a request, as far as the proxy believes.
type client struct {
	addr    string // the client's IP address
	proto   string // "https" or "http": the scheme the client used
	trusted bool   // the peer is a trusted proxy: its X-Forwarded-For goes on upstream
}

// clientOf is the request's client (see withClient).
func clientOf(r *http.Request) client { return exchangeOf(r).client }

func peerClient(r *http.Request) client {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	c := client{addr: host, proto: "http"}
	if r.TLS != nil {
		c.proto = "https"
	}
	return c
}

// withClient works out each request's client: the peer, or, when the
// peer is a trusted proxy, the address X-Forwarded-For names (the
// rightmost one that is not itself a trusted proxy: entries to its left
// are the client's to write) and the scheme X-Forwarded-Proto names. A
// peer outside the list has its X-Forwarded-* ignored.
func withClient(h http.Handler, t trusted) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c := peerClient(r)
		if a, err := netip.ParseAddr(c.addr); err == nil && t.has(a) {
			c.trusted = true
			if p := strings.ToLower(strings.TrimSpace(r.Header.Get("X-Forwarded-Proto"))); p == "http" || p == "https" {
				c.proto = p
			}
			c.addr = forwardedFor(r.Header.Values("X-Forwarded-For"), t, c.addr)
		}
		h.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), exchangeKey{}, &exchange{client: c})))
	})
}

// forwardedFor is the client's address from X-Forwarded-For values sent
// by a trusted proxy: walking from the right, the first address that is
// not a trusted proxy, or the leftmost when all are; peer when there is
// no valid entry.
func forwardedFor(values []string, t trusted, peer string) string {
	var hops []string
	for _, v := range values {
		hops = append(hops, strings.Split(v, ",")...)
	}
	found := peer
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			break // a hop the proxies did not write: stop believing
		}
		found = a.Unmap().String()
		if !t.has(a) {
			break
		}
	}
	return found
}
