package extauthz

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"testing"

	"github.com/bffgate/bffgate/internal/extauthz/extauthztest"
)

// Traefik and Envoy cannot be installed on the machines these tests run
// on. These tests run the same flow as TestNginx and TestCaddy through
// small Go stand-ins that implement each proxy's documented contract,
// configured as docs/extauthz.md configures the real one: they prove the
// contract bffgate answers, not the proxies themselves.

// bffPaths are the BFF endpoints the docs route to bffgate directly.
var bffPaths = map[string]bool{"/login": true, "/oauth/callback": true, "/session": true, "/token": true,
	"/logout": true, "/logout/callback": true, "/backchannel-logout": true}

// The header lists of the docs' Traefik (authResponseHeaders) and Envoy
// (allowed_upstream_headers) configurations.
var (
	traefikResponseHeaders = []string{"Authorization", "Cookie", "X-User"}
	envoyUpstreamHeaders   = []string{"authorization", "cookie", "x-user"}
)

// hopByHop are the headers a proxy does not pass on.
var hopByHop = []string{"Connection", "Keep-Alive", "Proxy-Connection", "Te", "Trailer", "Transfer-Encoding", "Upgrade"}

func proxyTo(base string, header func(h http.Header)) http.Handler {
	u, _ := url.Parse(base)
	return &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) {
		pr.SetURL(u)
		pr.Out.Host = pr.In.Host
		if header != nil {
			header(pr.Out.Header)
		}
	}}
}

// relay writes a denial from the auth service to the client as it came.
func relay(w http.ResponseWriter, resp *http.Response) {
	for name, v := range resp.Header {
		w.Header()[name] = v
	}
	for _, name := range hopByHop {
		w.Header().Del(name)
	}
	w.WriteHeader(resp.StatusCode)
	io.Copy(w, resp.Body)
}

func ask(t *testing.T, w http.ResponseWriter, req *http.Request) (*http.Response, bool) {
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		t.Errorf("auth request: %v", err)
		http.Error(w, "auth service unreachable", http.StatusInternalServerError)
		return nil, false
	}
	return resp, true
}

// fakeTraefik is Traefik's forwardAuth middleware, chained as the docs
// chain it (set the secret, forwardAuth, drop the secret): a GET to the
// address with the client's headers and X-Forwarded-Method, -Proto, -Host,
// -Uri; a non-2xx answer goes to the client (status, headers, body); on a
// 2xx each header in authResponseHeaders is deleted from the request and
// copied from the answer, and the request goes upstream.
func fakeTraefik(t *testing.T, s *stack) http.Handler {
	direct := proxyTo(s.authz.URL, func(h http.Header) { h.Set(DefaultSecretHeader, testSecret) })
	api := proxyTo(s.api.URL, nil)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if bffPaths[r.URL.Path] {
			direct.ServeHTTP(w, r)
			return
		}
		r.Header.Set(DefaultSecretHeader, testSecret) // headers middleware
		req, _ := http.NewRequest("GET", s.authz.URL+PathForward, nil)
		req.Header = r.Header.Clone()
		for _, name := range hopByHop {
			req.Header.Del(name)
		}
		req.Header.Set("X-Forwarded-Method", r.Method)
		req.Header.Set("X-Forwarded-Proto", "http")
		req.Header.Set("X-Forwarded-Host", r.Host)
		req.Header.Set("X-Forwarded-Uri", r.URL.RequestURI())
		resp, ok := ask(t, w, req)
		if !ok {
			return
		}
		defer resp.Body.Close()
		if resp.StatusCode < 200 || resp.StatusCode > 299 {
			relay(w, resp)
			return
		}
		for _, name := range traefikResponseHeaders {
			r.Header.Del(name)
			if v := resp.Header.Values(name); len(v) > 0 {
				r.Header[name] = v
			}
		}
		r.Header.Del(DefaultSecretHeader) // headers middleware: "" removes
		api.ServeHTTP(w, r)
	})
}

// fakeEnvoy is Envoy's ext_authz HTTP filter with http_service as the
// docs configure it: the check request has the original method, the path
// prefix /_bffgate/envoy before the original path and query, every header
// (allowed_headers ".*"), the secret (headers_to_add) and no body; a 200
// sets each header of allowed_upstream_headers from the answer and removes
// those named in x-envoy-auth-headers-to-remove; any other answer goes to
// the client. The BFF's routes have ext_authz disabled and go to bffgate.
func fakeEnvoy(t *testing.T, s *stack) http.Handler {
	direct := proxyTo(s.authz.URL, func(h http.Header) { h.Set(DefaultSecretHeader, testSecret) })
	api := proxyTo(s.api.URL, nil)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if bffPaths[r.URL.Path] {
			direct.ServeHTTP(w, r)
			return
		}
		req, err := http.NewRequest(r.Method, s.authz.URL, nil)
		if err != nil {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		req.URL.Opaque = PathEnvoy + r.RequestURI // the path as received
		req.Header = r.Header.Clone()
		for _, name := range hopByHop {
			req.Header.Del(name)
		}
		req.Host = r.Host
		req.Header.Set(DefaultSecretHeader, testSecret)
		resp, ok := ask(t, w, req)
		if !ok {
			return
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			relay(w, resp)
			return
		}
		for _, name := range envoyUpstreamHeaders {
			if v := resp.Header.Values(name); len(v) > 0 {
				r.Header[http.CanonicalHeaderKey(name)] = v
			}
		}
		for name := range strings.SplitSeq(resp.Header.Get(HeaderRemove), ",") {
			if name = strings.TrimSpace(name); name != "" {
				r.Header.Del(name)
			}
		}
		api.ServeHTTP(w, r)
	})
}

func serveOn(t *testing.T, port int, h http.Handler) {
	t.Helper()
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
}

func TestTraefikEmulated(t *testing.T) {
	port := extauthztest.FreePort(t)
	s := newStack(t, port)
	serveOn(t, port, fakeTraefik(t, s))
	s.flow(t)
}

func TestEnvoyEmulated(t *testing.T) {
	port := extauthztest.FreePort(t)
	s := newStack(t, port)
	serveOn(t, port, fakeEnvoy(t, s))
	s.flow(t)
}
