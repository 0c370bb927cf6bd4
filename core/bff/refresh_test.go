package bff_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bffgate/bffgate/core/bff"
	"github.com/bffgate/bffgate/core/session/memstore"
	"github.com/bffgate/bffgate/tests/op"
)

// Refreshes whose outcome the BFF could lose (issue #11 D4): with rotating
// refresh tokens, a lost answer ends the session at the next refresh,
// since the provider takes the old token's reuse for theft.

// lateRefresh delays the provider's answers to refresh grants by delay,
// after the provider has completed them (it has rotated the token by
// then). A caller that gives up meanwhile loses the answer.
type lateRefresh struct {
	delay time.Duration
	next  http.RoundTripper
}

func (l lateRefresh) RoundTrip(r *http.Request) (*http.Response, error) {
	refresh := false
	if r.Body != nil {
		body, _ := io.ReadAll(r.Body)
		refresh = bytes.Contains(body, []byte("grant_type=refresh_token"))
		r.Body = io.NopCloser(bytes.NewReader(body))
	}
	resp, err := l.next.RoundTrip(r)
	if err != nil || !refresh {
		return resp, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	select {
	case <-r.Context().Done():
		return nil, r.Context().Err()
	case <-time.After(l.delay):
		return resp, nil
	}
}

// eventually retries f every 50 ms for at most 10 s until it is true.
func eventually(t *testing.T, what string, f func() bool) {
	t.Helper()
	for range 200 {
		if f() {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s: not within 10 s", what)
}

func TestRefreshOutlivesTheRequest(t *testing.T) {
	e := newEnv(t, func(c *bff.Config) {
		c.HTTPTimeout = 1
		c.HTTPClient = &http.Client{Timeout: time.Second, Transport: lateRefresh{delay: 1500 * time.Millisecond, next: http.DefaultTransport}}
	})
	c := e.browser()
	e.login(c, op.AliceUser, op.AlicePassword)
	old := e.sessionOf(c)
	e.clock.Advance(61 * time.Second) // the access token has expired

	// The provider answers after http_timeout: the request is told so.
	e.do(c, "GET", "/api/x", "X-CSRF", "1").WantError(t, http.StatusGatewayTimeout, "idp_timeout")
	if e.up.Count() != 0 {
		t.Fatal("a request was forwarded with an expired token")
	}
	// The refresh went on and saved the provider's late answer.
	eventually(t, "the late refresh saved", func() bool { return e.sessionOf(c).RefreshToken != old.RefreshToken })
	r := e.do(c, "GET", "/api/x", "X-CSRF", "1")
	if r.Status != http.StatusOK || e.up.Last(t).Header.Get("Authorization") == "Bearer "+old.AccessToken {
		t.Fatalf("after the late refresh: status %d (body %s), want 200 with the new token", r.Status, r.Body)
	}
	// The rotated token works: a second refresh succeeds (a lost one
	// would have had the provider revoke the grant).
	e.clock.Advance(61 * time.Second)
	eventually(t, "a second refresh", func() bool {
		r := e.do(c, "GET", "/api/x", "X-CSRF", "1")
		if r.Status == http.StatusUnauthorized {
			t.Fatalf("second refresh: the session ended (%s)", r.Body)
		}
		return r.Status == http.StatusOK
	})
	if n := e.grants(op.GrantRefreshToken); n != 2 {
		t.Fatalf("the provider saw %d refresh grants, want 2", n)
	}
}

// flakyStore fails every Set while down is set.
type flakyStore struct {
	*memstore.Store
	down atomic.Bool
	sets atomic.Int32 // failed Sets
}

func (f *flakyStore) Set(ctx context.Context, key string, v []byte, ttl time.Duration, idx ...string) error {
	if f.down.Load() {
		f.sets.Add(1)
		return errors.New("connection refused")
	}
	return f.Store.Set(ctx, key, v, ttl, idx...)
}

func TestRefreshSaveRetried(t *testing.T) {
	var fs *flakyStore
	e := newEnv(t, func(c *bff.Config) {
		fs = &flakyStore{Store: c.Store.(*memstore.Store)}
		c.Store = fs
		c.HTTPTimeout = 2
	})
	c := e.browser()
	e.login(c, op.AliceUser, op.AlicePassword)
	old := e.sessionOf(c)
	e.clock.Advance(61 * time.Second)

	// The store fails the save after the provider rotated the token, and
	// comes back within the refresh's time.
	fs.down.Store(true)
	go func() {
		for fs.sets.Load() < 3 {
			time.Sleep(10 * time.Millisecond)
		}
		fs.down.Store(false)
	}()
	r := e.do(c, "GET", "/api/x", "X-CSRF", "1")
	if r.Status != http.StatusOK {
		t.Fatalf("status %d (body %s), want 200 once the save was retried", r.Status, r.Body)
	}
	if got := e.sessionOf(c); got.RefreshToken == old.RefreshToken || got.AccessToken == old.AccessToken {
		t.Fatal("the refreshed tokens were not saved")
	}
	e.clock.Advance(61 * time.Second)
	if r := e.do(c, "GET", "/api/x", "X-CSRF", "1"); r.Status != http.StatusOK {
		t.Fatalf("the next refresh: status %d (body %s), want 200 (the rotated token was kept)", r.Status, r.Body)
	}
	if n := fs.sets.Load(); n < 3 {
		t.Fatalf("%d failed saves, want at least 3", n)
	}
	if strings.Contains(string(r.Body), old.RefreshToken) {
		t.Fatal("a refresh token in a response")
	}
}
