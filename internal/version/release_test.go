package version

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"testing"
)

// TestReleaseFast runs scripts/release.sh -fast (the host architecture's
// Go binaries and the npm tarball; the arm64 cross builds and the Tyk
// plugin, which need minutes and another toolchain, are left to `make
// release`): every artifact carries the project's version in its name,
// SHA256SUMS verifies, and the binary and the npm package report that
// same version.
func TestReleaseFast(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: builds three binaries and the npm package")
	}
	if runtime.GOOS != "linux" {
		t.Skip("the release is built on Linux")
	}
	root, _ := filepath.Abs("../..")
	out := t.TempDir()
	cmd := exec.Command(filepath.Join(root, "scripts/release.sh"), "-fast", "-out", out)
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("release.sh -fast: %v\n%s", err, b)
	}
	arch := runtime.GOARCH
	want := []string{
		"SHA256SUMS",
		"bffgate-client-" + Version + ".tgz",
		"bffgate-extauthz_" + Version + "_linux_" + arch,
		"bffgate-kong_" + Version + "_linux_" + arch,
		"bffgate_" + Version + "_linux_" + arch,
	}
	entries, _ := os.ReadDir(out)
	var got []string
	for _, e := range entries {
		got = append(got, e.Name())
	}
	sort.Strings(got)
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("release files %q, want %q", got, want)
	}
	sums, _ := os.ReadFile(filepath.Join(out, "SHA256SUMS"))
	if n := strings.Count(string(sums), "\n"); n != len(want)-1 {
		t.Fatalf("SHA256SUMS has %d lines, want %d:\n%s", n, len(want)-1, sums)
	}
	check := exec.Command("sha256sum", "-c", "SHA256SUMS")
	check.Dir = out
	if b, err := check.CombinedOutput(); err != nil {
		t.Fatalf("sha256sum -c: %v\n%s", err, b)
	}
	if b, err := exec.Command(filepath.Join(out, "bffgate_"+Version+"_linux_"+arch), "version").Output(); err != nil || strings.TrimSpace(string(b)) != "bffgate "+Version {
		t.Fatalf("the released bffgate version: %q, %v; want bffgate %s", b, err, Version)
	}
	pkg, err := exec.Command("tar", "-xzOf", filepath.Join(out, "bffgate-client-"+Version+".tgz"), "package/package.json").Output()
	if err != nil || !strings.Contains(string(pkg), `"version": "`+Version+`"`) {
		t.Fatalf("the npm tarball's package.json (%v) lacks version %s", err, Version)
	}
	// A broken artifact fails the checksums.
	os.WriteFile(filepath.Join(out, "bffgate-kong_"+Version+"_linux_"+arch), []byte("tampered"), 0o755)
	check = exec.Command("sha256sum", "-c", "--quiet", "SHA256SUMS")
	check.Dir = out
	if err := check.Run(); err == nil {
		t.Fatal("sha256sum -c passes with a tampered artifact")
	}
}
