package redisstore_test

import (
	"context"
	"errors"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/bffgate/bffgate/core/session"
	"github.com/bffgate/bffgate/core/session/redisstore"
	"github.com/bffgate/bffgate/core/session/redisstore/redistest"
)

// returnBound is how long a call to a dead Redis may take before the test
// calls it hung. It is no timing assertion (the defaults fail a call in
// about a second; the durations are logged): it keeps a hang from eating
// the test timeout.
const returnBound = 10 * time.Second

// within runs f and fails the test if it has not returned after
// returnBound.
func within(t *testing.T, what string, f func() error) error {
	t.Helper()
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- f() }()
	select {
	case err := <-done:
		t.Logf("%s returned after %v: %v", what, time.Since(start).Round(time.Millisecond), err)
		return err
	case <-time.After(returnBound):
		t.Fatalf("%s did not return within %v", what, returnBound)
		return nil
	}
}

// TestOutage stops the store's Redis and starts it again: calls fail
// (not ErrNotFound) while it is down, and the same Store works again once
// it is back, with the session kept by the server's append-only file.
func TestOutage(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv := redistest.Start(t, "--appendonly", "yes", "--appendfsync", "always")
	s := newStore(t, redisstore.Config{Addrs: []string{srv.Addr}})
	if err := s.Set(ctx, "k", []byte("v"), time.Hour, "sub:x"); err != nil {
		t.Fatal(err)
	}

	srv.Stop(t)
	err := within(t, "Get with Redis down", func() error {
		_, err := s.Get(ctx, "k", time.Hour)
		return err
	})
	if err == nil || errors.Is(err, session.ErrNotFound) {
		t.Fatalf("Get with Redis down: %v; want an error other than ErrNotFound (the caller must fail closed)", err)
	}
	err = within(t, "Set with Redis down", func() error { return s.Set(ctx, "k2", []byte("v2"), time.Hour) })
	if err == nil {
		t.Fatal("Set with Redis down: no error")
	}

	srv.Restart(t)
	deadline := time.Now().Add(5 * time.Second)
	var got []byte
	for attempts := 1; ; attempts++ {
		if got, err = s.Get(ctx, "k", time.Hour); err == nil {
			t.Logf("Get worked again on attempt %d after the restart", attempts)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Get after the restart: %v (still failing after 5 s)", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if string(got) != "v" {
		t.Errorf("Get after the restart = %q, want v (kept in the AOF)", got)
	}
	if err := s.Set(ctx, "k2", []byte("v2"), time.Hour, "sub:x"); err != nil {
		t.Fatalf("Set after the restart: %v", err)
	}
	if keys, err := s.TakeIndex(ctx, "sub:x"); err != nil || len(keys) != 2 {
		t.Errorf("TakeIndex after the restart = %q, %v; want k and k2", keys, err)
	}
}

// TestUnreachable checks that every operation on an unreachable Redis
// returns an error, not ErrNotFound and not a hang.
func TestUnreachable(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		addr func(t *testing.T) string
	}{
		{"connection refused", func(t *testing.T) string {
			return net.JoinHostPort("127.0.0.1", strconv.Itoa(redistest.FreePort(t)))
		}},
		{"server never answers", silentServer},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			s := newStore(t, redisstore.Config{Addrs: []string{tt.addr(t)}})
			ops := []struct {
				name string
				call func() error
			}{
				{"Get", func() error { _, err := s.Get(ctx, "k", 0); return err }},
				{"Get sliding", func() error { _, err := s.Get(ctx, "k", time.Hour); return err }},
				{"Set", func() error { return s.Set(ctx, "k", []byte("v"), time.Hour, "i") }},
				{"Delete", func() error { return s.Delete(ctx, "a", "b") }},
				{"TakeIndex", func() error { _, err := s.TakeIndex(ctx, "i"); return err }},
				{"TryLock", func() error { _, _, err := s.TryLock(ctx, "l", time.Second); return err }},
				{"Ping", func() error { return s.Ping(ctx) }},
			}
			for _, op := range ops {
				err := within(t, op.name, op.call)
				if err == nil || errors.Is(err, session.ErrNotFound) {
					t.Errorf("%s: %v; want an error other than ErrNotFound", op.name, err)
				}
			}
		})
	}
}

// silentServer accepts connections and never answers, like a server that
// hangs or a network that drops replies.
func silentServer(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex // guards conns
	var conns []net.Conn
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	})
	t.Cleanup(func() {
		_ = l.Close()
		wg.Wait()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			_ = c.Close()
		}
	})
	return l.Addr().String()
}
