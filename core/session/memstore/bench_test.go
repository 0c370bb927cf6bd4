package memstore_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/bffgate/bffgate/core/session/memstore"
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
