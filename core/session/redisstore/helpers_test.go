package redisstore_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/bffgate/bffgate/core/session/redisstore"
	"github.com/bffgate/bffgate/core/session/redisstore/redistest"
	"github.com/bffgate/bffgate/core/session/sessiontest"
)

// randomPrefix returns a key prefix no other test uses.
func randomPrefix(t testing.TB) string {
	t.Helper()
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return "bffgate-test:" + hex.EncodeToString(b[:]) + ":"
}

// newStore builds a Store from cfg and closes it when the test ends.
func newStore(t testing.TB, cfg redisstore.Config) *redisstore.Store {
	t.Helper()
	s, err := redisstore.New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// localClient returns a plain client for the shared test server, closed
// when the test ends.
func localClient(t testing.TB) *redis.Client {
	t.Helper()
	opts, err := redis.ParseURL(redistest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(opts)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// localStore builds a Store on the shared test server under a fresh
// prefix, and deletes every key under that prefix when the test ends.
func localStore(t testing.TB, cfg redisstore.Config) (*redisstore.Store, string) {
	t.Helper()
	cfg.URL = redistest.URL(t)
	if cfg.KeyPrefix == "" {
		cfg.KeyPrefix = randomPrefix(t)
	}
	rc := localClient(t)
	t.Cleanup(func() { deletePrefix(t, rc, cfg.KeyPrefix) })
	return newStore(t, cfg), cfg.KeyPrefix
}

// deletePrefix deletes every key under prefix.
func deletePrefix(t testing.TB, rc *redis.Client, prefix string) {
	t.Helper()
	ctx := context.Background()
	iter := rc.Scan(ctx, 0, prefix+"*", 1000).Iterator()
	for iter.Next(ctx) {
		if err := rc.Del(ctx, iter.Val()).Err(); err != nil {
			t.Errorf("cleanup: DEL: %v", err)
			return
		}
	}
	if err := iter.Err(); err != nil {
		t.Errorf("cleanup: SCAN: %v", err)
	}
}

// harness makes a conformance harness on real time for a Store.
func harness(s *redisstore.Store) sessiontest.Harness {
	return sessiontest.Harness{Store: s, Advance: time.Sleep}
}
