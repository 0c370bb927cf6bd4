package serve

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"testing"
	"time"

	"github.com/bffgate/bffgate/core/session/memstore"
)

// BenchmarkProxy is one authenticated API request through bffgate serve's
// handler, beside the same request through a bare httputil.ReverseProxy
// with serve's transport and copy buffers (the limit for a Go BFF), over real loopback
// connections to the same upstream, in one run: the ratio of the two
// sub-benchmarks is what serve adds, HTTP included, which the engine's own
// benchmark (core/bff) leaves out. Profile with
//
//	go test -run '^$' -bench Proxy -cpuprofile cpu.out ./internal/serve
func BenchmarkProxy(b *testing.B) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") == "" {
			http.Error(w, "no token", http.StatusUnauthorized)
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
		r.Header.Set("Authorization", "Bearer bare")
		bare.ServeHTTP(w, r)
	}))
	defer bareSrv.Close()

	store := memstore.New(time.Now)
	c := testConfig(b, up.URL)
	c.BFF.Store = store
	c.AccessLog = "off"
	p, err := New(c)
	if err != nil {
		b.Fatal(err)
	}
	defer p.Engine.Close()
	bffSrv := httptest.NewServer(p.Handler)
	defer bffSrv.Close()
	cookie := plantSession(b, store, c.BFF.Issuer, "access-token-of-alice")

	for _, tt := range []struct {
		name, url string
		header    http.Header
	}{
		{"bare", bareSrv.URL + "/api/orders", http.Header{}},
		{"bffgate", bffSrv.URL + "/api/orders", http.Header{"Cookie": {cookie}, "X-Csrf": {"1"}}},
	} {
		b.Run(tt.name, func(b *testing.B) {
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
			defer client.CloseIdleConnections()
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					req, _ := http.NewRequest("GET", tt.url, nil)
					req.Header = tt.header.Clone()
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
