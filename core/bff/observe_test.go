package bff_test

import (
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/bffgate/bffgate/core/bff"
	"github.com/bffgate/bffgate/tests/op"
)

// recorder is an Observer that counts what it is told.
type recorder struct {
	mu     sync.Mutex // guards counts
	counts map[string]int
}

func (r *recorder) add(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.counts[fmt.Sprintf(format, args...)]++
}

func (r *recorder) get(key string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.counts[key]
}

func (r *recorder) Request(kind string, status int, code bff.Code, _ time.Duration) {
	r.add("request %s %d %s", kind, status, code)
}
func (r *recorder) Refresh(outcome string, code bff.Code) { r.add("refresh %s %s", outcome, code) }
func (r *recorder) ProviderCall(op string, _ time.Duration, err error) {
	r.add("provider %s %v", op, err == nil)
}
func (r *recorder) StoreCall(op string, _ time.Duration, err error) {
	r.add("store %s %v", op, err == nil)
}
func (r *recorder) Session(event, reason string, n int) { r.add("session %s %s", event, reason) }

func TestObserver(t *testing.T) {
	rec := &recorder{counts: map[string]int{}}
	e := newEnv(t, func(c *bff.Config) { c.Observer = rec })
	c := e.browser()
	e.login(c, op.AliceUser, op.AlicePassword)
	e.apiOK(c)
	e.do(c, "GET", "/api/x").WantError(t, http.StatusForbidden, "csrf_header_missing")
	e.clock.Advance(45 * time.Second) // the token needs a refresh: 5 requests share one
	var wg sync.WaitGroup
	for range 5 {
		wg.Add(1)
		go func() { defer wg.Done(); e.apiOK(c) }()
	}
	wg.Wait()
	if r := e.do(c, "POST", "/logout", "X-CSRF", "1"); r.Status != http.StatusOK {
		t.Fatalf("logout: %d", r.Status)
	}
	for key, want := range map[string]int{
		"request login 302 ":                  1,
		"request callback 302 ":               1,
		"request api 0 ":                      6,
		"request api 403 csrf_header_missing": 1,
		"request logout 200 ":                 1,
		"refresh refreshed ":                  1,
		"session started ":                    1,
		"session ended logout":                1,
		"provider discovery true":             1,
		"provider par true":                   1,
	} {
		if got := rec.get(key); got != want {
			t.Errorf("%q: %d, want %d (all: %v)", key, got, want, rec.counts)
		}
	}
	// Requests that arrived while the refresh ran shared it; later ones
	// found the token fresh.
	if n := rec.get("refresh shared "); n > 4 {
		t.Errorf("refresh shared: %d, want at most 4", n)
	}
	// Logout revokes the refresh token in the background.
	for i := 0; rec.get("provider revocation true") == 0 && i < 200; i++ {
		time.Sleep(25 * time.Millisecond)
	}
	for _, key := range []string{"provider token true", "provider jwks true", "provider revocation true", "store get true", "store set true", "store delete true"} {
		if rec.get(key) == 0 {
			t.Errorf("%q never observed (all: %v)", key, rec.counts)
		}
	}
}
