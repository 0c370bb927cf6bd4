package main

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"
)

// SIGTERM lets the requests in flight finish (within 5 s) before bffgate
// exits.
func TestSIGTERMWaitsForRequestsInFlight(t *testing.T) {
	if binary == "" {
		t.Skip("-short: needs the built binary")
	}
	arrived, release := make(chan struct{}), make(chan struct{})
	free := sync.OnceFunc(func() { close(release) })
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(arrived)
		<-release
		io.WriteString(w, "done")
	}))
	t.Cleanup(up.Close)
	t.Cleanup(free) // before up.Close, should the test fail early

	dir := t.TempDir()
	cfg := filepath.Join(dir, "bffgate.json")
	os.WriteFile(cfg, fmt.Appendf(nil, `{
  "bff": {"issuer": "http://127.0.0.1:1", "client_id": "c", "client_secret": "s",
          "redirect_url": "http://127.0.0.1:1/oauth/callback",
          "cookie_keys": ["MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="]},
  "routes": [{"path": "/up/", "upstream": %q, "public": true}]
}`, up.URL), 0o644)
	logFile := filepath.Join(dir, "stderr.log")
	logOut, err := os.Create(logFile)
	if err != nil {
		t.Fatal(err)
	}
	defer logOut.Close()
	cmd := exec.Command(binary, "serve", "-config", cfg, "-listen", "127.0.0.1:0")
	cmd.Stdout, cmd.Stderr = logOut, logOut
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})
	addr := waitListening(t, logFile)

	answered := make(chan string, 1)
	go func() {
		resp, err := (&http.Client{Timeout: 20 * time.Second}).Get("http://" + addr + "/up/slow")
		if err != nil {
			answered <- err.Error()
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		answered <- string(b)
	}()
	select {
	case <-arrived:
	case <-time.After(10 * time.Second):
		t.Fatal("the request did not reach the upstream")
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		exited <- err // for the cleanup
		logs, _ := os.ReadFile(logFile)
		t.Fatalf("bffgate exited (%v) on SIGTERM with a request in flight; want it to wait:\n%s", err, tail(logs))
	case <-time.After(time.Second):
	}
	free()
	if got := <-answered; got != "done" {
		t.Fatalf("the request in flight got %q, want done", got)
	}
	select {
	case err := <-exited:
		exited <- err
		if err != nil {
			t.Fatalf("bffgate after SIGTERM: %v, want exit 0", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("bffgate did not exit after its last request")
	}
}
