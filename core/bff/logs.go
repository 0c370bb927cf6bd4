package bff

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// logEvery is the least time between two log lines of one message: a
// store outage under load, or a client sending forged tokens, fails every
// request the same way, and one line a second tells as much as thousands.
const logEvery = time.Second

// logLimiter keeps the lines of each message to one per logEvery; a line
// that follows held-back ones says how many ("suppressed"). Messages are
// the engine's own constants, so it holds one entry per call site.
type logLimiter struct {
	mu   sync.Mutex // guards seen
	seen map[string]*logWindow
}

type logWindow struct {
	next time.Time // when the next line may be written
	held int       // lines held back since the last one written
}

// logLimited logs msg at level, unless a line of msg was written within
// logEvery.
func (b *Engine) logLimited(level slog.Level, msg string, args ...any) {
	now := b.now()
	l := &b.logs
	l.mu.Lock()
	w := l.seen[msg]
	if w == nil {
		if l.seen == nil {
			l.seen = map[string]*logWindow{}
		}
		w = &logWindow{}
		l.seen[msg] = w
	}
	if now.Before(w.next) {
		w.held++
		l.mu.Unlock()
		return
	}
	held := w.held
	w.next, w.held = now.Add(logEvery), 0
	l.mu.Unlock()
	if held > 0 {
		args = append(args, "suppressed", held)
	}
	b.log.Log(context.Background(), level, msg, args...)
}
