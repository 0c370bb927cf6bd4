// Package redistest gives tests a real Redis: the shared server named by
// BFFGATE_TEST_REDIS_URL, or redis-server processes of their own (one
// server, a Cluster, a Sentinel topology) on free loopback ports in
// temporary directories, without persistence unless asked, stopped by PID
// when the test ends.
//
//	func TestOutage(t *testing.T) {
//		srv := redistest.Start(t, "--appendonly", "yes")
//		// ... use srv.Addr, srv.Stop(t), srv.Restart(t) ...
//	}
//
// Tests that need Redis fail, rather than skip, when it is missing, with a
// message saying how to get it; BFFGATE_TEST_REDIS_URL=skip skips them.
package redistest

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// EnvURL names the environment variable holding the shared test server's
// URL, or "skip" to skip every test that needs Redis.
const EnvURL = "BFFGATE_TEST_REDIS_URL"

// DefaultURL is the shared test server when EnvURL is empty.
const DefaultURL = "redis://127.0.0.1:6379/0"

// startTimeout bounds how long a started server may take to answer PING.
const startTimeout = 10 * time.Second

// URL returns the shared test server's URL after checking that it answers
// PING. It skips the test when EnvURL is "skip" and fails it when the
// server does not answer.
func URL(t testing.TB) string {
	t.Helper()
	skipIfAsked(t)
	raw := os.Getenv(EnvURL)
	if raw == "" {
		raw = DefaultURL
	}
	shown := raw
	if u, err := url.Parse(raw); err == nil {
		shown = u.Redacted()
	}
	opts, err := redis.ParseURL(raw)
	if err != nil {
		t.Fatalf("%s=%s: %v", EnvURL, shown, err)
	}
	opts.MaxRetries, opts.DialerRetries = -1, 1 // say "refused" at once
	c := redis.NewClient(opts)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := c.Ping(ctx).Err(); err != nil {
		t.Fatalf("no Redis answers at %s (%v). Start one with `redis-server --save '' --appendonly no &` "+
			"(Debian: apt-get install redis-server), or point %s at another, or set %s=skip to skip the Redis tests",
			shown, err, EnvURL, EnvURL)
	}
	return raw
}

func skipIfAsked(t testing.TB) {
	t.Helper()
	if os.Getenv(EnvURL) == "skip" {
		t.Skipf("%s=skip", EnvURL)
	}
}

// Server is one redis-server process started by a test.
type Server struct {
	Addr string // "127.0.0.1:<Port>"
	Port int
	Dir  string // its working directory: log, AOF, nodes.conf

	argv []string

	mu   sync.Mutex // guards proc
	proc *proc      // nil when stopped
}

type proc struct {
	cmd  *exec.Cmd
	done chan struct{} // closed once the process has exited and been reaped
}

// Start starts redis-server on a free loopback port in a new temporary
// directory, with no persistence (--save "" --appendonly no) unless args,
// which come last, say otherwise. It returns once the server answers PING;
// the server is killed when the test ends, even if it fails.
func Start(t testing.TB, args ...string) *Server {
	t.Helper()
	return launch(t, func(port int, dir string) []string {
		argv := []string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--dir", dir,
			"--save", "", "--appendonly", "no", "--daemonize", "no"}
		return append(argv, args...)
	})
}

// launch starts a server with the arguments argv gives for a port and a
// directory, trying another port if the chosen one was taken meanwhile.
func launch(t testing.TB, argv func(port int, dir string) []string) *Server {
	t.Helper()
	skipIfAsked(t)
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Fatalf("redis-server is not installed (%v): install it (Debian: apt-get install redis-server), or set %s=skip to skip the Redis tests", err, EnvURL)
	}
	var lastErr error
	for range 3 {
		port := FreePort(t)
		dir := t.TempDir()
		s := &Server{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), Port: port, Dir: dir, argv: argv(port, dir)}
		if lastErr = s.start(); lastErr == nil {
			t.Cleanup(func() { s.halt(syscall.SIGKILL) })
			return s
		}
	}
	t.Fatalf("redistest: %v", lastErr)
	return nil
}

// start runs the process and waits for it to answer PING.
func (s *Server) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc != nil {
		return fmt.Errorf("redis-server on port %d is already running", s.Port)
	}
	logPath := filepath.Join(s.Dir, "redis.log")
	log, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer log.Close() // the child has its own descriptor
	cmd := exec.Command("redis-server", s.argv...)
	cmd.Dir = s.Dir
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		return err
	}
	p := &proc{cmd: cmd, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		close(p.done)
	}()
	deadline := time.Now().Add(startTimeout)
	for !answersPing(s.Addr) {
		select {
		case <-p.done:
			return fmt.Errorf("redis-server on port %d exited at start; its log ends:\n%s", s.Port, tail(logPath))
		default:
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			<-p.done
			return fmt.Errorf("redis-server on port %d did not answer PING within %v; its log ends:\n%s", s.Port, startTimeout, tail(logPath))
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.proc = p
	return nil
}

// answersPing reports whether a server at addr answers PING with PONG (a
// server still loading its data answers an error).
func answersPing(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return false
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	return err == nil && line == "+PONG\r\n"
}

// halt sends sig to the process, if running, and waits until it has exited.
func (s *Server) halt(sig syscall.Signal) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc == nil {
		return
	}
	_ = s.proc.cmd.Process.Signal(sig)
	select {
	case <-s.proc.done:
	case <-time.After(10 * time.Second):
		_ = s.proc.cmd.Process.Kill()
		<-s.proc.done
	}
	s.proc = nil
}

// Stop shuts the server down with SIGTERM (a clean shutdown: an AOF is
// flushed) and waits until it has exited.
func (s *Server) Stop(t testing.TB) {
	t.Helper()
	s.halt(syscall.SIGTERM)
}

// Kill kills the server with SIGKILL, as a crash would, and waits until it
// has exited.
func (s *Server) Kill(t testing.TB) {
	t.Helper()
	s.halt(syscall.SIGKILL)
}

// Restart starts a stopped server again, on the same port, in the same
// directory, with the same arguments.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	if err := s.start(); err != nil {
		t.Fatalf("redistest: restart: %v", err)
	}
}

// PID returns the server's process ID, or 0 when it is stopped.
func (s *Server) PID() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc == nil {
		return 0
	}
	return s.proc.cmd.Process.Pid
}

// Client returns a plain client for the server's database db, closed when
// the test ends.
func (s *Server) Client(t testing.TB, db int) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: s.Addr, DB: db})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("redistest: free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// tail returns the last lines of a file, for error messages.
func tail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-15):], "\n")
}

// waitFor polls cond every 50 ms until it holds or timeout has passed, and
// fails the test with what cond last said when it never holds.
func waitFor(t testing.TB, what string, timeout time.Duration, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, last := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("redistest: %s: not done within %v (last seen: %s)", what, timeout, last)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
