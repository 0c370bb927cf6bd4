package redisstore_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/bffgate/bffgate/core/session"
	"github.com/bffgate/bffgate/core/session/redisstore"
	"github.com/bffgate/bffgate/core/session/redisstore/redistest"
	"github.com/bffgate/bffgate/core/session/sessiontest"
)

// TestCluster runs against a 3-master Redis Cluster of the test's own. Its
// keys need no cleanup: the cluster dies with the test.
func TestCluster(t *testing.T) {
	t.Parallel()
	cl := redistest.StartCluster(t, 3)
	cfg := redisstore.Config{Addrs: cl.Addrs}

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
		var masters []*redis.Client
		for _, n := range cl.Nodes {
			masters = append(masters, n.Client(t, 0))
		}
		cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: cl.Addrs})
		defer cc.Close()
		testSlideGrain(t, newStore(t, c), pttlOf(t, cc, c.KeyPrefix), masters)
	})

	t.Run("sessions on every node share an index", func(t *testing.T) {
		ctx := context.Background()
		c := cfg
		c.KeyPrefix = randomPrefix(t)
		s := newStore(t, c)
		if err := s.Ping(ctx); err != nil {
			t.Fatalf("Ping: %v", err)
		}
		// Enough keys to land on every node; checked below with CLUSTER
		// KEYSLOT against each node's slot range.
		var keys []string
		for i := range 24 {
			keys = append(keys, fmt.Sprintf("session-%d", i))
		}
		nodes := map[int]bool{}
		rc := cl.Nodes[0].Client(t, 0)
		for _, k := range keys {
			slot, err := rc.ClusterKeySlot(ctx, c.KeyPrefix+"s:"+k).Result()
			if err != nil {
				t.Fatal(err)
			}
			nodes[int(slot)*len(cl.Nodes)/16384] = true
		}
		if len(nodes) != len(cl.Nodes) {
			t.Fatalf("the keys landed on %d of %d nodes; want all", len(nodes), len(cl.Nodes))
		}

		for _, k := range keys {
			if err := s.Set(ctx, k, []byte("v-"+k), time.Minute, "sub:alice", "sid:x"); err != nil {
				t.Fatalf("Set(%s): %v", k, err)
			}
		}
		for _, idx := range []string{"sub:alice", "sid:x"} {
			got, err := s.TakeIndex(ctx, idx)
			if err != nil {
				t.Fatalf("TakeIndex(%s): %v", idx, err)
			}
			slices.Sort(got)
			want := slices.Sorted(slices.Values(keys))
			if !slices.Equal(got, want) {
				t.Errorf("TakeIndex(%s) = %q, want %q", idx, got, want)
			}
		}
		// One Delete of keys in many slots (a multi-key DEL would fail
		// with CROSSSLOT).
		if err := s.Delete(ctx, keys...); err != nil {
			t.Fatalf("Delete across slots: %v", err)
		}
		for _, k := range keys {
			if _, err := s.Get(ctx, k, 0); !errors.Is(err, session.ErrNotFound) {
				t.Errorf("Get(%s) after Delete: %v, want ErrNotFound", k, err)
			}
		}
	})
}
