package version

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestCheck(t *testing.T) {
	for _, tt := range []struct {
		v  string
		ok bool
	}{
		{"0.0.0", true}, {"0.2.0", true}, {"1.2.3-dev", true}, {"1.2.3+abc", true},
		{"1.2.3-rc.1+build.7", true}, {"10.20.30", true},
		{"dev", false}, {"", false}, {"1.2.3.4", false}, {"1.2", false}, {"1", false},
		{"v1.2.3", false}, {"01.2.3", false}, {"1.2.3-", false}, {"1.2.3 ", false},
	} {
		if err := Check(tt.v); (err == nil) != tt.ok {
			t.Errorf("Check(%q) = %v, want ok %v", tt.v, err, tt.ok)
		}
	}
	if err := Check(Version); err != nil {
		t.Fatalf("Version: %v", err)
	}
}

// TestKong holds Kong's rule to the cases Kong 3.9.3 was seen to accept and
// refuse, and applies it to Version.
func TestKong(t *testing.T) {
	for _, tt := range []struct {
		v, want string
		ok      bool
	}{
		{"0.0.0", "0.0.0", true},
		{"1.2.3-dev", "1.2.3", true},
		{"1.2.3+abc", "1.2.3", true},
		{"v1.2.3", "1.2.3", true},
		{"1.2", "1.2", true},
		{"1", "1", true},
		{"1.2.", "1.2", true},
		{"dev", "", false},
		{"", "", false},
		{"1.2.3.4", "", false},
		{"1..2", "", false},
	} {
		got, ok := Kong(tt.v)
		if got != tt.want || ok != tt.ok {
			t.Errorf("Kong(%q) = %q, %v; want %q, %v", tt.v, got, ok, tt.want, tt.ok)
		}
	}
	if got, ok := Kong(Version); !ok || got != Version {
		t.Fatalf("Kong(%q) = %q, %v: Kong would refuse or rewrite the plugin's version", Version, got, ok)
	}
}

// TestNPMVersion holds the npm package to the project's version.
func TestNPMVersion(t *testing.T) {
	b, err := os.ReadFile("../../sdk-js/package.json")
	if err != nil {
		t.Fatal(err)
	}
	var pkg struct{ Version string }
	if err := json.Unmarshal(b, &pkg); err != nil {
		t.Fatal(err)
	}
	if pkg.Version != Version {
		t.Fatalf("sdk-js/package.json version %q, want %q (internal/version.Version): bump both together", pkg.Version, Version)
	}
}

// TestLdflagsOverride builds a small program with -X: a valid version
// replaces Version, an invalid one makes the binary refuse to start.
func TestLdflagsOverride(t *testing.T) {
	dir := t.TempDir()
	for _, tt := range []struct {
		v      string
		ok     bool
		output string
	}{
		{"1.2.3-rc.1", true, "1.2.3-rc.1\n"},
		{"dev", false, `"dev" is not a version`},
	} {
		bin := filepath.Join(dir, "printversion")
		build := exec.Command("go", "build", "-o", bin,
			"-ldflags", "-X github.com/bffgate/bffgate/internal/version.Version="+tt.v, "./testdata/printversion")
		if out, err := build.CombinedOutput(); err != nil {
			t.Fatalf("go build: %v\n%s", err, out)
		}
		out, err := exec.Command(bin).CombinedOutput()
		if (err == nil) != tt.ok || !strings.Contains(string(out), tt.output) {
			t.Errorf("built with Version=%s: %v, output %q; want ok %v and %q", tt.v, err, out, tt.ok, tt.output)
		}
	}
}
