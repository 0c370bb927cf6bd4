package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestMain(m *testing.M) {
	bareProxyChild() // the test binary is also the bare proxy's process
	os.Exit(m.Run())
}

// TestSmoke runs the comparison for one second per target, so that `make
// bench-compare` does not rot: every proxy starts, logs in and serves the
// load with 2xx only, and the section is written. It leaves out
// oauth2-proxy, whose module `make bench-compare` builds apart (a large
// download for `make test`). It asserts no timings.
func TestSmoke(t *testing.T) {
	if _, err := exec.LookPath("wrk"); err != nil {
		t.Fatal("wrk is missing: scripts/deps.sh wrk installs it (make test does)")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "bffgate")
	build := exec.Command("go", "build", "-o", bin, "github.com/bffgate/bffgate/cmd/bffgate")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out := filepath.Join(dir, "BENCHMARKS.md")
	if err := run(options{bffgate: bin, d: time.Second, rounds: 1, out: out, redis: "redis://127.0.0.1:6379/0", scale: []int{1, 10}, storm: 5}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, row := range []string{"| upstream directly", "| bare Go reverse proxy", "| bffgate serve (memory store)", "| bffgate serve (Redis store)", "| bffgate serve (Redis store, cache_ttl_ms 1000)", "| 1 |", "| 10 |", "| while 5 sessions refresh", "**5** for 5 sessions"} {
		if !strings.Contains(string(b), row) {
			t.Errorf("the section has no row %q:\n%s", row, b)
		}
	}
}
