package tykhost_test

import (
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/bffgate/bffgate/tyk-plugin/tykhost"
)

// TestIdleUpstreamConnections checks the host keeps as many idle upstream
// connections as Tyk v5.14.0 does: with max_idle_connections_per_host 0
// (Tyk's default) net/http's 2, so a second wave of 8 concurrent requests
// opens 6 new connections; with 8, none.
func TestIdleUpstreamConnections(t *testing.T) {
	const n = 8
	for _, tt := range []struct {
		maxIdle int
		wantNew int64
	}{
		{0, n - 2},
		{n, 0},
	} {
		var conns atomic.Int64
		var inFlight sync.WaitGroup
		var release atomic.Pointer[chan struct{}] // closed when a wave's n requests are in
		up := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ch := *release.Load()
			inFlight.Done()
			<-ch // hold each request until all n are in: n connections
		}))
		up.Config.ConnState = func(_ net.Conn, s http.ConnState) {
			if s == http.StateNew {
				conns.Add(1)
			}
		}
		up.Start()
		target, _ := url.Parse(up.URL)
		gw := httptest.NewServer(tykhost.New(tykhost.API{ListenPath: "/app/", StripListenPath: true, Target: target, MaxIdleConnsPerHost: tt.maxIdle}))
		client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: n}}

		wave := func() int64 {
			before := conns.Load()
			inFlight.Add(n)
			ch := make(chan struct{})
			release.Store(&ch)
			var done sync.WaitGroup
			for range n {
				done.Add(1)
				go func() {
					defer done.Done()
					resp, err := client.Get(gw.URL + "/app/x")
					if err != nil {
						t.Error(err)
						return
					}
					resp.Body.Close()
				}()
			}
			inFlight.Wait()
			close(ch)
			done.Wait()
			return conns.Load() - before
		}
		if got := wave(); got != n {
			t.Fatalf("max_idle_connections_per_host %d: the first wave opened %d upstream connections, want %d", tt.maxIdle, got, n)
		}
		if got := wave(); got != tt.wantNew {
			t.Errorf("max_idle_connections_per_host %d: the second wave opened %d new upstream connections, want %d", tt.maxIdle, got, tt.wantNew)
		}
		gw.Close()
		up.Close()
	}
}
