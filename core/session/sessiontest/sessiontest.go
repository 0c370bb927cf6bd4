// Package sessiontest is the conformance suite every session.Store must
// pass. A store's own tests call Run with a constructor:
//
//	func TestConformance(t *testing.T) {
//		sessiontest.Run(t, func(t *testing.T) sessiontest.Harness {
//			clock := sessiontest.NewClock()
//			return sessiontest.Harness{Store: memstore.New(clock.Now), Advance: clock.Advance}
//		})
//	}
package sessiontest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bffgate/bffgate/core/session"
)

// Harness is one fresh, empty store under test.
type Harness struct {
	Store session.Store
	// Advance moves the store's clock forward by d: a fake clock's
	// Advance, or time.Sleep for stores that keep real time.
	Advance func(d time.Duration)
}

// Clock is a fake clock for stores that take a now function.
type Clock struct {
	mu sync.Mutex // guards t
	t  time.Time
}

// NewClock returns a clock stopped at a fixed instant.
func NewClock() *Clock { return &Clock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// OffsetClock is real time plus an offset a test moves forward, for an
// engine that must see tokens near expiry while a real provider and real
// stores keep real time. The zero value is ready: real time.
type OffsetClock struct {
	mu     sync.Mutex // guards offset
	offset time.Duration
}

// Now returns the real time plus the offset.
func (c *OffsetClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.offset)
}

// Advance moves the clock by d (negative moves it back).
func (c *OffsetClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.offset += d
}

// ttl is the unit of time the suite works in: long enough for a network
// store's round trips, short enough for a store on real time to wait for.
const ttl = 400 * time.Millisecond

