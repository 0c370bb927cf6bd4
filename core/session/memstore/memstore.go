// Package memstore is the in-process session store: the default for a
// single gateway node, and the store the tests use when Redis is beside the
// point. Sessions do not survive a restart and are not shared between
// nodes; use redisstore for that.
//
// The store is bounded: at its cap (DefaultMaxSessions unless told
// otherwise), storing a new session ends the least recently used one.
// Expired sessions are dropped as they are met, a few per Set from the
// least recently used end and any that Get finds, so no call ever sweeps
// the whole store.
package memstore

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/bffgate/bffgate/core/session"
)

var (
	_ session.Store  = (*Store)(nil)
	_ session.Lister = (*Store)(nil)
)

// DefaultMaxSessions is the cap New puts on a store: about 230 MB of
// sessions at 2.3 KB each (measured: a 1.3 KB sealed session, its key and
// its two index entries), which a small gateway host can spare, and more
// live sessions than one node without Redis should carry. Someone
// scripting logins at 300 per second needs more than five minutes to fill
// it, and then pushes out the sessions least recently used, not the
// active ones.
const DefaultMaxSessions = 100_000

// sweepPerSet is how many entries at the least recently used end a Set
// checks for expiry: more than one, so that expired entries go faster
// than Sets add them.
const sweepPerSet = 2

// entry is one session, linked in its store's recency list.
type entry struct {
	key        string
	value      []byte
	expires    time.Time
	indexes    []string // the indexes that list key
	prev, next *entry   // towards the most and the least recently used
}

// Store is a session.Store in memory. The zero value is not usable; call
// New or NewMax.
type Store struct {
	now func() time.Time
	max int

	mu      sync.Mutex // guards the fields below
	entries map[string]*entry
	newest  *entry                         // head of the recency list: last Set or sliding Get
	oldest  *entry                         // its tail: evicted first
	indexes map[string]map[string]struct{} // index -> keys
}

// New returns an empty store holding at most DefaultMaxSessions. now is
// the clock; nil means time.Now.
func New(now func() time.Time) *Store { return NewMax(now, 0) }

// NewMax returns an empty store holding at most max sessions; 0 (or less)
// means DefaultMaxSessions. now is the clock; nil means time.Now.
func NewMax(now func() time.Time, max int) *Store {
	if now == nil {
		now = time.Now
	}
	if max <= 0 {
		max = DefaultMaxSessions
	}
	return &Store{
		now:     now,
		max:     max,
		entries: make(map[string]*entry),
		indexes: make(map[string]map[string]struct{}),
	}
}

// Get implements session.Store. A Get with ttl > 0 also makes the session
// the most recently used.
func (s *Store) Get(ctx context.Context, key string, ttl time.Duration) ([]byte, error) {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.entries[key]
	if !ok {
		return nil, session.ErrNotFound
	}
	if !now.Before(e.expires) {
		s.remove(e)
		return nil, session.ErrNotFound
	}
	if ttl > 0 {
		e.expires = now.Add(ttl)
		s.unlink(e)
		s.pushNewest(e)
	}
	return e.value, nil
}

// Set implements session.Store. A new key in a full store ends the least
// recently used session first.
func (s *Store) Set(ctx context.Context, key string, value []byte, ttl time.Duration, indexes ...string) error {
	now := s.now()
	e := &entry{key: key, value: append([]byte(nil), value...), expires: now.Add(ttl)}
	if len(indexes) > 0 {
		e.indexes = append([]string(nil), indexes...)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if old, ok := s.entries[key]; ok {
		s.drop(old, e.indexes)
	}
	s.sweep(now)
	for len(s.entries) >= s.max {
		s.remove(s.oldest)
	}
	s.entries[key] = e
	s.pushNewest(e)
	for _, name := range e.indexes {
		m := s.indexes[name]
		if m == nil {
			m = make(map[string]struct{})
			s.indexes[name] = m
		}
		m[key] = struct{}{}
	}
	return nil
}

// Delete implements session.Store.
func (s *Store) Delete(ctx context.Context, keys ...string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, k := range keys {
		if e, ok := s.entries[k]; ok {
			s.remove(e)
		}
	}
	return nil
}

// TakeIndex implements session.Store. An index lists only keys still in
// the store: a session that expired or was evicted leaves its indexes
// when it goes.
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

// Members implements session.Lister. Reading the list does not make its
// sessions more recently used.
func (s *Store) Members(ctx context.Context, index string) ([]session.Member, error) {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []session.Member
	for k := range s.indexes[index] {
		if len(out) == session.MaxMembers {
			break
		}
		if e := s.entries[k]; e != nil && now.Before(e.expires) {
			out = append(out, session.Member{Key: k, Value: e.value, Expires: e.expires})
		}
	}
	return out, nil
}

// Len reports how many unexpired sessions the store holds. It visits every
// entry; it is for tests and metrics, not the request path.
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

// sweep drops expired entries from the least recently used end, at most
// sweepPerSet of them, stopping at the first live one. s.mu must be held.
func (s *Store) sweep(now time.Time) {
	for range sweepPerSet {
		e := s.oldest
		if e == nil || now.Before(e.expires) {
			return
		}
		s.remove(e)
	}
}

// remove drops e from the map, the recency list and its indexes. s.mu
// must be held.
func (s *Store) remove(e *entry) { s.drop(e, nil) }

// drop is remove, leaving e's key in the indexes named in keep (which the
// entry replacing e lists too). s.mu must be held.
func (s *Store) drop(e *entry, keep []string) {
	delete(s.entries, e.key)
	s.unlink(e)
	for _, name := range e.indexes {
		if slices.Contains(keep, name) {
			continue
		}
		if m := s.indexes[name]; m != nil {
			delete(m, e.key)
			if len(m) == 0 {
				delete(s.indexes, name)
			}
		}
	}
}

// pushNewest puts e at the head of the recency list. s.mu must be held.
func (s *Store) pushNewest(e *entry) {
	e.prev, e.next = nil, s.newest
	if s.newest != nil {
		s.newest.prev = e
	}
	s.newest = e
	if s.oldest == nil {
		s.oldest = e
	}
}

// unlink takes e out of the recency list. s.mu must be held.
func (s *Store) unlink(e *entry) {
	if e.prev != nil {
		e.prev.next = e.next
	} else {
		s.newest = e.next
	}
	if e.next != nil {
		e.next.prev = e.prev
	} else {
		s.oldest = e.prev
	}
	e.prev, e.next = nil, nil
}
