package session_test

import (
	"bytes"
	"context"
	"slices"
	"testing"
	"time"

	"github.com/bffgate/bffgate/core/session"
	"github.com/bffgate/bffgate/core/session/memstore"
	"github.com/bffgate/bffgate/core/session/sessiontest"
)

func newSession(sub string, created time.Time, device string) *session.Session {
	return &session.Session{Issuer: "https://op.example", Subject: sub, Claims: "{}",
		AccessToken: "at-" + sub, RefreshToken: "rt-" + sub, Created: created, Device: device}
}

// TestList: a user's list shows that user's live sessions only, newest
// first, with their device and times, and the stored value shows neither
// tokens nor the device in clear.
func TestList(t *testing.T) {
	ctx := context.Background()
	clock := sessiontest.NewClock()
	store := memstore.New(clock.Now)
	var ended [][]string
	m := &session.Manager{Store: store, Idle: time.Hour, Max: 10 * time.Hour, Now: clock.Now,
		Ended: func(keys []string) { ended = append(ended, keys) }}
	save := func(s *session.Session) session.ID {
		t.Helper()
		id, _ := session.NewID()
		if err := m.Save(ctx, id, s); err != nil {
			t.Fatal(err)
		}
		return id
	}
	t0 := clock.Now()
	old := save(newSession("alice", t0, "Firefox on Linux"))
	clock.Advance(time.Minute)
	recent := save(newSession("alice", clock.Now(), "Chrome on Android"))
	save(newSession("bob", clock.Now(), "Safari on iOS"))
	clock.Advance(10 * time.Minute)
	if _, err := m.Load(ctx, old, true); err != nil { // old is used now
		t.Fatal(err)
	}

	got, err := m.List(ctx, "https://op.example", "alice")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Key != recent.StoreKey() || got[1].Key != old.StoreKey() {
		t.Fatalf("List(alice) = %+v, want alice's two sessions, newest first", got)
	}
	if got[1].Device != "Firefox on Linux" || !got[1].Created.Equal(t0) || !got[1].LastSeen.Equal(clock.Now()) ||
		!got[1].Ends.Equal(t0.Add(10*time.Hour)) {
		t.Fatalf("old listing = %+v, want Firefox on Linux, created %v, last seen now %v", got[1], t0, clock.Now())
	}
	if !got[0].LastSeen.Equal(t0.Add(time.Minute)) {
		t.Fatalf("recent last seen %v, want its login %v", got[0].LastSeen, t0.Add(time.Minute))
	}
	// A refresh saves what it loaded: the listing stays as sealed at login.
	s, err := m.Load(ctx, recent, false)
	if err != nil {
		t.Fatal(err)
	}
	s.AccessToken = "at-refreshed"
	if err := m.Save(ctx, recent, s); err != nil {
		t.Fatal(err)
	}
	if got, _ := m.List(ctx, "https://op.example", "alice"); len(got) != 2 || got[0].Device != "Chrome on Android" || !got[0].Created.Equal(t0.Add(time.Minute)) {
		t.Fatalf("after a refresh's Save, List = %+v; want the listing kept", got)
	}
	raw, _ := store.Get(ctx, old.StoreKey(), 0)
	for _, clear := range []string{"Firefox", "at-alice", "rt-alice", "alice"} {
		if bytes.Contains(raw, []byte(clear)) {
			t.Fatalf("the stored value holds %q in clear", clear)
		}
	}
	// Another issuer's alice is someone else.
	if got, _ := m.List(ctx, "https://other.example", "alice"); len(got) != 0 {
		t.Fatalf("List(other issuer's alice) = %+v, want none", got)
	}

	if err := m.EndKeys(ctx, old.StoreKey()); err != nil {
		t.Fatal(err)
	}
	if got, _ := m.List(ctx, "https://op.example", "alice"); len(got) != 1 || got[0].Key != recent.StoreKey() {
		t.Fatalf("List after EndKeys = %+v, want only the recent session", got)
	}
	if alive, err := m.Alive(ctx, old.StoreKey()); alive || err != nil {
		t.Fatalf("Alive(ended) = %v, %v", alive, err)
	}
	if alive, err := m.Alive(ctx, recent.StoreKey()); !alive || err != nil {
		t.Fatalf("Alive(live) = %v, %v", alive, err)
	}
	if n, err := m.EndAll(ctx, "https://op.example", "", "bob"); n != 1 || err != nil {
		t.Fatalf("EndAll(bob) = %d, %v", n, err)
	}
	if len(ended) != 2 || !slices.Equal(ended[0], []string{old.StoreKey()}) || len(ended[1]) != 1 {
		t.Fatalf("Ended calls = %q, want old's key, then bob's", ended)
	}
}

// TestListNeedsLister: a store that cannot list says so.
func TestListNeedsLister(t *testing.T) {
	m := &session.Manager{Store: struct{ session.Store }{memstore.New(nil)}, Idle: time.Hour, Max: time.Hour}
	if _, err := m.List(context.Background(), "iss", "sub"); err != session.ErrNoList {
		t.Fatalf("List error = %v, want ErrNoList", err)
	}
}
