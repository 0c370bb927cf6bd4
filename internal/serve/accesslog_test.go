package serve

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/bffgate/bffgate/core/session"
	"github.com/bffgate/bffgate/core/session/memstore"
	"github.com/bffgate/bffgate/tests/flowtest"
)

// TestAccessLog: one line per request with method, path, status, request
// ID and a session tag; never the query, the cookie or the token.
func TestAccessLog(t *testing.T) {
	var seenID string
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seenID = r.Header.Get("X-Request-Id")
		io.WriteString(w, "up")
	}))
	defer up.Close()
	var logs flowtest.SyncBuffer
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
	for _, want := range []string{"method=GET", "path=/api/orders", "kind=api", "status=200", "request_id=abc-123", "session=" + sessionTag(id.String())} {
		if !strings.Contains(lines[0], want) {
			t.Errorf("access line %q lacks %s", lines[0], want)
		}
	}
	if strings.Contains(lines[0], "code=") {
		t.Errorf("access line of a forward %q has an error code", lines[0])
	}
	if !strings.Contains(lines[1], "status=403") || !strings.Contains(lines[1], "code=csrf_header_missing") || !strings.Contains(lines[1], "request_id=") || strings.Contains(lines[1], "session=") {
		t.Errorf("second access line %q, want status=403 code=csrf_header_missing", lines[1])
	}
	for _, secret := range []string{token, id.String(), "secret-code", "secret-state"} {
		if strings.Contains(logs.String(), secret) {
			t.Errorf("the log holds %q", secret)
		}
	}
}

// TestAccessLogCodes: the error code of every kind of answer reaches the
// access line: the engine's (on its own endpoints and on routes), serve's
// own (no route, body too large, upstream down, with the cause once).
func TestAccessLogCodes(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "up") }))
	defer up.Close()
	var logs flowtest.SyncBuffer
	c := testConfig(t, up.URL)
	c.BFF.Store = memstore.New(time.Now)
	c.BFF.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	c.Routes = append(c.Routes, Route{Path: "/down/", Upstream: "http://127.0.0.1:1", Public: true},
		Route{Path: "/small/", Upstream: up.URL, Public: true, MaxBodyBytes: 4})
	p, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(p.Handler)
	defer srv.Close()
	for _, tt := range []struct {
		method, path, body string
		want               []string
	}{
		{"GET", "/token", "", []string{"kind=bff", "status=404", "code=not_found"}}, // token_endpoint off,
		{"GET", "/api/x", "", []string{"kind=api", "status=403", "code=csrf_header_missing"}},
		{"POST", "/nothing-here", "", []string{"kind=none", "status=404", "code=not_found"}},
		{"GET", "/down/x", "", []string{"kind=public", "status=502", "code=upstream_unavailable", "error=", "connection refused"}},
		{"POST", "/small/x", "too large a body", []string{"kind=public", "status=413", "code=body_too_large"}},
		{"GET", "/a/%2e%2e/b", "", []string{"kind=bff", "status=400", "code=invalid_path"}},
		{"GET", "/down/../x", "", []string{"status=400", "code=invalid_path"}},
	} {
		before := len(logs.String())
		req, _ := http.NewRequest(tt.method, srv.URL+tt.path, strings.NewReader(tt.body))
		if tt.body == "" {
			req.Body = nil
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		// The line comes when the handler returns, which may be after the
		// client has the answer (a 413 is flushed before the body is
		// drained).
		line := ""
		for i := 0; i < 200 && !strings.Contains(line, "bffgate: request"); i++ {
			if i > 0 {
				time.Sleep(10 * time.Millisecond)
			}
			line = logs.String()[before:]
		}
		for _, w := range tt.want {
			if !strings.Contains(line, w) {
				t.Errorf("%s %s: access line %q lacks %s", tt.method, tt.path, line, w)
			}
		}
	}
}
