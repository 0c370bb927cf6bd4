package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// tykVersion is the Tyk gateway release the shared modules are pinned to.
const tykVersion = "v5.14.0"

// tykShared are the modules bffgate shares with that gateway, at the
// gateway's versions (Tyk v5.14.0's go.mod): those bffgate.so links
// (go-redis and what it pulls, x/oauth2, go-jose, x/sync) and two it may
// pull in later (x/crypto, x/net). go-oidc is not one: Tyk does not use it,
// so its version is bffgate's own choice. A Go plugin loads only if every package it shares
// with the gateway binary is the very same build: with a different version
// of any of these, Tyk refuses bffgate.so ("plugin was built with a
// different version of package ...") and every request on the API fails.
// The plugin compiler builds in a Go workspace with the gateway's module,
// so a lower version here is raised to the gateway's, but a higher one
// raises the plugin's copy above the gateway's and breaks the load.
var tykShared = map[string]string{
	"github.com/redis/go-redis/v9":  "v9.18.0",
	"golang.org/x/oauth2":           "v0.36.0",
	"github.com/go-jose/go-jose/v4": "v4.1.4",
	"golang.org/x/crypto":           "v0.52.0",
	"golang.org/x/net":              "v0.55.0",
	"golang.org/x/sync":             "v0.21.0",
	// go-redis's own dependencies, linked into bffgate.so.
	"github.com/cespare/xxhash/v2":     "v2.3.0",
	"github.com/dgryski/go-rendezvous": "v0.0.0-20200823014737-9f7001d12a5f",
	"go.uber.org/atomic":               "v1.11.0",
}

func TestSharedModulePins(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	required, replaced := readGoMod(string(raw))
	for mod, want := range tykShared {
		if got, ok := required[mod]; ok && got != want {
			t.Errorf("go.mod requires %s %s, want %s: Tyk %s is built with %s %s, and a Go plugin whose copy of a shared package differs from the gateway's does not load (\"plugin was built with a different version of package\"): pin it back with `go get %s@%s`",
				mod, got, want, tykVersion, mod, want, mod, want)
		}
		if replaced[mod] {
			t.Errorf("go.mod replaces %s: the plugin's copy would differ from Tyk %s's (%s %s) and bffgate.so would not load: remove the replace directive", mod, tykVersion, mod, want)
		}
	}
}

// readGoMod returns the required version of each module in a go.mod, and
// which modules it replaces. It reads both the one-line and block forms;
// the go command keeps go.mod in its canonical format.
func readGoMod(src string) (required map[string]string, replaced map[string]bool) {
	required, replaced = map[string]string{}, map[string]bool{}
	block := ""
	for _, line := range strings.Split(src, "\n") {
		line, _, _ = strings.Cut(line, "//")
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		verb := block
		switch {
		case block != "" && f[0] == ")":
			block = ""
			continue
		case block == "" && len(f) == 2 && f[1] == "(":
			block = f[0]
			continue
		case block == "":
			verb, f = f[0], f[1:]
		}
		switch {
		case verb == "require" && len(f) >= 2:
			required[f[0]] = f[1]
		case verb == "replace" && len(f) >= 1:
			replaced[f[0]] = true
		}
	}
	return required, replaced
}

func TestReadGoMod(t *testing.T) {
	src := `module example.com/m

go 1.25.0

require golang.org/x/net v0.55.0 // one line

require (
	golang.org/x/oauth2 v0.36.0
	github.com/redis/go-redis/v9 v9.18.0 // indirect
)

replace golang.org/x/sync => ../sync

replace (
	golang.org/x/crypto v0.52.0 => golang.org/x/crypto v0.53.0
)
`
	req, rep := readGoMod(src)
	want := map[string]string{"golang.org/x/net": "v0.55.0", "golang.org/x/oauth2": "v0.36.0", "github.com/redis/go-redis/v9": "v9.18.0"}
	if len(req) != len(want) {
		t.Fatalf("required = %v, want %v", req, want)
	}
	for m, v := range want {
		if req[m] != v {
			t.Errorf("required[%s] = %q, want %q", m, req[m], v)
		}
	}
	if !rep["golang.org/x/sync"] || !rep["golang.org/x/crypto"] || len(rep) != 2 {
		t.Errorf("replaced = %v, want x/sync and x/crypto", rep)
	}
}