// Run runs the suite. newHarness is called once per subtest and must return
// a store that shares no keys with any other.
func Run(t *testing.T, newHarness func(t *testing.T) Harness) {
	ctx := context.Background()
	tests := []struct {
		name string
		run  func(t *testing.T, h Harness)
	}{
		{"get missing", func(t *testing.T, h Harness) {
			if _, err := h.Store.Get(ctx, "missing", 0); !errors.Is(err, session.ErrNotFound) {
				t.Fatalf("Get(missing) error = %v, want ErrNotFound", err)
			}
		}},
		{"set then get", func(t *testing.T, h Harness) {
			v := []byte("value-1")
			mustSet(t, h.Store, "k", v, time.Hour)
			v[0] = 'X' // the store must have kept its own copy
			wantValue(t, h.Store, "k", "value-1")
		}},
		{"set replaces", func(t *testing.T, h Harness) {
			mustSet(t, h.Store, "k", []byte("old"), time.Hour)
			mustSet(t, h.Store, "k", []byte("new"), time.Hour)
			wantValue(t, h.Store, "k", "new")
		}},
		{"binary values", func(t *testing.T, h Harness) {
			v := []byte{0, 1, 2, 0xff, '\n', 0}
			mustSet(t, h.Store, "k", v, time.Hour)
			wantValue(t, h.Store, "k", string(v))
		}},
		{"delete", func(t *testing.T, h Harness) {
			mustSet(t, h.Store, "a", []byte("1"), time.Hour)
			mustSet(t, h.Store, "b", []byte("2"), time.Hour)
			mustSet(t, h.Store, "c", []byte("3"), time.Hour)
			if err := h.Store.Delete(ctx, "a", "b", "never-set"); err != nil {
				t.Fatalf("Delete: %v", err)
			}
			wantMissing(t, h.Store, "a")
			wantMissing(t, h.Store, "b")
			wantValue(t, h.Store, "c", "3")
			if err := h.Store.Delete(ctx); err != nil {
				t.Fatalf("Delete() with no keys: %v", err)
			}
		}},
		{"expires after ttl", func(t *testing.T, h Harness) {
			mustSet(t, h.Store, "k", []byte("v"), ttl)
			wantValue(t, h.Store, "k", "v")
			h.Advance(ttl + ttl/2)
			wantMissing(t, h.Store, "k")
		}},
		{"get with ttl slides expiry", func(t *testing.T, h Harness) {
			mustSet(t, h.Store, "k", []byte("v"), ttl)
			for range 3 { // 3 × ttl/2 in all: past the first ttl
				h.Advance(ttl / 2)
				if _, err := h.Store.Get(ctx, "k", ttl); err != nil {
					t.Fatalf("Get with sliding ttl: %v", err)
				}
			}
			h.Advance(ttl + ttl/2)
			wantMissing(t, h.Store, "k")
		}},
		{"get without ttl does not slide", func(t *testing.T, h Harness) {
			mustSet(t, h.Store, "k", []byte("v"), ttl)
			h.Advance(ttl / 2)
			wantValue(t, h.Store, "k", "v")
			h.Advance(ttl)
			wantMissing(t, h.Store, "k")
		}},
		{"index", func(t *testing.T, h Harness) {
			mustSet(t, h.Store, "k1", []byte("1"), time.Hour, "sid:x", "sub:alice")
			mustSet(t, h.Store, "k2", []byte("2"), time.Hour, "sid:x", "sub:alice")
			mustSet(t, h.Store, "k3", []byte("3"), time.Hour, "sid:y", "sub:alice")
			wantIndex(t, h.Store, "sid:x", "k1", "k2")
			wantIndex(t, h.Store, "sid:x") // taken: now empty
			wantIndex(t, h.Store, "sub:alice", "k1", "k2", "k3")
			wantIndex(t, h.Store, "sid:y", "k3")
			wantIndex(t, h.Store, "never")
		}},
		{"index set twice lists key once", func(t *testing.T, h Harness) {
			mustSet(t, h.Store, "k1", []byte("1"), time.Hour, "sid:x")
			mustSet(t, h.Store, "k1", []byte("2"), time.Hour, "sid:x")
			wantIndex(t, h.Store, "sid:x", "k1")
		}},
		{"concurrent use", func(t *testing.T, h Harness) {
			var wg sync.WaitGroup
			errs := make(chan error, 8)
			for w := range 8 {
				wg.Go(func() {
					for i := range 25 {
						k := fmt.Sprintf("w%d-%d", w, i)
						v := []byte(k)
						if err := h.Store.Set(ctx, k, v, time.Hour, "idx"); err != nil {
							errs <- err
							return
						}
						got, err := h.Store.Get(ctx, k, time.Hour)
						if err != nil || string(got) != k {
							errs <- fmt.Errorf("Get(%s) = %q, %v", k, got, err)
							return
						}
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}
			keys, err := h.Store.TakeIndex(ctx, "idx")
			if err != nil || len(keys) != 200 {
				t.Fatalf("TakeIndex: %d keys, %v; want 200", len(keys), err)
			}
		}},
		{"sealed session round trip", func(t *testing.T, h Harness) {
			id, err := session.NewID()
			if err != nil {
				t.Fatal(err)
			}
			want := &session.Session{Subject: "alice", AccessToken: "at", RefreshToken: "rt",
				Created: time.UnixMilli(1700000000000)}
			sealed, err := session.Seal(id, want)
			if err != nil {
				t.Fatal(err)
			}
			mustSet(t, h.Store, id.StoreKey(), sealed, time.Hour)
			raw, err := h.Store.Get(ctx, id.StoreKey(), 0)
			if err != nil {
				t.Fatal(err)
			}
			got, err := session.Open(id, raw)
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			if *got != *want {
				t.Fatalf("got %+v, want %+v", got, want)
			}
		}},
		{"locker", func(t *testing.T, h Harness) {
			l, ok := h.Store.(session.Locker)
			if !ok {
				t.Skip("store does not implement session.Locker")
			}
			release, ok, err := l.TryLock(ctx, "lock", ttl)
			if err != nil || !ok {
				t.Fatalf("first TryLock = %v, %v; want lock taken", ok, err)
			}
			if _, ok, err := l.TryLock(ctx, "lock", ttl); err != nil || ok {
				t.Fatalf("second TryLock = %v, %v; want refused", ok, err)
			}
			release()
			// A holder whose context ended stands for one that died: its
			// lock is no longer kept and expires after ttl.
			dying, die := context.WithCancel(ctx)
			release2, ok, err := l.TryLock(dying, "lock", ttl)
			if err != nil || !ok {
				t.Fatalf("TryLock after release = %v, %v; want lock taken", ok, err)
			}
			die()
			// An expired holder's release must not free the next holder's lock.
			h.Advance(ttl + ttl/2)
			release3, ok, err := l.TryLock(ctx, "lock", ttl)
			if err != nil || !ok {
				t.Fatalf("TryLock after expiry = %v, %v; want lock taken", ok, err)
			}
			release2()
			if _, ok, _ := l.TryLock(ctx, "lock", ttl); ok {
				t.Fatal("a stale holder's release freed the current holder's lock")
			}
			release3()
		}},
		{"members", func(t *testing.T, h Harness) {
			l, ok := h.Store.(session.Lister)
			if !ok {
				t.Skip("not a session.Lister")
			}
			if got, err := l.Members(ctx, "none"); err != nil || len(got) != 0 {
				t.Fatalf("Members(missing index) = %v, %v; want none", got, err)
			}
			mustSet(t, h.Store, "a", []byte("va"), time.Hour, "idx")
			mustSet(t, h.Store, "b", []byte("vb"), ttl, "idx")
			mustSet(t, h.Store, "c", []byte("vc"), time.Hour, "idx")
			mustSet(t, h.Store, "d", []byte("vd"), 2*time.Hour, "idx")
			mustSet(t, h.Store, "other", []byte("vo"), time.Hour, "idx2")
			if err := h.Store.Delete(ctx, "c"); err != nil {
				t.Fatal(err)
			}
			h.Advance(ttl + ttl/2) // b expires
			got, err := l.Members(ctx, "idx")
			if err != nil {
				t.Fatal(err)
			}
			slices.SortFunc(got, func(x, y session.Member) int { return strings.Compare(x.Key, y.Key) })
			if len(got) != 2 || got[0].Key != "a" || string(got[0].Value) != "va" || got[1].Key != "d" {
				t.Fatalf("Members(idx) = %+v, want a and d (b expired, c deleted, other in another index)", got)
			}
			// Expiries are the store's: d's an hour after a's.
			if d := got[1].Expires.Sub(got[0].Expires); d < time.Hour-ttl || d > time.Hour+ttl {
				t.Fatalf("d expires %v after a, want an hour", d)
			}
			// Members leaves the live members in the index.
			keys, err := h.Store.TakeIndex(ctx, "idx")
			if err != nil || !slices.Contains(keys, "a") || !slices.Contains(keys, "d") {
				t.Fatalf("TakeIndex(idx) after Members = %q, %v; want a and d in it", keys, err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.run(t, newHarness(t)) })
	}
}

func mustSet(t *testing.T, s session.Store, key string, v []byte, ttl time.Duration, indexes ...string) {
	t.Helper()
	if err := s.Set(context.Background(), key, v, ttl, indexes...); err != nil {
		t.Fatalf("Set(%s): %v", key, err)
	}
}

func wantValue(t *testing.T, s session.Store, key, want string) {
	t.Helper()
	got, err := s.Get(context.Background(), key, 0)
	if err != nil || string(got) != want {
		t.Fatalf("Get(%s) = %q, %v; want %q", key, got, err, want)
	}
}

func wantMissing(t *testing.T, s session.Store, key string) {
	t.Helper()
	if got, err := s.Get(context.Background(), key, 0); !errors.Is(err, session.ErrNotFound) {
		t.Fatalf("Get(%s) = %q, %v; want ErrNotFound", key, got, err)
	}
}

func wantIndex(t *testing.T, s session.Store, index string, want ...string) {
	t.Helper()
	got, err := s.TakeIndex(context.Background(), index)
	if err != nil {
		t.Fatalf("TakeIndex(%s): %v", index, err)
	}
	slices.Sort(got)
	if !slices.Equal(got, want) && !(len(got) == 0 && len(want) == 0) {
		t.Fatalf("TakeIndex(%s) = %q, want %q", index, got, want)
	}
}

// Plant puts a logged-in session of subject, holding accessToken (valid
// for an hour from now), in store as a login would (through a Manager
// with an hour's idle timeout: the sealed session and its back-channel
// logout index), and returns the value of its session cookie. Tests and
// load benchmarks use it where the login itself is not what they measure.
func Plant(ctx context.Context, store session.Store, issuer, subject, accessToken string) (string, error) {
	id, err := session.NewID()
	if err != nil {
		return "", err
	}
	claims, err := json.Marshal(map[string]string{"sub": subject})
	if err != nil {
		return "", err
	}
	now := time.Now()
	s := &session.Session{Issuer: issuer, Subject: subject, Claims: string(claims),
		Identity: "sub\x00" + subject + "\x00", AccessToken: accessToken, TokenType: "Bearer",
		Expiry: now.Add(time.Hour), Created: now}
	m := &session.Manager{Store: store, Idle: time.Hour, Max: 24 * time.Hour}
	if err := m.Save(ctx, id, s); err != nil {
		return "", err
	}
	return id.String(), nil
}
