package main

import (
	"bufio"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// binary is the bffgate binary TestMain built, "" in -short mode.
var binary string

func TestMain(m *testing.M) {
	flag.Parse()
	if !testing.Short() {
		dir, err := os.MkdirTemp("", "bffgate-bin-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		binary = filepath.Join(dir, "bffgate")
		build := exec.Command("go", "build", "-o", binary, ".")
		build.Stdout, build.Stderr = os.Stdout, os.Stderr
		if err := build.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "building bffgate:", err)
			os.RemoveAll(dir)
			os.Exit(1)
		}
		code := m.Run()
		os.RemoveAll(dir)
		os.Exit(code)
	}
	os.Exit(m.Run())
}

// The attack: 20,000 idle keep-alive connections (one GET /session
// each) exhausted bffgate's file descriptors, and new clients timed out
// while they were held. Here the real binary runs with 4,096 file
// descriptors (ulimit -n in the shell that starts it) and a cap of 1,000
// connections, and the test opens 10,000.
func TestTenThousandIdleConnections(t *testing.T) {
	if binary == "" {
		t.Skip("-short: needs the built binary and 10,000 connections")
	}
	const (
		conns      = 10000
		capConns   = 1000
		childFiles = 4096
		workers    = 64
	)
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	if lim.Max < conns+500 {
		t.Skipf("RLIMIT_NOFILE hard limit is %d; this test holds %d connections and needs at least %d", lim.Max, conns, conns+500)
	}
	lim.Cur = lim.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	cfg := filepath.Join(dir, "bffgate.json")
	os.WriteFile(cfg, fmt.Appendf(nil, `{
  "bff": {"issuer": "http://127.0.0.1:1", "client_id": "c", "client_secret": "s",
          "redirect_url": "http://127.0.0.1:1/oauth/callback",
          "cookie_keys": ["MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="]},
  "routes": [{"path": "/api/", "upstream": "http://127.0.0.1:1"}],
  "limits": {"max_connections": %d, "idle_timeout": 3}
}`, capConns), 0o644)
	logFile := filepath.Join(dir, "stderr.log")
	logOut, err := os.Create(logFile)
	if err != nil {
		t.Fatal(err)
	}
	defer logOut.Close()
	cmd := exec.Command("sh", "-c", fmt.Sprintf(`ulimit -n %d && exec "$0" "$@"`, childFiles),
		binary, "serve", "-config", cfg, "-listen", "127.0.0.1:0")
	cmd.Stdout, cmd.Stderr = logOut, logOut
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	}()
	addr := waitListening(t, logFile)

	// The child's open file descriptors, sampled while the test runs.
	var maxFDs atomic.Int64
	stopSampling := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			if ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", cmd.Process.Pid)); err == nil {
				if n := int64(len(ents)); n > maxFDs.Load() {
					maxFDs.Store(n)
				}
			}
			select {
			case <-stopSampling:
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()

	// Each connection sends GET /session, reads the answer and stays open,
	// idle: served. A connection the server closes without an answer is
	// refused. One that gets no answer and is not closed within 15 s is
	// held, which is the failure of the issue.
	var (
		mu                      sync.Mutex
		open                    []net.Conn
		served, refused, held   int
		firstHeldErr, dialFails error
	)
	jobs := make(chan int)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for range jobs {
				c, err := net.DialTimeout("tcp", addr, 15*time.Second)
				if err != nil {
					mu.Lock()
					refused++
					dialFails = err
					mu.Unlock()
					continue
				}
				_ = c.SetDeadline(time.Now().Add(15 * time.Second))
				_, err = fmt.Fprint(c, "GET /session HTTP/1.1\r\nHost: app\r\n\r\n")
				var resp *http.Response
				if err == nil {
					resp, err = http.ReadResponse(bufio.NewReader(c), nil)
				}
				mu.Lock()
				switch ne, _ := err.(net.Error); {
				case err == nil:
					resp.Body.Close()
					served++
					open = append(open, c)
				case ne != nil && ne.Timeout():
					held++
					firstHeldErr = err
					c.Close()
				default:
					refused++
					c.Close()
				}
				mu.Unlock()
			}
		})
	}
	for i := range conns {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	close(stopSampling)
	<-sampled
	t.Logf("%d connections: %d served and kept idle, %d refused (closed by the server; last dial error: %v), %d held without an answer; the server had at most %d files open",
		conns, served, refused, dialFails, held, maxFDs.Load())

	logs, _ := os.ReadFile(logFile)
	if strings.Contains(string(logs), "too many open files") {
		t.Errorf("bffgate ran out of file descriptors:\n%s", tail(logs))
	}
	if held > 0 {
		t.Errorf("%d connections were held without an answer (first: %v); want every one over the cap closed at once", held, firstHeldErr)
	}
	if refused == 0 {
		t.Errorf("no connection was refused; want those over the cap of %d refused", capConns)
	}
	// The cap, plus the listener, the log, the runtime's own descriptors
	// and connections closing.
	if n := maxFDs.Load(); n > capConns+64 {
		t.Errorf("the server had %d files open; want at most the cap of %d and a few more", n, capConns)
	}

	// The idle timeout (3 s) drops the idle ones; a fresh client is then
	// served.
	var closedWG sync.WaitGroup
	var stillOpen atomic.Int64
	for _, c := range open {
		closedWG.Go(func() {
			_ = c.SetReadDeadline(time.Now().Add(60 * time.Second))
			var b [1]byte
			if _, err := c.Read(b[:]); err != nil {
				if ne, ok := err.(net.Error); ok && ne.Timeout() {
					stillOpen.Add(1)
				}
			}
			c.Close()
		})
	}
	closedWG.Wait()
	if n := stillOpen.Load(); n > 0 {
		t.Errorf("%d idle connections were still open 60 s after the test stopped using them (idle timeout 3 s)", n)
	}
	client := &http.Client{Timeout: 15 * time.Second}
	resp, err := client.Get("http://" + addr + "/session")
	if err != nil {
		t.Fatalf("a fresh client after the idle connections were dropped: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("fresh GET /session = %d, want 401", resp.StatusCode)
	}
}

var servingURL = regexp.MustCompile(`url=https?://(127\.0\.0\.1:\d+)`)

// waitListening waits for the child's "serving" line and returns its address.
func waitListening(t *testing.T, logFile string) string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		logs, _ := os.ReadFile(logFile)
		if m := servingURL.FindSubmatch(logs); m != nil {
			return string(m[1])
		}
		if time.Now().After(deadline) {
			t.Fatalf("bffgate serve did not start within 30 s:\n%s", tail(logs))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// tail is the end of a log, enough to see why.
func tail(b []byte) string {
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}
