package serve

import (
	"context"
	"sync"
	"time"
)

// streams holds the requests that outlive their response headers
// (WebSocket connections, Server-Sent Events) by session, to end them
// when their session ends: at once for the ends this process makes (the
// engine's SessionEnded), at the session's absolute end (a timer), and
// otherwise when a periodic check finds the session gone from the store
// (it idled out, or another node or `bffgate sessions revoke` ended it).
// Ending one cancels its request's context: the reverse proxy then closes
// the upstream connection, and with it the client's.
type streams struct {
	now func() time.Time

	mu   sync.Mutex // guards open
	open map[string]map[*stream]struct{}
}

type stream struct {
	cancel context.CancelFunc
	timer  *time.Timer
}

func newStreams(now func() time.Time) *streams {
	if now == nil {
		now = time.Now
	}
	return &streams{now: now, open: map[string]map[*stream]struct{}{}}
}

// start registers a stream of the session key that must end by ends. It
// returns the context to serve it under and the function to call when it
// is over.
func (s *streams) start(ctx context.Context, key string, ends time.Time) (context.Context, func()) {
	ctx, cancel := context.WithCancel(ctx)
	st := &stream{cancel: cancel}
	st.timer = time.AfterFunc(ends.Sub(s.now()), cancel)
	s.mu.Lock()
	m := s.open[key]
	if m == nil {
		m = map[*stream]struct{}{}
		s.open[key] = m
	}
	m[st] = struct{}{}
	s.mu.Unlock()
	return ctx, func() {
		st.timer.Stop()
		cancel()
		s.mu.Lock()
		delete(m, st)
		if len(s.open[key]) == 0 {
			delete(s.open, key)
		}
		s.mu.Unlock()
	}
}

// end ends every stream of the sessions keys. It does not block.
func (s *streams) end(keys []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, k := range keys {
		for st := range s.open[k] {
			st.cancel()
		}
	}
}

// keys returns the sessions that have streams open.
func (s *streams) keys() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.open))
	for k := range s.open {
		out = append(out, k)
	}
	return out
}

// check ends the streams of the sessions alive says are gone. A store
// that cannot answer leaves them open until the next check: an outage of
// the store does not cut every stream.
func (s *streams) check(ctx context.Context, alive func(context.Context, string) (bool, error)) {
	var gone []string
	for _, k := range s.keys() {
		if ok, err := alive(ctx, k); err == nil && !ok {
			gone = append(gone, k)
		}
	}
	s.end(gone)
}

// watch runs check every interval until ctx ends.
func (s *streams) watch(ctx context.Context, interval time.Duration, alive func(context.Context, string) (bool, error)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			cctx, cancel := context.WithTimeout(ctx, interval)
			s.check(cctx, alive)
			cancel()
		}
	}
}
