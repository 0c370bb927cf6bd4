package serve

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"testing"
	"time"

	"github.com/bffgate/bffgate/core/session"
	"github.com/bffgate/bffgate/core/session/memstore"
	"github.com/bffgate/bffgate/core/session/redisstore"
	"github.com/bffgate/bffgate/core/session/redisstore/redistest"
)

// BenchmarkProxy is one authenticated API request through bffgate serve's
// handler, beside the same request through a bare httputil.ReverseProxy
// with serve's transport and copy buffers (the limit for a Go BFF), over
// real loopback connections to the same upstream, in one run: the ratio
// of the sub-benchmarks is what serve adds, HTTP included, which the
// engine's own benchmark (core/bff) leaves out. The bare proxy gets the
// same request and forwards it as a BFF does (cookie off, a bearer on)
// without deciding anything. bffgate runs with the memory store, the Redis
// store (127.0.0.1:6379), and the Redis store with its read cache.
// Profile one with
//
//	go test -run '^$' -bench 'Proxy/bffgate$' -cpuprofile cpu.out ./internal/serve
func BenchmarkProxy(b *testing.B) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") == "" || r.Header.Get("Cookie") != "" {
			http.Error(w, "no token, or a cookie", http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"ok":true}`)
	}))
	defer up.Close()
	upURL, _ := url.Parse(up.URL)

	bare := &httputil.ReverseProxy{
		Rewrite:    func(pr *httputil.ProxyRequest) { pr.SetURL(upURL); pr.SetXForwarded() },
		Transport:  NewTransport(Limits{}),
		BufferPool: BufferPool,
	}
	bareSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Header.Del("Cookie")
		r.Header.Set("Authorization", "Bearer access-token-of-alice")
		bare.ServeHTTP(w, r)
	}))
	defer bareSrv.Close()

	// bffgate serves /api/orders for each store; its login cookie goes
	// to the bare proxy too.
	serve := func(b *testing.B, store session.Store) (string, string) {
		c := testConfig(b, up.URL)
		c.BFF.Store = store
		c.AccessLog = "off"
		p, err := New(c)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { p.Engine.Close() })
		srv := httptest.NewServer(p.Handler)
		b.Cleanup(srv.Close)
		return srv.URL + "/api/orders", plantSession(b, store, c.BFF.Issuer, "access-token-of-alice")
	}
	redis := func(cacheMS int) session.Store {
		s, err := redisstore.New(redisstore.Config{URL: redistest.URL(b), CacheTTLMS: cacheMS,
			KeyPrefix: fmt.Sprintf("bffgate-bench-proxy-%d:", time.Now().UnixNano())})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { s.Close() })
		return s
	}
	memURL, cookie := serve(b, memstore.New(time.Now))
	redisURL, redisCookie := serve(b, redis(0))
	cacheURL, cacheCookie := serve(b, redis(1000))

	for _, tt := range []struct{ name, url, cookie string }{
		{"bare", bareSrv.URL + "/api/orders", cookie},
		{"bffgate", memURL, cookie},
		{"bffgate-redis", redisURL, redisCookie},
		{"bffgate-redis-cache", cacheURL, cacheCookie},
	} {
		header := http.Header{"Cookie": {tt.cookie}, "X-Csrf": {"1"}}
		b.Run(tt.name, func(b *testing.B) {
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
			defer client.CloseIdleConnections()
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					req, _ := http.NewRequest("GET", tt.url, nil)
					req.Header = header.Clone()
					resp, err := client.Do(req)
					if err != nil {
						b.Error(err)
						return
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK {
						b.Errorf("status %d", resp.StatusCode)
						return
					}
				}
			})
		})
	}
}
