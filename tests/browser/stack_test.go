package browser

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bffgate/bffgate/core/bff"
	"github.com/bffgate/bffgate/core/session"
	"github.com/bffgate/bffgate/core/session/memstore"
	"github.com/bffgate/bffgate/internal/serve"
	"github.com/bffgate/bffgate/tests/demo"
	"github.com/bffgate/bffgate/tests/op"
)

// stack is the demo stack of tests/demo (the test OP, an echo API, bffgate
// serve with the demo SPA) built here from the same pieces, with one
// difference: the test holds the session store, so it knows the real
// tokens of every session and can search the browser's recording for them.
//
// If demo.Options grows a Store field, this can become demo.Start with a
// recordingStore.
type stack struct {
	URL   string
	OP    *op.Server
	Store *recordingStore
	Logs  *syncBuffer
}

// startStack starts the stack for one test and stops it when the test ends.
func startStack(t *testing.T, mode string) *stack {
	t.Helper()
	s := &stack{Store: newRecordingStore(), Logs: &syncBuffer{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	s.URL = "http://" + ln.Addr().String()

	s.OP = op.StartT(t, op.Options{
		RedirectURIs:           []string{s.URL + "/oauth/callback"},
		PostLogoutRedirectURIs: []string{s.URL + "/logout/callback"},
		BackchannelLogoutURI:   s.URL + "/backchannel-logout",
		Stderr:                 s.Logs,
	})

	apiLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	api := &http.Server{Handler: echoAPI(s.OP), ReadHeaderTimeout: 5 * time.Second}
	go api.Serve(apiLn)
	t.Cleanup(func() { api.Close() })
	apiURL := "http://" + apiLn.Addr().String()

	var key [32]byte
	_, _ = rand.Read(key[:])
	h, _, err := serve.New(&serve.Config{
		BFF: bff.Config{
			Issuer: s.OP.Issuer, ClientID: s.OP.ClientID, ClientSecret: s.OP.ClientSecret,
			RedirectURL:           s.URL + "/oauth/callback",
			PostLogoutRedirectURL: s.URL + "/logout/callback",
			CookieKeys:            []string{base64.StdEncoding.EncodeToString(key[:])},
			Mode:                  mode,
			IdentityHeaders: []bff.IdentityHeader{
				{Header: "X-User", Claim: "sub"}, {Header: "X-User-Email", Claim: "email"},
			},
			Store:  s.Store,
			Logger: slog.New(slog.NewTextHandler(s.Logs, nil)),
		},
		Routes: []serve.Route{
			{Path: "/api/", Upstream: apiURL},
			{Path: "/direct/", Upstream: apiURL, Public: true},
		},
		StaticDir: filepath.Join(demo.RepoDir(), "sdk-js", "demo", "dist"),
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return s
}

// echoAPI is tests/demo's API: it shows what reached it, never the token
// itself, and asks the provider whether the bearer token is valid.
func echoAPI(p *op.Server) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		out := map[string]any{"method": r.Method, "path": r.URL.Path}
		auth := r.Header.Get("Authorization")
		if scheme, tok, ok := strings.Cut(auth, " "); ok && strings.EqualFold(scheme, "bearer") && tok != "" {
			out["authorization"] = fmt.Sprintf("Bearer (a %d-character token)", len(tok))
			ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
			defer cancel()
			if info, err := p.Introspect(ctx, tok); err == nil {
				keep := map[string]any{}
				for _, k := range []string{"active", "sub", "scope", "client_id", "exp", "aud"} {
					if v, ok := info[k]; ok {
						keep[k] = v
					}
				}
				out["token"] = keep
			} else {
				out["token"] = map[string]any{"error": "introspection failed"}
			}
		} else {
			out["authorization"] = nil
		}
		names := []string{}
		for _, c := range r.Cookies() {
			names = append(names, c.Name)
		}
		sort.Strings(names)
		out["cookies"] = names
		out["identity"] = map[string]string{"X-User": r.Header.Get("X-User"), "X-User-Email": r.Header.Get("X-User-Email")}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		if auth == "" {
			w.WriteHeader(http.StatusUnauthorized)
		}
		json.NewEncoder(w).Encode(out)
	})
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

// syncBuffer collects the stack's logs from several goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
