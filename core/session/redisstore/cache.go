package redisstore

import (
	"sync"
	"time"
)

// cache keeps the values of recent sliding reads in process, so that a
// burst of API requests on one session costs one round trip per cache
// period (Config.CacheTTLMS).
type cache struct {
	ttl time.Duration
	max int
	now func() time.Time

	mu        sync.Mutex // guards the fields below
	entries   map[string]cacheEntry
	gen       uint64 // counts invalidations; a fill begun before one is dropped
	lastSweep time.Time
}

type cacheEntry struct {
	value   []byte
	expires time.Time
}

func newCache(ttl time.Duration, max int) *cache {
	return &cache{ttl: ttl, max: max, now: time.Now, entries: make(map[string]cacheEntry)}
}

// get returns the live value cached under key.
func (c *cache) get(key string) ([]byte, bool) {
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[key]
	if !ok || !now.Before(e.expires) {
		return nil, false
	}
	return e.value, true
}

// begin is called before a read from Redis that may fill the cache; pass
// what it returns to fill.
func (c *cache) begin() (start time.Time, gen uint64) {
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	return now, c.gen
}

// fill caches value under key, as read by a Get that, starting no earlier
// than start, left the key at least ttl - ttl/10 to live in Redis. The
// entry lives for the cache's period but never more than ttl/2, so a
// session in use still reaches Redis, and slides there, at least twice per
// idle timeout, and no entry outlives its key. Nothing is cached if an
// invalidation came after begin: a Set or Delete running alongside the
// read may have changed the key after it.
func (c *cache) fill(key string, value []byte, ttl time.Duration, start time.Time, gen uint64) {
	expires := start.Add(min(c.ttl, ttl/2))
	now := c.now()
	if !now.Before(expires) {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen != gen {
		return
	}
	if _, ok := c.entries[key]; !ok && len(c.entries) >= c.max {
		c.evict(now)
	}
	c.entries[key] = cacheEntry{value: value, expires: expires}
}

// invalidate drops keys. Callers invalidate after their write to Redis
// has finished (or failed), so that no read begun before it can fill the
// cache with the old value.
func (c *cache) invalidate(keys ...string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	for _, k := range keys {
		delete(c.entries, k)
	}
}

// evict makes room for one entry: expired entries go first, swept at most
// once per cache period; when none has expired, an arbitrary one goes (Go
// starts each map iteration at a random place). c.mu must be held.
func (c *cache) evict(now time.Time) {
	if now.Sub(c.lastSweep) >= c.ttl {
		c.lastSweep = now
		for k, e := range c.entries {
			if !now.Before(e.expires) {
				delete(c.entries, k)
			}
		}
		if len(c.entries) < c.max {
			return
		}
	}
	for k := range c.entries {
		delete(c.entries, k)
		return
	}
}

// len reports how many entries the cache holds, live or not.
func (c *cache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}
