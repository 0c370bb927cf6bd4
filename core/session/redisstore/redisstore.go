package redisstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/bffgate/bffgate/core/session"
)

var (
	_ session.Store  = (*Store)(nil)
	_ session.Locker = (*Store)(nil)
	_ session.Lister = (*Store)(nil)
)

// Key layout, after the prefix.
const (
	sessionSpace = "s:" // a session's sealed value, a string
	indexSpace   = "i:" // an index, a set of plain session keys
	lockSpace    = "l:" // a lock, a string holding its holder's token
)

// indexScript adds ARGV[1] to the set KEYS[1] and makes the set live at
// least ARGV[2] milliseconds more, never shortening it: an index lives as
// long as its newest member. One script per index keeps the three steps
// atomic on that key (so a set is never left without an expiry) and works
// on Redis 6.2, which lacks PEXPIRE's NX and GT flags.
var indexScript = redis.NewScript(`
redis.call('SADD', KEYS[1], ARGV[1])
local ttl = tonumber(ARGV[2])
if redis.call('PTTL', KEYS[1]) < ttl then
	redis.call('PEXPIRE', KEYS[1], ttl)
end
return 1
`)

// slideSource returns the value of KEYS[1] and resets its expiry to
// ARGV[1] milliseconds only when less than ARGV[1] - ARGV[2] remain, so a
// read within ARGV[2] of the last slide writes nothing. Redis replicates a
// script by its effects (the only mode since Redis 7; the default since 5),
// so such a read sends nothing to replicas or the AOF, and a slide sends
// one PEXPIREAT, as GETEX did.
const slideSource = `
local v = redis.call('GET', KEYS[1])
if not v then
	return false
end
local ttl = tonumber(ARGV[1])
if redis.call('PTTL', KEYS[1]) < ttl - tonumber(ARGV[2]) then
	redis.call('PEXPIRE', KEYS[1], ttl)
end
return v
`

// slideHash is slideSource's SHA-1, for EVALSHA.
var slideHash = redis.NewScript(slideSource).Hash()

// slideGrain is the fraction of the ttl by which a sliding Get may leave
// a key's expiry short of the full ttl before it resets it: 1/slideGrain.
const slideGrain = 10

// unlockScript deletes the lock KEYS[1] only if it still holds the token
// ARGV[1], so a holder whose lock expired cannot free the next holder's.
var unlockScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
	return redis.call('DEL', KEYS[1])
end
return 0
`)

// renewScript extends the lock KEYS[1] to ARGV[2] ms only if it still
// holds the token ARGV[1].
var renewScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
	return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
`)

// Store is a session.Store and session.Locker on Redis. It is safe for
// concurrent use. Build it with New or NewFromClient.
//
// Sliding expiry has a grain of a tenth of the ttl: a sliding Get resets
// the key's expiry only when more than ttl/10 has passed since the last
// reset, so API requests on a busy session cost Redis reads, not writes
// (no replication, no AOF append), and at most one write per ttl/10 per
// session. The price: a session may end up to ttl/10 before a full idle
// timeout after its last request (48 minutes of an 8-hour idle timeout).
type Store struct {
	c      redis.UniversalClient
	prefix string
	owned  bool   // New built c, so Close closes it
	cache  *cache // nil when Config.CacheTTLMS is 0
}

// New builds a Store from cfg: it fills defaults in, validates, and builds
// the client. It makes no network call; use Ping to check that Redis
// answers. Configuration mistakes are *ConfigError.
func New(cfg Config) (*Store, error) {
	cfg = cfg.withDefaults()
	opts, err := cfg.options()
	if err != nil {
		return nil, err
	}
	s := &Store{c: redis.NewUniversalClient(opts), prefix: cfg.KeyPrefix, owned: true}
	if cfg.CacheTTLMS > 0 {
		s.cache = newCache(ms(cfg.CacheTTLMS), cfg.CacheMaxEntries)
	}
	return s, nil
}

// NewFromClient returns a Store on a client the caller built and closes.
// prefix is put before every key; "" means DefaultKeyPrefix. The client
// must send commands to masters only (go-redis's ReadOnly, RouteByLatency
// and RouteRandomly off). The Store has no read cache.
func NewFromClient(c redis.UniversalClient, prefix string) *Store {
	if prefix == "" {
		prefix = DefaultKeyPrefix
	}
	return &Store{c: c, prefix: prefix}
}

// Close closes the client if New built it; a client given to NewFromClient
// is the caller's to close.
func (s *Store) Close() error {
	if !s.owned {
		return nil
	}
	return s.c.Close()
}

