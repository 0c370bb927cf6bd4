package redisstore_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bffgate/bffgate/core/session"
	"github.com/bffgate/bffgate/core/session/redisstore"
	"github.com/bffgate/bffgate/core/session/sessiontest"
)

// The tests run against real Redis: the shared server named by
// BFFGATE_TEST_REDIS_URL (default redis://127.0.0.1:6379/0) for most, and
// redis-server processes of their own (package redistest) for Cluster,
// Sentinel and outages. Without Redis they fail, saying how to start it;
// BFFGATE_TEST_REDIS_URL=skip skips them. The conformance suite's TTLs
// are 400 ms of real time, so its harness advances time by sleeping.

func TestConformance(t *testing.T) {
	t.Parallel()
	sessiontest.Run(t, func(t *testing.T) sessiontest.Harness {
		s, _ := localStore(t, redisstore.Config{})
		return harness(s)
	})
}

func TestConformanceCached(t *testing.T) {
	t.Parallel()
	sessiontest.Run(t, func(t *testing.T) sessiontest.Harness {
		s, _ := localStore(t, redisstore.Config{CacheTTLMS: 100})
		return harness(s)
	})
}

func TestKeyLayout(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, prefix := localStore(t, redisstore.Config{})
	rc := localClient(t)
	if err := s.Set(ctx, "k", []byte("sealed"), time.Hour, "sub:x"); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := s.TryLock(ctx, "L", time.Minute); err != nil || !ok {
		t.Fatalf("TryLock = %v, %v", ok, err)
	}
	if got, err := rc.Get(ctx, prefix+"s:k").Result(); err != nil || got != "sealed" {
		t.Errorf("GET %ss:k = %q, %v; want %q", prefix, got, err, "sealed")
	}
	if got, err := rc.SMembers(ctx, prefix+"i:sub:x").Result(); err != nil || !slices.Equal(got, []string{"k"}) {
		t.Errorf("SMEMBERS %si:sub:x = %q, %v; want [k]", prefix, got, err)
	}
	if got, err := rc.Get(ctx, prefix+"l:L").Result(); err != nil || len(got) != 32 {
		t.Errorf("GET %sl:L = %q, %v; want a 128-bit token in hex", prefix, got, err)
	}
	keys, err := rc.Keys(ctx, prefix+"*").Result()
	slices.Sort(keys)
	want := []string{prefix + "i:sub:x", prefix + "l:L", prefix + "s:k"}
	if err != nil || !slices.Equal(keys, want) {
		t.Errorf("keys = %q, %v; want %q", keys, err, want)
	}
}

func TestIndexLivesAsLongAsNewestMember(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, prefix := localStore(t, redisstore.Config{})
	rc := localClient(t)
	idx := prefix + "i:sub:x"
	// A set left without an expiry (by an older writer) gets one.
	if err := rc.SAdd(ctx, idx, "old").Err(); err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		name    string
		ttl     time.Duration
		wantMin time.Duration // the index's PTTL afterwards, within a second
	}{
		{"first member", time.Hour, time.Hour},
		{"shorter member keeps the longer expiry", time.Minute, time.Hour},
		{"longer member extends it", 2 * time.Hour, 2 * time.Hour},
	}
	for i, st := range steps {
		if err := s.Set(ctx, fmt.Sprintf("k%d", i), []byte("v"), st.ttl, "sub:x"); err != nil {
			t.Fatalf("%s: Set: %v", st.name, err)
		}
		got, err := rc.PTTL(ctx, idx).Result()
		if err != nil || got > st.wantMin || got < st.wantMin-time.Second {
			t.Errorf("%s: PTTL(index) = %v, %v; want %v", st.name, got, err, st.wantMin)
		}
	}
}

func TestSetRejectsNonPositiveTTL(t *testing.T) {
	t.Parallel()
	s, _ := localStore(t, redisstore.Config{})
	for _, ttl := range []time.Duration{0, -time.Second} {
		if err := s.Set(context.Background(), "k", []byte("v"), ttl); err == nil {
			t.Errorf("Set with ttl %v: no error; want one (Redis would keep the value forever)", ttl)
		}
	}
}

