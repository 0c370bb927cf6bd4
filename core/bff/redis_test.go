package bff_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/bffgate/bffgate/core/bff"
	"github.com/bffgate/bffgate/core/session/redisstore"
	"github.com/bffgate/bffgate/core/session/redisstore/redistest"
	"github.com/bffgate/bffgate/tests/flowtest"
	"github.com/bffgate/bffgate/tests/op"
)

// The engine on real Redis: the flow on each topology, two gateway nodes
// sharing sessions and refreshing once, and an outage.

func uniquePrefix(t *testing.T) string {
	var b [6]byte
	rand.Read(b[:])
	return "bffgate-test:" + hex.EncodeToString(b[:]) + ":"
}

// redisEnv is newEnv with the sessions in Redis, configured through
// bff.Config.Redis as a user would.
func redisEnv(t *testing.T, rc redisstore.Config, edit func(c *bff.Config)) *env {
	t.Helper()
	if rc.KeyPrefix == "" {
		rc.KeyPrefix = uniquePrefix(t)
	}
	e := newEnv(t, func(c *bff.Config) {
		c.Store = nil
		c.Redis = rc
		if edit != nil {
			edit(c)
		}
	})
	t.Cleanup(func() { e.eng.Close() })
	return e
}

// apiOK asserts that an API request with the browser's session succeeds.
func (e *env) apiOK(c *http.Client) {
	e.t.Helper()
	if r := e.do(c, "GET", "/api/x", "X-CSRF", "1"); r.Status != http.StatusOK {
		e.t.Fatalf("API status = %d (body %s)", r.Status, r.Body)
	}
}

func TestRedisTopologies(t *testing.T) {
	tests := []struct {
		name  string
		redis func(t *testing.T) redisstore.Config
	}{
		{"standalone", func(t *testing.T) redisstore.Config { return redisstore.Config{URL: redistest.URL(t)} }},
		{"cluster", func(t *testing.T) redisstore.Config {
			return redisstore.Config{Addrs: redistest.StartCluster(t, 3).Addrs}
		}},
		{"sentinel", func(t *testing.T) redisstore.Config {
			s := redistest.StartSentinel(t)
			return redisstore.Config{Addrs: s.Addrs, MasterName: redistest.MasterName, DB: 2}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := redisEnv(t, tt.redis(t), nil)
			c := e.browser()
			e.login(c, op.AliceUser, op.AlicePassword)
			e.apiOK(c)
			first := e.up.Last(t).Header.Get("Authorization")
			e.clock.Advance(45 * time.Second) // near expiry: refresh
			e.apiOK(c)
			if e.up.Last(t).Header.Get("Authorization") == first {
				t.Fatal("no refresh on Redis")
			}
			if r := e.do(c, "POST", "/logout", "X-CSRF", "1"); r.Status != http.StatusOK {
				t.Fatalf("logout: %d", r.Status)
			}
			e.do(c, "GET", "/api/x", "X-CSRF", "1").WantError(t, http.StatusUnauthorized, "unauthenticated")
		})
	}
}

