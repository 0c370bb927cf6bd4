// Package browsertest runs tests/browser/login.mjs — the demo SPA in
// headless Chromium (playwright-core with Debian's /usr/bin/chromium)
// through a real login at the test OpenID Provider, API calls and logout —
// against a stack a test started, and checks the recording the script
// makes of everything the browser received, sent and kept: it searches it
// for the tokens the stack's provider issued, with one rule for where each
// may appear (tests/browser/README.md, "What may reach the browser").
//
// tests/browser runs it against bffgate serve, tyk-plugin/tykhost against
// bffgate.so in the Tyk test host. It uses the standard library and
// tests/op only: the Tyk test host must not link bffgate's own packages,
// as Tyk does not.
package browsertest

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bffgate/bffgate/tests/flowtest"
	"github.com/bffgate/bffgate/tests/op"
)

// The BFF modes login.mjs drives.
const (
	ModeBFF            = "bff"
	ModeTokenMediating = "token-mediating"
)

// SessionCookie is the BFF's session cookie, as login.mjs expects it.
const SessionCookie = "__Host-bffgate"

// ScriptTimeout bounds one run of login.mjs by default; the script gives
// up by itself after 80 s.
const ScriptTimeout = 90 * time.Second

// Prerequisites fails the test with the commands that fix what is
// missing, or skips it when BFFGATE_SKIP_BROWSER=1, and returns Chromium's
// path ($BFFGATE_CHROMIUM, default /usr/bin/chromium).
func Prerequisites(t testing.TB) string {
	t.Helper()
	if os.Getenv("BFFGATE_SKIP_BROWSER") == "1" {
		t.Skip("BFFGATE_SKIP_BROWSER=1: the browser tests are skipped")
	}
	repo := op.RepoDir()
	chromium := os.Getenv("BFFGATE_CHROMIUM")
	if chromium == "" {
		chromium = "/usr/bin/chromium"
	}
	var missing []string
	if _, err := os.Stat(chromium); err != nil {
		missing = append(missing, fmt.Sprintf("%s is missing: `apt-get update && apt-get install -y chromium`", chromium))
	}
	if _, err := exec.LookPath("node"); err != nil {
		missing = append(missing, "node is not on PATH: install Node.js 20 (`scripts/deps.sh node`)")
	}
	for _, p := range []struct{ file, fix string }{
		{"tests/op/node_modules/oidc-provider/package.json", "npm ci --prefix tests/op"},
		{"sdk-js/demo/dist/index.html", "npm ci --prefix sdk-js && npm --prefix sdk-js run build:demo"},
		{"tests/browser/node_modules/playwright-core/package.json", "npm ci --prefix tests/browser"},
	} {
		if _, err := os.Stat(filepath.Join(repo, p.file)); err != nil {
			missing = append(missing, fmt.Sprintf("%s is missing: `%s`", p.file, p.fix))
		}
	}
	if len(missing) > 0 {
		t.Fatalf("the browser tests cannot run (set BFFGATE_SKIP_BROWSER=1 to skip them):\n  - %s", strings.Join(missing, "\n  - "))
	}
	return chromium
}

// SPADir is the built demo SPA, sdk-js/demo/dist.
func SPADir() string { return filepath.Join(op.RepoDir(), "sdk-js", "demo", "dist") }

// Artifacts returns the directory for screenshots and recordings,
// $BFFGATE_ARTIFACTS or tests/artifacts (git-ignored), made if need be.
func Artifacts(t testing.TB) string {
	t.Helper()
	dir := os.Getenv("BFFGATE_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join(op.RepoDir(), "tests", "artifacts")
	}
	dir, _ = filepath.Abs(dir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// Script is one run of login.mjs.
type Script struct {
	URL       string // the SPA's and the BFF's origin, http://127.0.0.1:<port>
	Mode      string // ModeBFF or ModeTokenMediating
	Chromium  string // from Prerequisites
	Artifacts string // where login.mjs writes logged-in-<mode>.png, recording-<mode>.json, failure-<mode>.png
	// Logs returns the stack's logs, shown when the script fails; may be
	// nil.
	Logs func() string
	// Timeout bounds the run (then SIGTERM, on which Playwright closes
	// Chromium, and SIGKILL 10 s later). Defaults to ScriptTimeout.
	Timeout time.Duration
}

// Run runs login.mjs and reads its recording. When the script fails it
// fails the test, with the script's output and the stack's logs, and
// returns nil.
func Run(t testing.TB, s Script) *Recording {
	t.Helper()
	recFile := filepath.Join(s.Artifacts, "recording-"+s.Mode+".json")
	for _, f := range []string{"recording-" + s.Mode + ".json", "logged-in-" + s.Mode + ".png", "failure-" + s.Mode + ".png"} {
		_ = os.Remove(filepath.Join(s.Artifacts, f))
	}
	timeout := s.Timeout
	if timeout <= 0 {
		timeout = ScriptTimeout
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", filepath.Join(op.RepoDir(), "tests", "browser", "login.mjs"))
	cmd.Env = append(os.Environ(),
		"BFFGATE_URL="+s.URL, "BFFGATE_MODE="+s.Mode, "BFFGATE_ARTIFACTS="+s.Artifacts, "BFFGATE_CHROMIUM="+s.Chromium)
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 10 * time.Second
	var out flowtest.SyncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err := cmd.Run()
	if ctx.Err() != nil {
		err = fmt.Errorf("killed after %v: %w", timeout, err)
	}
	if err != nil {
		logs := "(none)"
		if s.Logs != nil {
			logs = tail(s.Logs(), 6000)
		}
		t.Errorf("login.mjs (%s mode) failed after %v: %v\n--- its output:\n%s--- the stack's logs (last 6000 bytes):\n%s\nartifacts: %s",
			s.Mode, time.Since(start).Round(time.Millisecond), err, out.String(), logs, s.Artifacts)
		return nil
	}
	t.Logf("login.mjs (%s mode) passed in %v:\n%s", s.Mode, time.Since(start).Round(time.Millisecond), out.String())
	data, err := os.ReadFile(recFile)
	if err != nil {
		t.Fatalf("login.mjs passed but left no recording: %v", err)
	}
	var rec Recording
	if err := json.Unmarshal(data, &rec); err != nil {
		t.Fatalf("%s: %v", recFile, err)
	}
	rec.File = recFile
	if _, err := os.Stat(filepath.Join(s.Artifacts, "logged-in-"+s.Mode+".png")); err != nil {
		t.Errorf("login.mjs passed but took no screenshot: %v", err)
	}
	return &rec
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}
