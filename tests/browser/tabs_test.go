package browser

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/bffgate/bffgate/core/bff"
	"github.com/bffgate/bffgate/core/session"
	"github.com/bffgate/bffgate/tests/browser/browsertest"
	"github.com/bffgate/bffgate/tests/flowtest"
	"github.com/bffgate/bffgate/tests/op"
)

// TestTabsInChromium runs tabs.mjs: two tabs of one Chromium against the
// real stack (bff mode), for what @bffgate/client keeps true across tabs and
// time — a quiet signed-out /session?probe=1, a 401 from the API switching
// the page to signed out, a login in one tab refreshing the other, logout
// in one tab signing the other out without a refetch, and refetch on focus.
// Every session it made is gone from the store at the end.
func TestTabsInChromium(t *testing.T) {
	chromium := browsertest.Prerequisites(t)
	artifacts := browsertest.Artifacts(t)
	st := startStack(t, bff.ModeBFF)

	ctx, cancel := context.WithTimeout(context.Background(), 2*browsertest.ScriptTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", filepath.Join(op.RepoDir(), "tests", "browser", "tabs.mjs"))
	cmd.Env = append(os.Environ(), "BFFGATE_URL="+st.URL, "BFFGATE_ARTIFACTS="+artifacts, "BFFGATE_CHROMIUM="+chromium)
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 10 * time.Second
	var out flowtest.SyncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err := cmd.Run()
	if ctx.Err() != nil {
		err = fmt.Errorf("killed: %w", err)
	}
	if err != nil {
		logs := st.Logs.String()
		if len(logs) > 6000 {
			logs = "…" + logs[len(logs)-6000:]
		}
		t.Fatalf("tabs.mjs failed after %v: %v\n--- its output:\n%s--- the stack's logs:\n%s\nartifacts: %s",
			time.Since(start).Round(time.Millisecond), err, out.String(), logs, artifacts)
	}
	t.Logf("tabs.mjs passed in %v:\n%s", time.Since(start).Round(time.Millisecond), out.String())

	// Three logins, each ended (by a raw POST /logout, by the SDK's logout,
	// by a raw POST /logout again): nothing may be left.
	keys := st.Store.keys()
	if len(keys) < 3 {
		t.Errorf("the store saw %d sessions, want the 3 logins of tabs.mjs", len(keys))
	}
	for _, k := range keys {
		if _, err := st.Store.Get(context.Background(), k, 0); !errors.Is(err, session.ErrNotFound) {
			t.Errorf("session %.8s… is still in the store after tabs.mjs ended it (err %v)", k, err)
		}
	}
}
