package tykhost_test

import (
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bffgate/bffgate/tyk-plugin/tykhost"
)

// TestRebuild shows what tyk-plugin/README.md says about replacing a loaded
// bffgate.so without restarting the gateway: a plain rebuild cannot be
// loaded beside the first build ("plugin already loaded"); a build of
// compile.sh with a build_id can, and works on its own.
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
	if err := tykhost.Compile(moduleRoot, other, "rebuild2"); err != nil {
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
}
