package serve

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bffgate/bffgate/core/session"
	"github.com/bffgate/bffgate/core/session/memstore"
)

// syncBuffer is a bytes.Buffer safe for the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestAccessLog: one line per request with method, path, status, request
// ID and a session tag; never the query, the cookie or the token.
func TestAccessLog(t *testing.T) {
	var seenID string
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seenID = r.Header.Get("X-Request-Id")
		io.WriteString(w, "up")
	}))
	defer up.Close()
	var logs syncBuffer
	store := memstore.New(time.Now)
	c := testConfig(t, up.URL)
	c.BFF.Store = store
	c.BFF.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	id, _ := session.NewID()
	const token = "access-token-that-must-not-be-logged"
	sealed, _ := session.Seal(id, &session.Session{Issuer: c.BFF.Issuer, Subject: "alice", Claims: `{}`,
		AccessToken: token, TokenType: "Bearer", Expiry: time.Now().Add(time.Hour), Created: time.Now()})
	if err := store.Set(context.Background(), id.StoreKey(), sealed, time.Hour); err != nil {
		t.Fatal(err)
	}
	p, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(p.Handler)
	defer srv.Close()
	req, _ := http.NewRequest("GET", srv.URL+"/api/orders?code=secret-code&state=secret-state", nil)
	req.Header.Set("Cookie", "__Host-bffgate="+id.String())
	req.Header.Set("X-CSRF", "1")
	req.Header.Set("X-Request-Id", "abc-123")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("X-Request-Id") != "abc-123" || seenID != "abc-123" {
		t.Fatalf("status %d, X-Request-Id to the client %q, upstream %q; want 200 and abc-123 both", resp.StatusCode, resp.Header.Get("X-Request-Id"), seenID)
	}
	resp, err = http.Get(srv.URL + "/api/x") // no CSRF header, no session; a made-up ID
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		if strings.Contains(l, "bffgate: request") {
			lines = append(lines, l)
		}
	}
	if len(lines) != 2 {
		t.Fatalf("%d access lines, want 2:\n%s", len(lines), logs.String())
	}
	for _, want := range []string{"method=GET", "path=/api/orders", "status=200", "request_id=abc-123", "session=" + sessionTag(id.String())} {
		if !strings.Contains(lines[0], want) {
			t.Errorf("access line %q lacks %s", lines[0], want)
		}
	}
	if !strings.Contains(lines[1], "status=403") || !strings.Contains(lines[1], "request_id=") || strings.Contains(lines[1], "session=") {
		t.Errorf("second access line %q", lines[1])
	}
	for _, secret := range []string{token, id.String(), "secret-code", "secret-state"} {
		if strings.Contains(logs.String(), secret) {
			t.Errorf("the log holds %q", secret)
		}
	}
}