// Ping checks that Redis answers: every master, for a Cluster.
func (s *Store) Ping(ctx context.Context) error {
	var err error
	if cc, ok := s.c.(*redis.ClusterClient); ok {
		err = cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error {
			return c.Ping(ctx).Err()
		})
	} else {
		err = s.c.Ping(ctx).Err()
	}
	if err != nil {
		return fmt.Errorf("redisstore: ping: %w", err)
	}
	return nil
}

// Get implements session.Store with GET when ttl is 0, and otherwise with
// one script (EVALSHA, EVAL if the server does not have it yet) that reads
// the value and resets its expiry to ttl if less than ttl - ttl/10 is left
// (see Store). With the read cache on, a Get with ttl > 0 may be answered
// from the cache without a round trip, and then does not slide the
// expiry in Redis (see Config.CacheTTLMS); a Get with ttl 0 always reads
// Redis, so a caller that re-reads a session under the refresh lock sees
// what another node saved.
func (s *Store) Get(ctx context.Context, key string, ttl time.Duration) ([]byte, error) {
	if ttl <= 0 {
		return s.get(ctx, s.c.Get(ctx, s.prefix+sessionSpace+key))
	}
	ttl = roundUpMS(ttl)
	if s.cache == nil {
		return s.slide(ctx, key, ttl)
	}
	if v, ok := s.cache.get(key); ok {
		return v, nil
	}
	start, gen := s.cache.begin()
	v, err := s.slide(ctx, key, ttl)
	if err == nil {
		s.cache.fill(key, v, ttl, start, gen)
	}
	return v, err
}

// slide runs the slide script on key: EVALSHA, and EVAL when the server
// answers NOSCRIPT (its first time, or after a failover: scripts are not
// replicated). It builds the command itself rather than use redis.Script,
// whose reply is a string the caller would copy again.
func (s *Store) slide(ctx context.Context, key string, ttl time.Duration) ([]byte, error) {
	k, n := s.prefix+sessionSpace+key, ttl.Milliseconds()
	cmd := redis.NewStringCmd(ctx, "evalsha", slideHash, 1, k, n, n/slideGrain)
	if err := s.c.Process(ctx, cmd); redis.HasErrorPrefix(err, "NOSCRIPT") {
		cmd = redis.NewStringCmd(ctx, "eval", slideSource, 1, k, n, n/slideGrain)
		_ = s.c.Process(ctx, cmd)
	}
	return s.get(ctx, cmd)
}

// get translates a GET or slide script reply.
func (s *Store) get(ctx context.Context, cmd *redis.StringCmd) ([]byte, error) {
	v, err := cmd.Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, session.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("redisstore: get: %w", err)
	}
	return v, nil
}

// Set implements session.Store: SET with the ttl, and for each index
// a script that adds key to the index's set and extends the set's expiry
// to ttl if that is later. All go in one pipeline, one round trip per
// server. It is a plain pipeline, not MULTI/EXEC: in a Cluster the value
// and its indexes hash to different slots, often on different nodes, and
// a transaction cannot span slots (go-redis refuses it with ErrCrossSlot).
// So a failed Set may have stored the value without an index, or the
// reverse; each index update is atomic on its own key.
func (s *Store) Set(ctx context.Context, key string, value []byte, ttl time.Duration, indexes ...string) error {
	if ttl <= 0 {
		return fmt.Errorf("redisstore: set: ttl is %v: it must be positive", ttl)
	}
	ttl = roundUpMS(ttl)
	if s.cache != nil {
		defer s.cache.invalidate(key)
	}
	var err error
	if len(indexes) == 0 {
		err = s.c.Set(ctx, s.prefix+sessionSpace+key, value, ttl).Err()
	} else {
		_, err = s.c.Pipelined(ctx, func(p redis.Pipeliner) error {
			p.Set(ctx, s.prefix+sessionSpace+key, value, ttl)
			for _, idx := range indexes {
				// EVAL, not EVALSHA: a NOSCRIPT reply inside a pipeline
				// would cost a second round trip, and scripts are not
				// replicated, so a promoted replica or a new Cluster node
				// answers NOSCRIPT until loaded. The script is short.
				indexScript.Eval(ctx, p, []string{s.prefix + indexSpace + idx}, key, ttl.Milliseconds())
			}
			return nil
		})
	}
	if err != nil {
		return fmt.Errorf("redisstore: set: %w", err)
	}
	return nil
}

// Delete implements session.Store. Several keys go as one DEL each in one
// pipeline: in a Cluster they hash to different slots, and a DEL naming
// keys of several slots fails with CROSSSLOT.
func (s *Store) Delete(ctx context.Context, keys ...string) error {
	if len(keys) == 0 {
		return nil
	}
	if s.cache != nil {
		defer s.cache.invalidate(keys...)
	}
	var err error
	if len(keys) == 1 {
		err = s.c.Del(ctx, s.prefix+sessionSpace+keys[0]).Err()
	} else {
		_, err = s.c.Pipelined(ctx, func(p redis.Pipeliner) error {
			for _, k := range keys {
				p.Del(ctx, s.prefix+sessionSpace+k)
			}
			return nil
		})
	}
	if err != nil {
		return fmt.Errorf("redisstore: delete: %w", err)
	}
	return nil
}

