package redisstore

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/redis/go-redis/v9"
)

// LogTo sends go-redis's own log lines (a dial that failed, a Sentinel
// that did not answer, ...) to l as WARN records with the message
// "redisstore: go-redis" and the line as "detail", instead of go-redis's
// default: unstructured lines on stderr. A nil l is ignored.
//
// go-redis has one logger for the whole process (redis.SetLogger), shared
// by every client in it, bffgate's or not. So New never calls LogTo; a
// program that owns its process calls it once at start-up (bffgate serve
// does). A plugin must not: in a Tyk gateway the go-redis package is the
// gateway's own, and LogTo would move the gateway's Redis log lines too,
// so the Tyk plugin leaves them where Tyk put them. The first call
// installs the adapter; later calls only change where it writes.
func LogTo(l *slog.Logger) {
	if l == nil {
		return
	}
	goRedisLog.to.Store(l)
	goRedisLog.once.Do(func() { redis.SetLogger(&goRedisLog) })
}

var goRedisLog redisLogger

// redisLogger is go-redis's internal logging interface on a slog.Logger.
type redisLogger struct {
	once sync.Once
	to   atomic.Pointer[slog.Logger]
}

func (r *redisLogger) Printf(ctx context.Context, format string, v ...any) {
	l := r.to.Load()
	if ctx == nil {
		ctx = context.Background()
	}
	if !l.Enabled(ctx, slog.LevelWarn) {
		return
	}
	l.WarnContext(ctx, "redisstore: go-redis", "detail", fmt.Sprintf(format, v...))
}
