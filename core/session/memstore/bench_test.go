package memstore_test

import (
	"context"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bffgate/bffgate/core/session/memstore"
	"github.com/bffgate/bffgate/core/session/sessiontest"
)

// benchStore holds n sessions of about a sealed session's size.
func benchStore(b *testing.B, n int) (*memstore.Store, []string) {
	ctx := context.Background()
	s := memstore.New(nil)
	v := make([]byte, 2000)
	keys := make([]string, n)
	for i := range keys {
		keys[i] = "key-" + strconv.Itoa(i)
		if err := s.Set(ctx, keys[i], v, time.Hour, "sub:"+keys[i]); err != nil {
			b.Fatal(err)
		}
	}
	return s, keys
}

func BenchmarkGetSliding(b *testing.B) {
	ctx := context.Background()
	s, keys := benchStore(b, 10000)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := s.Get(ctx, keys[i%len(keys)], time.Hour); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

func BenchmarkGetSlidingParallel(b *testing.B) {
	ctx := context.Background()
	s, keys := benchStore(b, 10000)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if _, err := s.Get(ctx, keys[i%len(keys)], time.Hour); err != nil {
				b.Error(err)
				return
			}
			i += 7
		}
	})
}

func BenchmarkSet(b *testing.B) {
	ctx := context.Background()
	s, keys := benchStore(b, 10000)
	v := make([]byte, 2000)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		k := keys[i%len(keys)]
		if err := s.Set(ctx, k, v, time.Hour, "sub:"+k); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkMemoryPer10kSessions reports the heap that 10,000 sealed
// sessions (with the back-channel logout index entries a login writes)
// take in the memory store, as B/session: what memory_max_sessions costs.
// Each holds 1 KB of tokens, about what a login at the test provider
// leaves (its sealed sessions are 1.3 KB).
func BenchmarkMemoryPer10kSessions(b *testing.B) {
	const n = 10000
	ctx := context.Background()
	var perSession float64
	tokens := strings.Repeat("t", 1000)
	for range b.N {
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		s := memstore.New(nil)
		for i := range n {
			sub := "user" + strconv.Itoa(i)
			if _, err := sessiontest.Plant(ctx, s, "https://op.example", sub, tokens); err != nil {
				b.Fatal(err)
			}
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		perSession = float64(after.HeapAlloc-before.HeapAlloc) / n
		runtime.KeepAlive(s)
	}
	b.ReportMetric(perSession, "B/session")
}
