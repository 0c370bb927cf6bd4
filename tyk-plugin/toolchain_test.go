package main

import (
	"debug/buildinfo"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// tykGo is the Go minor version Tyk tykVersion is built with (its
// .go-version; its plugin compiler image is golang-cross:1.25). A plugin
// built by another minor version kills that gateway when it loads the API
// ("fatal error: runtime: no plugin module data"); the Makefile's TYK_GO
// must be a patch release of it.
const tykGo = "go1.25"

// TestMakefileBuildsForTyk builds bffgate.so as `make tyk-plugin` and as
// tyk-plugin/compile.sh (outside the compiler image) build it by default,
// and reads the Go version and flags from the file.
func TestMakefileBuildsForTyk(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the plugin twice")
	}
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	// The Makefile's and compile.sh's own choice, not one from the
	// environment of this test (make test-tyk sets GOTOOLCHAIN).
	env := slices.DeleteFunc(os.Environ(), func(kv string) bool {
		return strings.HasPrefix(kv, "GOTOOLCHAIN=") || strings.HasPrefix(kv, "TYK_GO=") || strings.HasPrefix(kv, "TYK_PLUGIN_OUT=")
	})
	for _, tt := range []struct {
		name string
		cmd  []string
		so   string
	}{
		{"make tyk-plugin", []string{"make", "--no-print-directory", "-C", root, "tyk-plugin", "TYK_PLUGIN_OUT=" + filepath.Join(dir, "make.so")}, filepath.Join(dir, "make.so")},
		{"compile.sh", []string{"bash", filepath.Join(root, "tyk-plugin", "compile.sh"), filepath.Join(dir, "compile.so")}, filepath.Join(dir, "compile.so")},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.Command(tt.cmd[0], tt.cmd[1:]...)
			cmd.Dir = root
			cmd.Env = env
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("%s: %v\n%s", strings.Join(tt.cmd, " "), err, out)
			}
			bi, err := buildinfo.ReadFile(tt.so)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(bi.GoVersion+".", tykGo+".") {
				t.Errorf("%s built bffgate.so with %s, want %s.x: Tyk %s is built with Go %s, and a plugin built by another Go minor version kills it when it loads the API (fatal error: runtime: no plugin module data); set TYK_GO in the Makefile",
					tt.name, bi.GoVersion, tykGo, tykVersion, strings.TrimPrefix(tykGo, "go"))
			}
			// Every module the .so shares with Tyk at Tyk's version
			// (go.mod may name a lower one that a dependency raised).
			for _, d := range bi.Deps {
				want, ok := tykShared[d.Path]
				if ok && (d.Version != want || d.Replace != nil) {
					t.Errorf("bffgate.so links %s %s (replaced: %v), want %s (Tyk %s's): a Go plugin whose copy of a shared package differs from the gateway's does not load", d.Path, d.Version, d.Replace != nil, want, tykVersion)
				}
			}
			settings := map[string]string{}
			for _, s := range bi.Settings {
				settings[s.Key] = s.Value
			}
			if settings["CGO_ENABLED"] != "1" || settings["-trimpath"] != "true" || !slices.Contains(strings.Split(settings["-tags"], ","), "goplugin") || settings["-buildmode"] != "plugin" {
				t.Errorf("%s built bffgate.so with %v, want -buildmode=plugin, CGO_ENABLED=1, -trimpath and -tags goplugin, as Tyk builds its gateway", tt.name, bi.Settings)
			}
		})
	}
}

func TestTykGoIsTheMakefiles(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	var got string
	for _, line := range strings.Split(string(raw), "\n") {
		if v, ok := strings.CutPrefix(line, "TYK_GO ?= "); ok {
			got = strings.TrimSpace(v)
		}
	}
	if !strings.HasPrefix(got+".", tykGo+".") {
		t.Errorf("the Makefile's TYK_GO is %q, want a patch release of %s (Tyk %s's Go)", got, tykGo, tykVersion)
	}
}
