package memstore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/bffgate/bffgate/core/session"
	"github.com/bffgate/bffgate/core/session/sessiontest"
)

var ctx = context.Background()

func mustSet(t *testing.T, s *Store, key string, ttl time.Duration, indexes ...string) {
	t.Helper()
	if err := s.Set(ctx, key, []byte("v-"+key), ttl, indexes...); err != nil {
		t.Fatal(err)
	}
}

// present lists which of keys the store still has (a Get with ttl 0
// changes nothing).
func present(s *Store, keys ...string) []string {
	var got []string
	for _, k := range keys {
		if _, err := s.Get(ctx, k, 0); err == nil {
			got = append(got, k)
		} else if !errors.Is(err, session.ErrNotFound) {
			panic(err)
		}
	}
	return got
}

func TestBoundEvictsLeastRecentlyUsed(t *testing.T) {
	clock := sessiontest.NewClock()
	s := NewMax(clock.Now, 3)
	all := []string{"a", "b", "c", "d", "e", "f"}
	for _, step := range []struct {
		name string
		do   func()
		want []string
	}{
		{"fill to the cap", func() {
			for _, k := range []string{"a", "b", "c"} {
				mustSet(t, s, k, time.Hour)
				clock.Advance(time.Second)
			}
		}, []string{"a", "b", "c"}},
		{"a new key ends the oldest", func() { mustSet(t, s, "d", time.Hour) }, []string{"b", "c", "d"}},
		{"a sliding read makes b the newest", func() {
			if _, err := s.Get(ctx, "b", time.Hour); err != nil {
				t.Fatal(err)
			}
			mustSet(t, s, "e", time.Hour)
		}, []string{"b", "d", "e"}},
		{"a read without ttl does not", func() {
			if _, err := s.Get(ctx, "d", 0); err != nil {
				t.Fatal(err)
			}
			mustSet(t, s, "f", time.Hour)
		}, []string{"b", "e", "f"}},
		{"replacing a key adds none", func() { mustSet(t, s, "b", time.Hour) }, []string{"b", "e", "f"}},
	} {
		step.do()
		if got := present(s, all...); !slices.Equal(got, step.want) {
			t.Fatalf("%s: store holds %q, want %q", step.name, got, step.want)
		}
		if n := len(s.entries); n > 3 {
			t.Fatalf("%s: %d entries, over the cap of 3", step.name, n)
		}
	}
}

func TestEvictedAndExpiredLeaveTheirIndexes(t *testing.T) {
	clock := sessiontest.NewClock()
	s := NewMax(clock.Now, 2)
	mustSet(t, s, "a", time.Hour, "sub:alice")
	mustSet(t, s, "b", time.Minute, "sub:alice", "sid:1")
	mustSet(t, s, "c", time.Hour, "sub:alice") // evicts a
	clock.Advance(2 * time.Minute)
	if _, err := s.Get(ctx, "b", 0); !errors.Is(err, session.ErrNotFound) { // expired: dropped now
		t.Fatalf("Get(b) after its ttl: %v, want ErrNotFound", err)
	}
	got, _ := s.TakeIndex(ctx, "sub:alice")
	if !slices.Equal(got, []string{"c"}) {
		t.Fatalf("TakeIndex(sub:alice) = %q, want [c]: evicted and expired sessions leave their indexes", got)
	}
	if len(s.indexes) != 0 {
		t.Fatalf("indexes left: %v; want none (sid:1's only member expired)", s.indexes)
	}
}

func TestSetSweepsExpiredAFewAtATime(t *testing.T) {
	clock := sessiontest.NewClock()
	s := NewMax(clock.Now, 0)
	const n = 1000
	for i := range n {
		mustSet(t, s, fmt.Sprintf("old-%d", i), time.Minute, "sub:old")
	}
	clock.Advance(2 * time.Minute)
	for i := range n {
		mustSet(t, s, fmt.Sprintf("new-%d", i), time.Hour)
		// Every Set drops up to sweepPerSet expired ones, never more.
		if want := max(n-sweepPerSet*(i+1), 0) + i + 1; len(s.entries) != want {
			t.Fatalf("after %d new Sets: %d entries, want %d", i+1, len(s.entries), want)
		}
	}
	if _, ok := s.indexes["sub:old"]; ok {
		t.Fatal("the index of the expired sessions is still there")
	}
	if s.Len() != n {
		t.Fatalf("Len = %d, want %d", s.Len(), n)
	}
}

func TestDefaultBound(t *testing.T) {
	if s := New(nil); s.max != DefaultMaxSessions {
		t.Fatalf("New: cap %d, want DefaultMaxSessions", s.max)
	}
	if s := NewMax(nil, -1); s.max != DefaultMaxSessions {
		t.Fatalf("NewMax(-1): cap %d, want DefaultMaxSessions", s.max)
	}
	// Scripted logins past the default cap.
	s := New(nil)
	v := make([]byte, 10)
	for i := range DefaultMaxSessions + 100 {
		if err := s.Set(ctx, fmt.Sprint(i), v, time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	if n := s.Len(); n != DefaultMaxSessions {
		t.Fatalf("after %d Sets: %d sessions, want the cap %d", DefaultMaxSessions+100, n, DefaultMaxSessions)
	}
	if got := present(s, "0", "99", "100", fmt.Sprint(DefaultMaxSessions+99)); !slices.Equal(got, []string{"100", fmt.Sprint(DefaultMaxSessions + 99)}) {
		t.Fatalf("present = %q; want the first 100 gone, the rest kept", got)
	}
}