func TestLockerAcrossStores(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	a, prefix := localStore(t, redisstore.Config{})
	b, _ := localStore(t, redisstore.Config{KeyPrefix: prefix}) // another node
	const ttl = 300 * time.Millisecond

	// A's lock lives while A does: its context ending stands for A dying.
	actx, dieA := context.WithCancel(ctx)
	releaseA, ok, err := a.TryLock(actx, "refresh", ttl)
	if err != nil || !ok {
		t.Fatalf("node A TryLock = %v, %v; want taken", ok, err)
	}
	if _, ok, err := b.TryLock(ctx, "refresh", ttl); err != nil || ok {
		t.Fatalf("node B TryLock while A holds it = %v, %v; want refused", ok, err)
	}
	if _, ok, err := b.TryLock(ctx, "other", ttl); err != nil || !ok {
		t.Fatalf("node B TryLock of another lock = %v, %v; want taken", ok, err)
	}
	time.Sleep(2 * ttl) // A works longer than ttl: its lock is renewed
	if _, ok, err := b.TryLock(ctx, "refresh", ttl); err != nil || ok {
		t.Fatalf("node B TryLock while A holds it past ttl = %v, %v; want refused (renewed)", ok, err)
	}
	dieA()
	time.Sleep(ttl + ttl/2) // A's lock expires
	releaseB, ok, err := b.TryLock(ctx, "refresh", ttl)
	if err != nil || !ok {
		t.Fatalf("node B TryLock after A's expired = %v, %v; want taken", ok, err)
	}
	releaseA() // stale: A no longer holds it
	if _, ok, err := a.TryLock(ctx, "refresh", ttl); err != nil || ok {
		t.Fatalf("TryLock after a stale release = %v, %v; want refused (B holds it)", ok, err)
	}
	releaseB()
	releaseB() // a second call is harmless
	if release, ok, err := a.TryLock(ctx, "refresh", ttl); err != nil || !ok {
		t.Fatalf("node A TryLock after B released = %v, %v; want taken", ok, err)
	} else {
		release()
	}
}

func TestLockReleaseOutlivesContext(t *testing.T) {
	t.Parallel()
	s, _ := localStore(t, redisstore.Config{})
	ctx, cancel := context.WithCancel(context.Background())
	release, ok, err := s.TryLock(ctx, "L", time.Minute)
	if err != nil || !ok {
		t.Fatalf("TryLock = %v, %v", ok, err)
	}
	cancel() // the request ended
	release()
	if r, ok, err := s.TryLock(context.Background(), "L", time.Minute); err != nil || !ok {
		t.Fatalf("TryLock after release with a cancelled context = %v, %v; want taken", ok, err)
	} else {
		r()
	}
}

