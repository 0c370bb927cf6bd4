package session

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"time"
)

// ErrExpired is returned by Manager.Load for a session past its maximum
// lifetime; the session has been deleted.
var ErrExpired = errors.New("session: expired")

// Manager keeps sessions in a Store and owns their life: lookup with
// sliding expiry, the refresh lock, save with the right TTL and
// back-channel logout indexes, and ending one or all of a user's. Its
// fields are set once; it is then safe for concurrent use.
type Manager struct {
	Store Store
	// Idle ends a session unused this long; Max ends it this long after
	// it was created, however it is used. Both must be positive.
	Idle, Max time.Duration
	// Now is the clock. Defaults to time.Now.
	Now func() time.Time
	// Ended, when not nil, is called with the store keys of sessions the
	// Manager ended (End, EndAll, EndKeys, and Load past the maximum
	// lifetime), after the store deleted them: for connections that
	// outlive the request that opened them. It must not block. Sessions
	// that idle out expire in the store unseen, and those ended by another
	// process are not reported here (see Alive). Defaults to none.
	Ended func(keys []string)
}

func (m *Manager) now() time.Time {
	if m.Now == nil {
		return time.Now()
	}
	return m.Now()
}

// Load reads and opens the session with the given ID; slide resets its
// idle timer. It returns ErrNotFound when there is none, ErrMalformed when
// the stored value cannot be opened and ErrExpired past the maximum
// lifetime (both deleted); any other error means the store could not
// answer.
func (m *Manager) Load(ctx context.Context, id ID, slide bool) (*Session, error) {
	ttl := time.Duration(0)
	if slide {
		ttl = m.Idle
	}
	raw, err := m.Store.Get(ctx, id.StoreKey(), ttl)
	if err != nil {
		return nil, err
	}
	s, err := Open(id, raw)
	if err != nil {
		_ = m.Store.Delete(ctx, id.StoreKey())
		return nil, ErrMalformed
	}
	if !m.now().Before(s.Created.Add(m.Max)) {
		if m.Store.Delete(ctx, id.StoreKey()) == nil {
			m.ended([]string{id.StoreKey()})
		}
		return nil, ErrExpired
	}
	return s, nil
}

// TTL is how long s may stay in the store from now: the idle timeout, cut
// short by its absolute end.
func (m *Manager) TTL(s *Session) time.Duration {
	return min(m.Idle, s.Created.Add(m.Max).Sub(m.now()))
}

// Save seals s under id for its TTL, in the back-channel logout indexes of
// its sub and sid, with its listing (creation time and device) sealed for
// its user's list of sessions. A session past its end is not saved.
func (m *Manager) Save(ctx context.Context, id ID, s *Session) error {
	sealed, err := sealEnvelope(id, s)
	if err != nil {
		return err
	}
	ttl := m.TTL(s)
	if ttl <= 0 {
		return nil
	}
	idx := []string{indexName("sub", s.Issuer, s.Subject)}
	if s.SID != "" {
		idx = append(idx, indexName("sid", s.Issuer, s.SID))
	}
	return m.Store.Set(ctx, id.StoreKey(), sealed, ttl, idx...)
}

// End deletes the session.
func (m *Manager) End(ctx context.Context, id ID) error {
	return m.EndKeys(ctx, id.StoreKey())
}

// EndAll ends every session of the issuer's sid, or of its sub when sid is
// empty (OpenID Connect Back-Channel Logout), and says how many there were.
func (m *Manager) EndAll(ctx context.Context, issuer, sid, sub string) (int, error) {
	index := indexName("sub", issuer, sub)
	if sid != "" {
		index = indexName("sid", issuer, sid)
	}
	keys, err := m.Store.TakeIndex(ctx, index)
	if err == nil {
		err = m.EndKeys(ctx, keys...)
	}
	return len(keys), err
}

// indexName names a back-channel logout index. It hashes the issuer with
// the sid or sub, so the store holds no identifiers in clear.
func indexName(kind, iss, v string) string {
	sum := sha256.Sum256([]byte(iss + "\x00" + v))
	return kind + ":" + base64.RawURLEncoding.EncodeToString(sum[:18])
}

// lockPoll is how often Lock looks again at a lock another node holds;
// LockTTL is how long a lock outlives a node that died holding it (the
// store renews it while its holder lives).
const (
	lockPoll = 50 * time.Millisecond
	LockTTL  = 3 * time.Second
)

// Lock takes the session's refresh lock, waiting while another node holds
// it, until ctx ends. When the store is not a Locker (one process) it
// returns at once: callers also serialise refreshes in the process.
func (m *Manager) Lock(ctx context.Context, id ID) (release func(), err error) {
	l, ok := m.Store.(Locker)
	if !ok {
		return func() {}, nil
	}
	t := time.NewTicker(lockPoll)
	defer t.Stop()
	for {
		release, ok, err := l.TryLock(ctx, "lock:"+id.StoreKey(), LockTTL)
		if err != nil {
			return nil, err
		}
		if ok {
			return release, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("session: waiting for the refresh lock: %w", ctx.Err())
		case <-t.C:
		}
	}
}
