// Package memstore is the in-process session store: the default for a
// single gateway node, and the store the tests use when Redis is beside the
// point. Sessions do not survive a restart and are not shared between
// nodes; use redisstore for that.
package memstore

import (
	"context"
	"sync"
	"time"

	"github.com/bffgate/bffgate/core/session"
)

var _ session.Store = (*Store)(nil)

// sweepEvery is how often Set drops expired entries; Get never returns
// one, so sweeping only bounds memory.
const sweepEvery = time.Minute

type entry struct {
	value   []byte
	expires time.Time
}

// Store is a session.Store in memory. The zero value is not usable; call
// New.
type Store struct {
	now func() time.Time

	mu        sync.Mutex // guards the fields below
	entries   map[string]entry
	indexes   map[string]map[string]time.Time // index -> key -> expiry
	lastSweep time.Time
}

// New returns an empty store. now is the clock; nil means time.Now.
func New(now func() time.Time) *Store {
	if now == nil {
		now = time.Now
	}
	return &Store{
		now:     now,
		entries: make(map[string]entry),
		indexes: make(map[string]map[string]time.Time),
	}
}

// Get implements session.Store.
func (s *Store) Get(ctx context.Context, key string, ttl time.Duration) ([]byte, error) {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.entries[key]
	if !ok || !now.Before(e.expires) {
		return nil, session.ErrNotFound
	}
	if ttl > 0 {
		e.expires = now.Add(ttl)
		s.entries[key] = e
	}
	return e.value, nil
}

// Set implements session.Store.
func (s *Store) Set(ctx context.Context, key string, value []byte, ttl time.Duration, indexes ...string) error {
	now := s.now()
	expires := now.Add(ttl)
	v := append([]byte(nil), value...)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.entries[key] = entry{value: v, expires: expires}
	for _, name := range indexes {
		m := s.indexes[name]
		if m == nil {
			m = make(map[string]time.Time)
			s.indexes[name] = m
		}
		m[key] = expires
	}
	if now.Sub(s.lastSweep) >= sweepEvery {
		s.sweep(now)
		s.lastSweep = now
	}
	return nil
}

// Delete implements session.Store.
func (s *Store) Delete(ctx context.Context, keys ...string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, k := range keys {
		delete(s.entries, k)
	}
	return nil
}

// TakeIndex implements session.Store.
func (s *Store) TakeIndex(ctx context.Context, index string) ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.indexes[index]
	delete(s.indexes, index)
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	return keys, nil
}

// Len reports how many unexpired sessions the store holds.
func (s *Store) Len() int {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, e := range s.entries {
		if now.Before(e.expires) {
			n++
		}
	}
	return n
}

// sweep drops expired entries and index members. s.mu must be held.
func (s *Store) sweep(now time.Time) {
	for k, e := range s.entries {
		if !now.Before(e.expires) {
			delete(s.entries, k)
		}
	}
	for name, m := range s.indexes {
		for k, exp := range m {
			if !now.Before(exp) {
				delete(m, k)
			}
		}
		if len(m) == 0 {
			delete(s.indexes, name)
		}
	}
}
