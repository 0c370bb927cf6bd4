package redisstore

import (
	"fmt"
	"testing"
	"time"

	"github.com/bffgate/bffgate/core/session/sessiontest"
)

func TestCacheLifetime(t *testing.T) {
	tests := []struct {
		name     string
		period   time.Duration // Config.CacheTTLMS
		ttl      time.Duration // the Get's sliding ttl
		wantLive time.Duration // how long the entry serves
	}{
		{"period shorter than half the ttl", 500 * time.Millisecond, time.Hour, 500 * time.Millisecond},
		{"at most half the ttl", time.Second, 400 * time.Millisecond, 200 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := sessiontest.NewClock()
			c := newCache(tt.period, 10)
			c.now = clock.Now
			start, gen := c.begin()
			clock.Advance(time.Millisecond) // the round trip
			c.fill("k", []byte("v"), tt.ttl, start, gen)
			clock.Advance(tt.wantLive - 2*time.Millisecond)
			if v, ok := c.get("k"); !ok || string(v) != "v" {
				t.Fatalf("get just before %v = %q, %v; want v", tt.wantLive, v, ok)
			}
			clock.Advance(time.Millisecond)
			if _, ok := c.get("k"); ok {
				t.Fatalf("get at %v after the read began: still cached", tt.wantLive)
			}
		})
	}
}

func TestCacheInvalidation(t *testing.T) {
	c := newCache(time.Second, 10)
	start, gen := c.begin()
	c.invalidate("other") // any write through the Store meanwhile
	c.fill("k", []byte("old"), time.Hour, start, gen)
	if _, ok := c.get("k"); ok {
		t.Fatal("a read begun before an invalidation filled the cache")
	}
	start, gen = c.begin()
	c.fill("k", []byte("v"), time.Hour, start, gen)
	c.invalidate("k")
	if _, ok := c.get("k"); ok {
		t.Fatal("invalidated key still cached")
	}
}

func TestCacheBounded(t *testing.T) {
	clock := sessiontest.NewClock()
	c := newCache(time.Second, 3)
	c.now = clock.Now
	for i := range 10 {
		start, gen := c.begin()
		c.fill(fmt.Sprint(i), []byte("v"), time.Hour, start, gen)
		if n := c.len(); n > 3 {
			t.Fatalf("after %d fills the cache holds %d entries; want at most 3", i+1, n)
		}
	}
	if _, ok := c.get("9"); !ok {
		t.Error("the newest entry was evicted")
	}
	// Expired entries go before live ones.
	clock.Advance(2 * time.Second)
	start, gen := c.begin()
	c.fill("live", []byte("v"), time.Hour, start, gen)
	if n := c.len(); n != 1 {
		t.Errorf("after the period the cache holds %d entries; want only the new one", n)
	}
}
