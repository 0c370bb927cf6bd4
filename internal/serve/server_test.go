package serve

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// startServe runs Serve for c on a loopback port and returns its address.
func startServe(t *testing.T, c *Config) string {
	t.Helper()
	h, _, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, c, ln, h) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return ln.Addr().String()
}

// dial opens a raw connection that fails the test's reads after a
// generous bound instead of hanging.
func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// closedWithin reports whether the server closes c within d, skipping
// whatever it sends first.
func closedWithin(c net.Conn, d time.Duration) (bool, error) {
	_ = c.SetReadDeadline(time.Now().Add(d))
	_, err := io.Copy(io.Discard, c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return false, nil
	}
	return true, err // EOF (nil from io.Copy) or a reset: closed either way
}

func TestIdleConnectionsAreClosed(t *testing.T) {
	c := testConfig(t, "http://127.0.0.1:1")
	c.Limits.IdleTimeout = 1
	addr := startServe(t, c)
	conn := dial(t, addr)
	start := time.Now()
	fmt.Fprint(conn, "GET /session HTTP/1.1\r\nHost: app\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || resp.Close {
		t.Fatalf("GET /session = %d (close %v), want 401 on a kept-alive connection", resp.StatusCode, resp.Close)
	}
	if closed, err := closedWithin(conn, 15*time.Second); !closed {
		t.Fatalf("an idle keep-alive connection was still open %v after its request (idle timeout 1 s): %v", time.Since(start).Round(time.Second), err)
	}
}

func TestSlowBodyIsCut(t *testing.T) {
	upstreamRead := make(chan error, 1)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, err := io.ReadAll(r.Body)
		upstreamRead <- err
	}))
	t.Cleanup(up.Close) // after Serve stops (cleanups run last in, first out)
	c := testConfig(t, up.URL)
	c.Limits.BodyTimeout = 1
	addr := startServe(t, c)
	for _, path := range []string{"/direct/upload", "/api/upload", "/logout"} {
		t.Run(path, func(t *testing.T) {
			conn := dial(t, addr)
			// Headers promise 1000 bytes; 10 come, then nothing.
			fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: app\r\nX-CSRF: 1\r\nContent-Length: 1000\r\n\r\n0123456789", path)
			start := time.Now()
			if closed, err := closedWithin(conn, 15*time.Second); !closed {
				t.Fatalf("a connection sending its body slowly was still open after %v (body timeout 1 s): %v", time.Since(start).Round(time.Second), err)
			}
		})
	}
	select {
	case err := <-upstreamRead:
		if err == nil {
			t.Fatal("the upstream read a complete body; want the cut body to fail upstream too")
		}
	case <-time.After(15 * time.Second):
		t.Fatal("the upstream was still waiting for the cut body")
	}
}

func TestBodyReadThenSlowUpstream(t *testing.T) {
	// The body timeout bounds the body only: an upstream slower than it,
	// answering after the body was read, still answers.
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		time.Sleep(2 * time.Second)
		fmt.Fprintf(w, "got %d bytes", len(b))
	}))
	t.Cleanup(up.Close)
	c := testConfig(t, up.URL)
	c.Limits.BodyTimeout = 1
	addr := startServe(t, c)
	resp, err := http.Post("http://"+addr+"/direct/x", "text/plain", strings.NewReader("hello"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || string(body) != "got 5 bytes" {
		t.Fatalf("POST with a slow upstream = %d %q, want 200 %q", resp.StatusCode, body, "got 5 bytes")
	}
}

func TestUpstreamTimeout(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() { // accepts, reads the request, never answers
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go io.Copy(io.Discard, c)
		}
	}()
	c := testConfig(t, "http://"+ln.Addr().String())
	c.Limits.UpstreamTimeout = 1
	addr := startServe(t, c)
	client := &http.Client{Timeout: 20 * time.Second}
	start := time.Now()
	resp, err := client.Get("http://" + addr + "/direct/x")
	if err != nil {
		t.Fatalf("GET to an upstream that never answers: %v (want 504 within the upstream timeout)", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	took := time.Since(start)
	if resp.StatusCode != http.StatusGatewayTimeout || !strings.Contains(string(body), `"upstream_timeout"`) {
		t.Fatalf("GET to an upstream that never answers = %d %s, want 504 upstream_timeout", resp.StatusCode, body)
	}
	if took > 10*time.Second {
		t.Fatalf("504 came after %v; the upstream timeout is 1 s", took)
	}
}

func TestBodyTooLarge(t *testing.T) {
	var got int
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			return
		}
		got = len(b)
		fmt.Fprintf(w, "got %d bytes", len(b))
	}))
	t.Cleanup(up.Close)
	c := testConfig(t, up.URL)
	c.Routes = append(c.Routes, Route{Path: "/uploads/", Upstream: up.URL, Public: true, MaxBodyBytes: 4 << 20})
	addr := startServe(t, c)
	const mib = 1 << 20
	for _, tt := range []struct {
		name    string
		path    string
		size    int
		chunked bool
		want    int
	}{
		{"at the default limit", "/direct/x", mib, false, 200},
		{"over the default limit", "/direct/x", mib + 1, false, 413},
		{"over the default limit, chunked", "/direct/x", mib + 1, true, 413},
		{"BFF endpoint over the default limit", "/backchannel-logout", mib + 1, false, 413},
		{"route with its own limit", "/uploads/x", 3 * mib, false, 200},
		{"over the route's own limit, chunked", "/uploads/x", 4*mib + 1, true, 413},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var body io.Reader = strings.NewReader(strings.Repeat("a", tt.size))
			if tt.chunked {
				body = io.MultiReader(body) // hides the length: sent chunked
			}
			req, err := http.NewRequest("POST", "http://"+addr+tt.path, body)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tt.want {
				t.Fatalf("POST %d bytes to %s = %d %s, want %d", tt.size, tt.path, resp.StatusCode, b, tt.want)
			}
			if tt.want == 413 && !strings.Contains(string(b), `"body_too_large"`) {
				t.Fatalf("413 body = %s, want error body_too_large", b)
			}
			if tt.want == 200 && got != tt.size {
				t.Fatalf("upstream got %d bytes, want %d", got, tt.size)
			}
		})
	}
}

