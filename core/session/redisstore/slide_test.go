package redisstore_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/bffgate/bffgate/core/session/redisstore"
	"github.com/bffgate/bffgate/core/session/redisstore/redistest"
)

// writeCommands are the commands a Get could write with.
var writeCommands = []string{"getex", "pexpire", "pexpireat", "expire", "set", "del"}

// commandCalls sums INFO commandstats over the servers (a command a script
// runs counts under its own name).
func commandCalls(t *testing.T, servers []*redis.Client) map[string]int64 {
	t.Helper()
	calls := map[string]int64{}
	for _, rc := range servers {
		info, err := rc.Info(context.Background(), "commandstats").Result()
		if err != nil {
			t.Fatal(err)
		}
		for line := range strings.Lines(info) {
			name, rest, ok := strings.Cut(strings.TrimPrefix(line, "cmdstat_"), ":calls=")
			if !ok {
				continue
			}
			n, _, _ := strings.Cut(rest, ",")
			v, _ := strconv.ParseInt(n, 10, 64)
			calls[strings.ToLower(name)] += v
		}
	}
	return calls
}

func resetStats(t *testing.T, servers []*redis.Client) {
	t.Helper()
	for _, rc := range servers {
		if err := rc.ConfigResetStat(context.Background()).Err(); err != nil {
			t.Fatal(err)
		}
	}
}

func writes(calls map[string]int64) int64 {
	var n int64
	for _, c := range writeCommands {
		n += calls[c]
	}
	return n
}

// testSlideGrain checks the grain of sliding expiry on s, whose masters are
// servers (their command statistics are reset): reads within a tenth of
// the ttl write nothing, a read past it slides the expiry.
func testSlideGrain(t *testing.T, s *redisstore.Store, pttl func(key string) time.Duration, servers []*redis.Client) {
	ctx := context.Background()
	const ttl = 2 * time.Second
	const reads = 50
	if err := s.Set(ctx, "k", []byte("v"), ttl); err != nil {
		t.Fatal(err)
	}
	resetStats(t, servers)
	for range reads {
		if v, err := s.Get(ctx, "k", ttl); err != nil || string(v) != "v" {
			t.Fatalf("Get = %q, %v; want v", v, err)
		}
	}
	calls := commandCalls(t, servers)
	if got := calls["get"] + calls["getex"]; got != reads {
		t.Fatalf("the servers saw %d reads (%v), want %d: the measurement misses them", got, calls, reads)
	}
	if w := writes(calls); w != 0 {
		t.Errorf("%d reads within ttl/10 of the last slide made %d writes (%v); want 0", reads, w, calls)
	}

	time.Sleep(ttl / 2) // well past the grain (ttl/10)
	before := pttl("k")
	resetStats(t, servers)
	if _, err := s.Get(ctx, "k", ttl); err != nil {
		t.Fatal(err)
	}
	if w := writes(commandCalls(t, servers)); w != 1 {
		t.Errorf("a read past the grain made %d writes; want 1 (the slide)", w)
	}
	// The slide set the full ttl again: more than was left before it,
	// however slowly a loaded machine runs the test (no time bound).
	if got := pttl("k"); got <= before || got > ttl {
		t.Errorf("PTTL after a read past the grain = %v, before it %v; want it reset towards the full %v", got, before, ttl)
	}
}

// TestSlideGrain uses a server of its own: its statistics are the test's.
func TestSlideGrain(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	prefix := randomPrefix(t)
	s := newStore(t, redisstore.Config{Addrs: []string{srv.Addr}, KeyPrefix: prefix})
	rc := srv.Client(t, 0)
	dirty := func() int64 {
		info, err := rc.Info(context.Background(), "persistence").Result()
		if err != nil {
			t.Fatal(err)
		}
		_, rest, _ := strings.Cut(info, "rdb_changes_since_last_save:")
		n, _ := strconv.ParseInt(strings.TrimSpace(strings.SplitN(rest, "\n", 2)[0]), 10, 64)
		return n
	}
	before := dirty()
	testSlideGrain(t, s, pttlOf(t, rc, prefix), []*redis.Client{rc})
	// Set, then the one slide: what Redis counts as changes, which is what
	// it replicates and appends to the AOF.
	if got := dirty() - before; got != 2 {
		t.Errorf("Redis counted %d changes; want 2 (the Set and the one slide)", got)
	}
}

// pttlOf reads a session key's PTTL through rc.
func pttlOf(t *testing.T, rc redis.Cmdable, prefix string) func(string) time.Duration {
	return func(key string) time.Duration {
		d, err := rc.PTTL(context.Background(), prefix+"s:"+key).Result()
		if err != nil {
			t.Fatalf("PTTL: %v", err)
		}
		return d
	}
}
