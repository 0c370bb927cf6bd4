package tykhost_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/bffgate/bffgate/tyk-plugin/tykhost"
)

// rebuilds numbers the build ids of TestRebuild: a build id loads once per
// process, so every run of the test (go test -count=N) needs a new one.
var rebuilds atomic.Int32

// TestRebuild shows what tyk-plugin/README.md says about replacing a loaded
// bffgate.so without restarting the gateway: a plain rebuild at another path
// cannot be loaded beside the first build ("plugin already loaded"); a
// rebuild moved onto the loaded file's path "loads" without an error and
// the old code keeps running; a build of compile.sh with a build id of its
// own loads beside the first, and works on its own.
func TestRebuild(t *testing.T) {
	if testing.Short() {
		t.Skip("builds two more plugins")
	}
	dir := t.TempDir()
	again := filepath.Join(dir, "bffgate-again.so")
	if err := tykhost.BuildPlugin(moduleRoot, again); err != nil {
		t.Fatal(err)
	}
	if _, err := tykhost.Load(again, "BFFGate"); err == nil || !strings.Contains(err.Error(), "plugin already loaded") {
		t.Fatalf("loading a second plain build: err = %v, want plugin already loaded", err)
	}

	other := filepath.Join(dir, "bffgate-2.so")
	id := fmt.Sprintf("rebuild%d_%d", os.Getpid(), rebuilds.Add(1))
	if err := tykhost.Compile(moduleRoot, other, id); err != nil {
		t.Fatal(err)
	}
	h, err := tykhost.Load(other, "BFFGate")
	if err != nil {
		t.Fatalf("loading a build with its own build_id: %v", err)
	}
	// The second build reads BFFGATE_CONFIG itself and has engines of its
	// own: it answers with the same config as the first.
	req := httptest.NewRequest("GET", gw.URL+"/app/session", nil)
	rec := httptest.NewRecorder()
	h(rec, req)
	if rec.Code != http.StatusUnauthorized || !strings.Contains(rec.Body.String(), `"authenticated":false`) {
		t.Fatalf("the second build answered %d %s, want 401 unauthenticated", rec.Code, rec.Body)
	}

	// Another build moved onto the loaded file (mv, as the README says:
	// copying over a loaded file crashes the process). Loading that path
	// again, as a hot reload does, succeeds and gives the hook loaded
	// before: the file's new code is not run.
	if err := os.Rename(again, other); err != nil {
		t.Fatal(err)
	}
	if err := tykhost.CheckPlugin(other); err != nil {
		t.Fatal(err)
	}
	h2, err := tykhost.Load(other, "BFFGate")
	if err != nil {
		t.Fatalf("loading the rebuilt file at the loaded path: %v, want the loaded plugin again (Go caches plugins by path)", err)
	}
	if reflect.ValueOf(h2).Pointer() != reflect.ValueOf(h).Pointer() {
		t.Fatal("loading a rebuilt file at the loaded path gave another hook, want the one loaded before")
	}
}