func TestConnectionCap(t *testing.T) {
	c := testConfig(t, "http://127.0.0.1:1")
	c.Limits.MaxConnections = 3
	addr := startServe(t, c)
	var held []net.Conn
	for range 3 {
		conn := dial(t, addr)
		get(t, conn) // served, then kept alive
		held = append(held, conn)
	}
	over := dial(t, addr)
	if closed, _ := closedWithin(over, 10*time.Second); !closed {
		t.Fatal("a connection over the cap was held open; want it closed at once")
	}
	held[0].Close()
	// The slot comes back once the server has seen the close.
	deadline := time.Now().Add(10 * time.Second)
	for {
		conn := dial(t, addr)
		fmt.Fprint(conn, "GET /session HTTP/1.1\r\nHost: app\r\n\r\n")
		_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a fresh connection after one of the held ones closed: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// get sends GET /session on conn and reads the answer.
func get(t *testing.T, conn net.Conn) {
	t.Helper()
	fmt.Fprint(conn, "GET /session HTTP/1.1\r\nHost: app\r\n\r\n")
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
}

func TestLimitsDefaults(t *testing.T) {
	var l Limits
	if got := l.maxBody(0); got != 1<<20 {
		t.Errorf("default body cap = %d, want 1 MiB", got)
	}
	if got := (Limits{MaxBodyBytes: -1}).maxBody(0); got != 0 {
		t.Errorf("body cap with -1 = %d, want none", got)
	}
	if got := l.maxBody(-1); got != 0 {
		t.Errorf("route body cap -1 = %d, want none", got)
	}
	if n := l.maxConnections(); n < minDefaultConnections || n > maxDefaultConnections {
		t.Errorf("default connection cap = %d, want within [%d, %d]", n, minDefaultConnections, maxDefaultConnections)
	}
	if n := (Limits{MaxConnections: -1}).maxConnections(); n != 0 {
		t.Errorf("connection cap with -1 = %d, want none", n)
	}
	srv := newServer(l, http.NotFoundHandler())
	if srv.IdleTimeout != time.Minute || srv.ReadHeaderTimeout != 10*time.Second {
		t.Errorf("server timeouts = idle %v, header %v; want 1m0s, 10s", srv.IdleTimeout, srv.ReadHeaderTimeout)
	}
}

func TestClientThatStopsReadingIsCut(t *testing.T) {
	upstreamDone := make(chan error, 1)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		chunk := make([]byte, 64<<10)
		var err error
		for range 16 << 10 { // up to 1 GiB; the client reads none of it
			if _, err = w.Write(chunk); err != nil {
				break
			}
		}
		upstreamDone <- err
	}))
	t.Cleanup(up.Close)
	c := testConfig(t, up.URL)
	c.Limits.WriteTimeout = 1
	addr := startServe(t, c)
	conn := dial(t, addr)
	fmt.Fprint(conn, "GET /direct/big HTTP/1.1\r\nHost: app\r\n\r\n")
	select {
	case err := <-upstreamDone:
		if err == nil {
			t.Fatal("the upstream wrote 1 GiB to a client that reads nothing")
		}
	case <-time.After(30 * time.Second):
		t.Fatal("a client that stopped reading still held the response 30 s later (write timeout 1 s)")
	}
}

func TestStreamOutlivesWriteTimeout(t *testing.T) {
	const events = 8 // one per 300 ms: 2.4 s in all, past a 1 s write timeout
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		for i := range events {
			fmt.Fprintf(w, "data: %d\n\n", i)
			w.(http.Flusher).Flush()
			time.Sleep(300 * time.Millisecond)
		}
	}))
	t.Cleanup(up.Close)
	c := testConfig(t, up.URL)
	c.Limits.WriteTimeout = 1
	addr := startServe(t, c)
	resp, err := http.Get("http://" + addr + "/direct/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if got := strings.Count(string(body), "data: "); err != nil || got != events {
		t.Fatalf("a stream of %d events through a 1 s write timeout: got %d, %v; want all", events, got, err)
	}
}
