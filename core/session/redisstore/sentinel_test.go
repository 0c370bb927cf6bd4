package redisstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/bffgate/bffgate/core/session/redisstore"
	"github.com/bffgate/bffgate/core/session/redisstore/redistest"
	"github.com/bffgate/bffgate/core/session/sessiontest"
)

// TestSentinel runs against a master, a replica and a Sentinel of the
// test's own, in database 3 (go-redis's failover client must select it),
// and then fails the master over.
func TestSentinel(t *testing.T) {
	t.Parallel()
	const db = 3
	top := redistest.StartSentinel(t)
	cfg := redisstore.Config{Addrs: top.Addrs, MasterName: redistest.MasterName, DB: db}

	t.Run("conformance", func(t *testing.T) {
		sessiontest.Run(t, func(t *testing.T) sessiontest.Harness {
			c := cfg
			c.KeyPrefix = randomPrefix(t)
			return harness(newStore(t, c))
		})
	})

	t.Run("reads within the slide grain write nothing", func(t *testing.T) {
		c := cfg
		c.KeyPrefix = randomPrefix(t)
		master := top.Master.Client(t, db)
		testSlideGrain(t, newStore(t, c), pttlOf(t, master, c.KeyPrefix), []*redis.Client{master})
	})

	ctx := context.Background()
	cfg.KeyPrefix = randomPrefix(t)
	s := newStore(t, cfg) // one Store through both subtests below
	key := cfg.KeyPrefix + "s:k"

	t.Run("writes land in the configured database of the master", func(t *testing.T) {
		if err := s.Set(ctx, "k", []byte("v"), time.Minute); err != nil {
			t.Fatal(err)
		}
		master := top.Master.Client(t, db)
		if got, err := master.Get(ctx, key).Result(); err != nil || got != "v" {
			t.Errorf("master db %d: GET = %q, %v; want v", db, got, err)
		}
		if n, err := top.Master.Client(t, 0).Exists(ctx, key).Result(); err != nil || n != 0 {
			t.Errorf("master db 0: EXISTS = %d, %v; want 0", n, err)
		}
		// Wait until the replica has it, so the failover below loses
		// nothing (replication is asynchronous).
		if n, err := master.Wait(ctx, 1, time.Second).Result(); err != nil || n != 1 {
			t.Fatalf("WAIT 1 = %d, %v; want 1 replica", n, err)
		}
	})

	t.Run("failover", func(t *testing.T) {
		if top.Master.PID() == 0 {
			t.Skip("the master is not running")
		}
		start := time.Now()
		top.Master.Kill(t)
		top.WaitMaster(t, top.Replica.Addr, 20*time.Second)
		t.Logf("Sentinel promoted the replica %v after the master was killed", time.Since(start).Round(time.Millisecond))

		// The same Store, no rebuild: go-redis follows the Sentinel. Its
		// first attempts may still meet the dead master.
		deadline := time.Now().Add(10 * time.Second)
		var err error
		for attempts := 1; ; attempts++ {
			if err = s.Set(ctx, "k2", []byte("v2"), time.Minute); err == nil {
				t.Logf("Set worked again on attempt %d, %v after the kill", attempts, time.Since(start).Round(time.Millisecond))
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("Set after failover: %v (still failing after 10 s)", err)
			}
			time.Sleep(50 * time.Millisecond)
		}
		for _, tc := range []struct{ key, want string }{{"k", "v"}, {"k2", "v2"}} {
			if got, err := s.Get(ctx, tc.key, time.Minute); err != nil || string(got) != tc.want {
				t.Errorf("Get(%s) after failover = %q, %v; want %q", tc.key, got, err, tc.want)
			}
		}
		if got, err := top.Replica.Client(t, db).Get(ctx, cfg.KeyPrefix+"s:k2").Result(); err != nil || got != "v2" {
			t.Errorf("new master db %d: GET = %q, %v; want v2", db, got, err)
		}
	})
}