// TestCache shows the read cache's documented behaviour, with another
// client standing in for another gateway node.
func TestCache(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	const period = 300 * time.Millisecond
	s, prefix := localStore(t, redisstore.Config{CacheTTLMS: int(period / time.Millisecond)})
	other := localClient(t)
	get := func(ttl time.Duration) string {
		t.Helper()
		v, err := s.Get(ctx, "k", ttl)
		if errors.Is(err, session.ErrNotFound) {
			return "not found"
		}
		if err != nil {
			t.Fatalf("Get: %v", err)
		}
		return string(v)
	}
	if err := s.Set(ctx, "k", []byte("v1"), time.Hour); err != nil {
		t.Fatal(err)
	}
	if got := get(time.Hour); got != "v1" {
		t.Fatalf("sliding Get = %q, want v1", got)
	}
	// Another node deletes the session: this node's cache still serves it
	// to sliding reads for up to the period, but never to a plain Get.
	if err := other.Del(ctx, prefix+"s:k").Err(); err != nil {
		t.Fatal(err)
	}
	if got := get(time.Hour); got != "v1" {
		t.Errorf("sliding Get after a delete elsewhere = %q, want v1 from the cache", got)
	}
	if got := get(0); got != "not found" {
		t.Errorf("Get(ttl 0) after a delete elsewhere = %q, want not found: plain reads bypass the cache", got)
	}
	time.Sleep(period + period/2)
	if got := get(time.Hour); got != "not found" {
		t.Errorf("sliding Get after the cache period = %q, want not found", got)
	}
	// Writes through this Store invalidate at once.
	if err := s.Set(ctx, "k", []byte("v2"), time.Hour); err != nil {
		t.Fatal(err)
	}
	if got := get(time.Hour); got != "v2" {
		t.Errorf("sliding Get = %q, want v2", got)
	}
	if err := s.Set(ctx, "k", []byte("v3"), time.Hour, "idx"); err != nil {
		t.Fatal(err)
	}
	if got := get(time.Hour); got != "v3" {
		t.Errorf("sliding Get after Set = %q, want v3", got)
	}
	if err := s.Delete(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	if got := get(time.Hour); got != "not found" {
		t.Errorf("sliding Get after Delete = %q, want not found", got)
	}
}

// TestMemoryUsage reports what one realistic session costs in Redis.
func TestMemoryUsage(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, prefix := localStore(t, redisstore.Config{})
	rc := localClient(t)
	// The session as core/bff stores it by default: no ID token (kept only
	// with logout_id_token_hint), an 800-byte JWT access token and a
	// 40-byte refresh token. The budget is 2 KiB of Redis memory.
	base := session.Session{
		Issuer:       "https://login.example.com/realms/customers",
		Subject:      "5f0c6a3e-8d2b-4c1a-9e7f-3b2d1c0a9e8f",
		SID:          "0b7e9c2d-4a1f-4e3b-8c5d-6f7a8b9c0d1e",
		Claims:       `{"sub":"5f0c6a3e-8d2b-4c1a-9e7f-3b2d1c0a9e8f","name":"Alice Example","email":"alice@example.com","email_verified":true}`,
		Identity:     "sub\x005f0c6a3e-8d2b-4c1a-9e7f-3b2d1c0a9e8f\x00",
		AccessToken:  jwtLike(t, 800),
		TokenType:    "Bearer",
		RefreshToken: jwtLike(t, 40),
		Scope:        "openid profile email offline_access",
		Expiry:       time.Now().Add(5 * time.Minute),
		Created:      time.Now(),
	}
	withIDToken := base
	withIDToken.IDToken = jwtLike(t, 900)
	for _, tt := range []struct {
		name   string
		sess   session.Session
		budget int64 // 0: reported only
	}{
		{"default (no ID token kept)", base, 2048},
		{"with logout_id_token_hint (900-byte ID token kept)", withIDToken, 0},
	} {
		id, err := session.NewID()
		if err != nil {
			t.Fatal(err)
		}
		sealed, err := session.Seal(id, &tt.sess)
		if err != nil {
			t.Fatal(err)
		}
		// Index names as core/bff makes them: kind + ":" + 24 characters.
		indexes := []string{"sub:Qk9tT2xJc3RhbGVCdXRPaw", "sid:UmVhbGlzdGljSW5kZXhOYW1l"}
		if err := s.Set(ctx, id.StoreKey(), sealed, 8*time.Hour, indexes...); err != nil {
			t.Fatal(err)
		}
		usage := func(key string) int64 {
			n, err := rc.MemoryUsage(ctx, key, 0).Result()
			if err != nil {
				t.Fatalf("MEMORY USAGE %s: %v", key, err)
			}
			return n
		}
		value := usage(prefix + "s:" + id.StoreKey())
		var idx int64
		for _, name := range indexes {
			// A set with one member; its cost is shared by the user's
			// sessions (sub) or the OP session's (sid), so one member is
			// the worst case.
			idx += usage(prefix + "i:" + name)
		}
		t.Logf("%s: sealed value %d bytes; MEMORY USAGE: value key %d bytes, its 2 one-member index keys %d bytes, total %d bytes",
			tt.name, len(sealed), value, idx, value+idx)
		// Redis keeps a string of n bytes in a jemalloc size class plus the
		// key's name, object header and dict entry.
		if limit := int64(len(sealed)) + 768; value > limit {
			t.Errorf("%s: MEMORY USAGE of the value key = %d bytes, want at most the sealed size + 768 = %d", tt.name, value, limit)
		}
		if tt.budget > 0 && value > tt.budget {
			t.Errorf("%s: MEMORY USAGE of the value key = %d bytes, over the %d-byte budget", tt.name, value, tt.budget)
		}
	}
}

// jwtLike returns n characters shaped like a JWT: base64url segments
// separated by dots (a shorter n gives one opaque segment).
func jwtLike(t testing.TB, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	s := base64.RawURLEncoding.EncodeToString(b)[:n]
	if n < 100 {
		return s
	}
	return s[:36] + "." + s[37:n-344] + "." + s[n-343:]
}

func BenchmarkGetSliding(b *testing.B) {
	ctx := context.Background()
	s, _ := localStore(b, redisstore.Config{})
	v := []byte(strings.Repeat("x", 2000)) // about one sealed session
	if err := s.Set(ctx, "k", v, time.Hour); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Get(ctx, "k", time.Hour); err != nil {
			b.Fatal(err)
		}
	}
}
