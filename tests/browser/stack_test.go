package browser

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/bffgate/bffgate/core/session"
	"github.com/bffgate/bffgate/core/session/memstore"
	"github.com/bffgate/bffgate/tests/browser/browsertest"
	"github.com/bffgate/bffgate/tests/demo"
	"github.com/bffgate/bffgate/tests/flowtest"
	"github.com/bffgate/bffgate/tests/op"
)

// stack is the demo stack of tests/demo (the test OP, an echo API, bffgate
// serve with the demo SPA) with one difference: the test holds the session
// store, so it knows the real tokens of every session and can search the
// browser's recording for them.
type stack struct {
	URL    string
	OP     *op.Server
	Store  *recordingStore
	Tokens *tokenRecorder // every token the provider gave bffgate
	Logs   *flowtest.SyncBuffer
}

// startStack starts the stack for one test and stops it when the test ends.
func startStack(t *testing.T, mode string) *stack {
	t.Helper()
	s := &stack{Store: newRecordingStore(), Tokens: &tokenRecorder{}, Logs: &flowtest.SyncBuffer{}}
	client := &http.Client{Timeout: 10 * time.Second, Transport: &browsertest.TokenTap{Seen: s.Tokens.seen}}
	d, err := demo.Start(demo.Options{Mode: mode, Store: s.Store, HTTPClient: client, Logs: s.Logs})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Close)
	s.URL, s.OP = d.URL, d.OP
	return s
}

// tokenRecorder keeps every ID token the provider gave bffgate, which
// bffgate verifies and then drops (it keeps none by default), so the test
// can search for them.
type tokenRecorder struct {
	mu       sync.Mutex // guards idTokens
	idTokens []string
}

func (r *tokenRecorder) seen(t browsertest.Tokens) {
	if t.IDToken == "" {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.idTokens = append(r.idTokens, t.IDToken)
}

func (r *tokenRecorder) IDTokens() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.idTokens...)
}

// recordingStore is a memory store that also keeps every value ever set,
// by key, so the test can open each version of a session (and so see every
// token it ever held, refreshed ones too) once it knows the session's ID
// from the browser's cookie.
type recordingStore struct {
	session.Store
	mu      sync.Mutex
	history map[string][][]byte
}

func newRecordingStore() *recordingStore {
	return &recordingStore{Store: memstore.New(nil), history: map[string][][]byte{}}
}

func (r *recordingStore) Set(ctx context.Context, key string, value []byte, ttl time.Duration, indexes ...string) error {
	r.mu.Lock()
	r.history[key] = append(r.history[key], bytes.Clone(value))
	r.mu.Unlock()
	return r.Store.Set(ctx, key, value, ttl, indexes...)
}

// keys returns the store keys ever set.
func (r *recordingStore) keys() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var keys []string
	for k := range r.history {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// versions opens every version ever stored of the session whose cookie
// value is cookie.
func (r *recordingStore) versions(cookie string) ([]*session.Session, error) {
	id, err := session.ParseID(cookie)
	if err != nil {
		return nil, fmt.Errorf("session cookie value %q: %w", cookie, err)
	}
	r.mu.Lock()
	raws := r.history[id.StoreKey()]
	r.mu.Unlock()
	var out []*session.Session
	for i, raw := range raws {
		s, err := session.Open(id, raw)
		if err != nil {
			return nil, fmt.Errorf("open version %d of the session: %w", i, err)
		}
		out = append(out, s)
	}
	return out, nil
}