// TakeIndex implements session.Store with SMEMBERS and DEL in one
// MULTI/EXEC on the index's key, so a member added meanwhile is either
// returned or left in a new index, never lost.
func (s *Store) TakeIndex(ctx context.Context, index string) ([]string, error) {
	var members *redis.StringSliceCmd
	_, err := s.c.TxPipelined(ctx, func(p redis.Pipeliner) error {
		k := s.prefix + indexSpace + index
		members = p.SMembers(ctx, k)
		p.Del(ctx, k)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("redisstore: take index: %w", err)
	}
	keys := members.Val()
	if s.cache != nil {
		s.cache.invalidate(keys...)
	}
	return keys, nil
}

// Members implements session.Lister: SRANDMEMBER of up to
// session.MaxMembers members (all of them when the index has no more),
// then GET and PTTL of each in one pipeline; the members found gone are
// removed from the index (SREM, best effort).
func (s *Store) Members(ctx context.Context, index string) ([]session.Member, error) {
	k := s.prefix + indexSpace + index
	keys, err := s.c.SRandMemberN(ctx, k, session.MaxMembers).Result()
	if err != nil {
		return nil, fmt.Errorf("redisstore: members: %w", err)
	}
	if len(keys) == 0 {
		return nil, nil
	}
	gets := make([]*redis.StringCmd, len(keys))
	ttls := make([]*redis.DurationCmd, len(keys))
	_, err = s.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, key := range keys {
			gets[i] = p.Get(ctx, s.prefix+sessionSpace+key)
			ttls[i] = p.PTTL(ctx, s.prefix+sessionSpace+key)
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("redisstore: members: %w", err)
	}
	now := time.Now()
	var out []session.Member
	var gone []any
	for i, key := range keys {
		v, err := gets[i].Bytes()
		if err != nil && !errors.Is(err, redis.Nil) {
			return nil, fmt.Errorf("redisstore: members: %w", err)
		}
		if err == nil && ttls[i].Err() != nil {
			return nil, fmt.Errorf("redisstore: members: %w", ttls[i].Err())
		}
		ttl := ttls[i].Val()
		if err != nil || ttl <= 0 {
			gone = append(gone, key)
			continue
		}
		out = append(out, session.Member{Key: key, Value: v, Expires: now.Add(ttl)})
	}
	if len(gone) > 0 {
		_ = s.c.SRem(ctx, k, gone...).Err()
	}
	return out, nil
}

// TryLock implements session.Locker with SET key token NX PX ttl, where
// token is 128 random bits. While the lock is held, it is renewed to ttl
// every ttl/3 (until release or ctx ends), so ttl bounds only how long a
// lock outlives a holder that died, not how long a holder may work.
// release deletes the lock only while it still holds this token (a
// compare-and-delete script); it is safe to call more than once, and if
// Redis cannot be reached the lock simply expires after ttl. release uses
// ctx's values but not its cancellation, so a lock taken for a request
// that has ended is still freed.
func (s *Store) TryLock(ctx context.Context, key string, ttl time.Duration) (release func(), ok bool, err error) {
	if ttl <= 0 {
		return nil, false, fmt.Errorf("redisstore: lock: ttl is %v: it must be positive", ttl)
	}
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, false, fmt.Errorf("redisstore: lock: %w", err)
	}
	token := hex.EncodeToString(b[:])
	k := s.prefix + lockSpace + key
	err = s.c.SetArgs(ctx, k, token, redis.SetArgs{Mode: "NX", TTL: roundUpMS(ttl)}).Err()
	if errors.Is(err, redis.Nil) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("redisstore: lock: %w", err)
	}
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(ttl / 3)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
				if n, err := renewScript.Run(ctx, s.c, []string{k}, token, roundUpMS(ttl).Milliseconds()).Int(); err == nil && n == 0 {
					return // lost: expired while Redis was unreachable
				}
			}
		}
	}()
	var once sync.Once
	release = func() {
		once.Do(func() {
			close(done)
			_ = unlockScript.Run(context.WithoutCancel(ctx), s.c, []string{k}, token).Err()
		})
	}
	return release, true, nil
}

// roundUpMS rounds d up to whole milliseconds, Redis's finest expiry.
func roundUpMS(d time.Duration) time.Duration {
	return (d + time.Millisecond - 1).Truncate(time.Millisecond)
}
