package main

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestReadmeInstallSteps checks tyk-plugin/README.md against the ways a
// real Tyk v5.14.0 was seen to crash or ignore a plugin: it names the
// compiler image of the targeted gateway version and the Makefile's Go,
// and no shell step copies a file over a plugin in the middleware
// directory (the gateway dies at its next request: "unknown caller pc").
func TestReadmeInstallSteps(t *testing.T) {
	raw, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(raw)
	mk, err := os.ReadFile("../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	tykGoPatch := regexp.MustCompile(`(?m)^TYK_GO \?= (go[0-9.]+)$`).FindStringSubmatch(string(mk))
	if tykGoPatch == nil {
		t.Fatal("the Makefile has no TYK_GO ?= line")
	}
	for _, want := range []string{"tykio/tyk-plugin-compiler:" + tykVersion, tykGoPatch[1], "POST /tyk/apis/oas", "-oas.json", "max_idle_connections_per_host"} {
		if !strings.Contains(readme, want) {
			t.Errorf("README.md does not mention %s", want)
		}
	}
	for i, block := range strings.Split(readme, "```sh\n")[1:] {
		block, _, _ = strings.Cut(block, "```")
		for _, line := range strings.Split(block, "\n") {
			if copiesOntoPlugin(line) {
				t.Errorf("sh block %d copies onto a plugin in the middleware directory: %q; install under a new name and mv it into place", i+1, line)
			}
		}
	}
}

// copiesOntoPlugin reports whether the shell line copies a file onto a .so
// (or into a directory) under a middleware/ directory.
func copiesOntoPlugin(line string) bool {
	line, _, _ = strings.Cut(line, "#")
	f := strings.Fields(line)
	if len(f) > 0 && f[0] == "sudo" {
		f = f[1:]
	}
	if len(f) < 3 || (f[0] != "cp" && f[0] != "install" && f[0] != "rsync") {
		return false
	}
	dst := f[len(f)-1]
	return strings.Contains(dst, "middleware/") && (strings.HasSuffix(dst, ".so") || strings.HasSuffix(dst, "/"))
}

func TestCopiesOntoPlugin(t *testing.T) {
	for line, want := range map[string]bool{
		"cp bffgate.so /opt/tyk-gateway/middleware/bffgate.so":                               true,
		"sudo cp -f b.so /opt/tyk-gateway/middleware/":                                       true,
		"install -m 0644 b.so /opt/tyk-gateway/middleware/bffgate_v5.14.0_linux_amd64.so":    true,
		"install -m 0644 b.so /opt/tyk-gateway/middleware/.bffgate.new":                      false,
		"mv /opt/tyk-gateway/middleware/.bffgate.new /opt/tyk-gateway/middleware/bffgate.so": false,
		"cp bffgate.json /opt/tyk-gateway/bffgate.json":                                      false,
		"# cp b.so /opt/tyk-gateway/middleware/b.so":                                         false,
	} {
		if got := copiesOntoPlugin(line); got != want {
			t.Errorf("copiesOntoPlugin(%q) = %v, want %v", line, got, want)
		}
	}
}