// Two gateway nodes share one Redis: a session made on one works on the
// other, and 100 concurrent requests across both with the access token
// about to expire cause exactly one refresh at the provider.
func TestRedisTwoNodesRefreshOnce(t *testing.T) {
	rc := redisstore.Config{URL: redistest.URL(t), KeyPrefix: uniquePrefix(t)}
	e := redisEnv(t, rc, nil)
	c := e.browser()
	e.login(c, op.AliceUser, op.AlicePassword)

	// Node B: another engine on the same Redis, the same keys and clock.
	nodeB, err := bff.New(bff.Config{
		Issuer: e.op.Issuer, ClientID: e.op.ClientID, ClientSecret: e.op.ClientSecret,
		RedirectURL: e.bff.URL + "/oauth/callback", CookieKeys: []string{cookieKey},
		Redis: rc, Now: e.clock.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer nodeB.Close()
	target, _ := url.Parse(e.upURL)
	b := httptest.NewServer(nodeB.Middleware(httputil.NewSingleHostReverseProxy(target)))
	defer b.Close()
	onB := b.URL + "/api/x"
	if r := e.do(c, "GET", onB, "X-CSRF", "1"); r.Status != http.StatusOK {
		t.Fatalf("the session made on node A does not work on node B: %d %s", r.Status, r.Body)
	}

	e.clock.Advance(45 * time.Second)
	before := e.grants(op.GrantRefreshToken)
	var wg sync.WaitGroup
	fails := make(chan string, 100)
	for i := range 100 {
		wg.Go(func() {
			target := e.bff.URL + "/api/x"
			if i%2 == 1 {
				target = onB
			}
			req, _ := http.NewRequest("GET", target, nil)
			req.Header.Set("X-CSRF", "1")
			resp, err := c.Do(req)
			if err != nil {
				fails <- err.Error()
				return
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				fails <- resp.Status
			}
		})
	}
	wg.Wait()
	close(fails)
	for f := range fails {
		t.Errorf("a request failed during the shared refresh: %s", f)
	}
	if n := e.grants(op.GrantRefreshToken) - before; n != 1 {
		t.Fatalf("the provider saw %d refresh grants from two nodes, want exactly 1", n)
	}
	st, _ := e.op.Stats(context.Background())
	if st.GrantErrors[op.GrantRefreshToken] != 0 {
		t.Fatalf("the provider refused %d refresh grants", st.GrantErrors[op.GrantRefreshToken])
	}
}

// Redis goes away mid-run: requests fail closed with 503 and reach no
// upstream; Redis comes back: the same session works, with no restart.
func TestRedisOutage(t *testing.T) {
	srv := redistest.Start(t, "--appendonly", "yes", "--appendfsync", "always")
	e := redisEnv(t, redisstore.Config{URL: "redis://" + srv.Addr}, nil)
	c := e.browser()
	e.login(c, op.AliceUser, op.AlicePassword)
	e.apiOK(c)
	forwarded := e.up.Count()

	srv.Stop(t)
	e.do(c, "GET", "/api/x", "X-CSRF", "1").WantError(t, http.StatusServiceUnavailable, "session_store_unavailable")
	e.do(c, "GET", "/session").WantError(t, http.StatusServiceUnavailable, "session_store_unavailable")
	if e.up.Count() != forwarded {
		t.Fatal("a request was forwarded while Redis was down")
	}
	// Starting a login needs no store.
	e.startLogin(e.browser(), "")

	srv.Restart(t)
	e.apiOK(c)
	if r := e.do(c, "GET", "/session"); r.Status != http.StatusOK {
		t.Fatalf("after Redis came back, /session = %d", r.Status)
	}
}

// The Sentinel's master dies mid-session: after the failover the same
// engine and the same session work on the promoted replica.
func TestRedisSentinelFailover(t *testing.T) {
	s := redistest.StartSentinel(t)
	e := redisEnv(t, redisstore.Config{Addrs: s.Addrs, MasterName: redistest.MasterName}, nil)
	c := e.browser()
	e.login(c, op.AliceUser, op.AlicePassword)
	e.apiOK(c)
	// Wait until the replica has the session (replication is async).
	replica := s.Replica.Client(t, 0)
	deadline := time.Now().Add(10 * time.Second)
	for {
		n, err := replica.DBSize(context.Background()).Result()
		if err == nil && n > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the replica never received the session")
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.Master.Kill(t)
	s.WaitMaster(t, s.Replica.Addr, 20*time.Second)
	// The first requests after a failover may still meet the old master's
	// closed connections; the engine answers 503 and recovers by itself.
	deadline = time.Now().Add(10 * time.Second)
	for {
		r := e.do(c, "GET", "/api/x", "X-CSRF", "1")
		if r.Status == http.StatusOK {
			break
		}
		if r.Status != http.StatusServiceUnavailable || time.Now().After(deadline) {
			t.Fatalf("after the failover: %d %s", r.Status, r.Body)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// onRefreshAnswer calls fn once, after the provider has answered a refresh
// grant and before the answer reaches the engine.
type onRefreshAnswer struct {
	once sync.Once
	fn   func()
	next http.RoundTripper
}

func (o *onRefreshAnswer) RoundTrip(r *http.Request) (*http.Response, error) {
	refresh := false
	if r.Body != nil {
		body, _ := io.ReadAll(r.Body)
		refresh = bytes.Contains(body, []byte("grant_type=refresh_token"))
		r.Body = io.NopCloser(bytes.NewReader(body))
	}
	resp, err := o.next.RoundTrip(r)
	if err == nil && refresh {
		o.once.Do(o.fn)
	}
	return resp, err
}

// TestRedisLostBetweenAnswerAndSave is issue #11 D4 on real Redis: Redis
// goes down after the provider rotated the refresh token and before the
// engine saved it. The save is retried until Redis is back, so the
// rotated token is kept and the session lives on.
func TestRedisLostBetweenAnswerAndSave(t *testing.T) {
	srv := redistest.Start(t, "--appendonly", "yes", "--appendfsync", "always")
	stopped := make(chan struct{})
	tap := &onRefreshAnswer{next: http.DefaultTransport, fn: func() {
		srv.Stop(t)
		close(stopped)
	}}
	e := redisEnv(t, redisstore.Config{URL: "redis://" + srv.Addr}, func(c *bff.Config) {
		c.HTTPClient = &http.Client{Timeout: 10 * time.Second, Transport: tap}
	})
	c := e.browser()
	e.login(c, op.AliceUser, op.AlicePassword)
	e.clock.Advance(61 * time.Second) // the access token has expired
	done := make(chan *flowtest.Response, 1)
	go func() { done <- e.do(c, "GET", "/api/x", "X-CSRF", "1") }()
	<-stopped
	time.Sleep(300 * time.Millisecond) // the save fails meanwhile
	srv.Restart(t)
	if r := <-done; r.Status != http.StatusOK {
		t.Fatalf("the request that refreshed: %d %s, want 200 once Redis was back", r.Status, r.Body)
	}
	// The rotated refresh token was saved: the next refresh works (a lost
	// one would have the provider revoke the grant).
	e.clock.Advance(61 * time.Second)
	e.apiOK(c)
	if n := e.grants(op.GrantRefreshToken); n != 2 {
		t.Fatalf("the provider saw %d refresh grants, want 2", n)
	}
}
