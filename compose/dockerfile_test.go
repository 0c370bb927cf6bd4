package compose

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// goDockerfiles are the Dockerfiles the stacks build Go commands with (the
// Kong plugin's has its own test in kong-plugin): the module folder the
// build runs in, relative to the repository root, and the package built.
var goDockerfiles = []struct{ dockerfile, module, pkg string }{
	{"cmd/bffgate/Dockerfile", ".", "./cmd/bffgate"},
	{"extauthz-grpc/Dockerfile", "extauthz-grpc", "./cmd/bffgate-extauthz"},
	{"compose/common/echo/Dockerfile", ".", "./compose/common/echo"},
}

// copiedDirs returns the sources of the COPY lines of a Dockerfile's first
// stage (relative to the build context) that land at the same path below
// its WORKDIR, /src; a glob counts as its folder.
func copiedDirs(dockerfile string) []string {
	var out []string
	stages := 0
	for _, line := range strings.Split(dockerfile, "\n") {
		f := strings.Fields(line)
		if len(f) < 3 || strings.HasPrefix(f[0], "#") {
			if len(f) > 0 && strings.ToUpper(f[0]) == "FROM" {
				stages++
			}
			continue
		}
		switch strings.ToUpper(f[0]) {
		case "FROM":
			stages++
		case "COPY":
			if stages != 1 || strings.HasPrefix(f[1], "--") {
				continue
			}
			dst := filepath.Clean(f[len(f)-1])
			for _, src := range f[1 : len(f)-1] {
				if strings.ContainsAny(src, "*?") {
					src = filepath.Dir(src)
				}
				src = filepath.Clean(src)
				// A folder's contents land in dst; a file (go.mod) in it.
				file := strings.Contains(filepath.Base(src), ".")
				if dst == src || (file && dst == filepath.Dir(src)) {
					out = append(out, src)
				}
			}
		}
	}
	return out
}

// notCopied lists the folders of need that no source of copied holds.
func notCopied(copied, need []string) []string {
	var missing []string
	for _, n := range need {
		if !slices.ContainsFunc(copied, func(c string) bool { return n == c || strings.HasPrefix(n, c+"/") }) {
			missing = append(missing, n)
		}
	}
	return missing
}

// TestDockerfilesCopyWhatTheBuildReads: no Docker daemon runs here, so
// the stacks' Go images are never built here. What can be checked is that
// each build stage copies the go.mod files and the folder of every package
// of this repository that `go list -deps` says the command is built from.
func TestDockerfilesCopyWhatTheBuildReads(t *testing.T) {
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	// Every Go build of the stacks is in goDockerfiles.
	for _, stack := range stacks {
		dir, cfg := resolved(t, stack)
		for name, svc := range services(cfg) {
			b, ok := buildOf(svc, dir)
			if !ok {
				continue
			}
			rel, _ := filepath.Rel(root, b.dockerfile)
			raw, _ := os.ReadFile(b.dockerfile)
			if bytes.Contains(raw, []byte("go build")) && rel != "kong-plugin/Dockerfile" &&
				!slices.ContainsFunc(goDockerfiles, func(d struct{ dockerfile, module, pkg string }) bool { return d.dockerfile == rel }) {
				t.Errorf("%s/%s builds Go with %s: add it to goDockerfiles", stack, name, rel)
			}
		}
	}
	for _, d := range goDockerfiles {
		t.Run(d.dockerfile, func(t *testing.T) {
			raw, err := os.ReadFile(filepath.Join(root, d.dockerfile))
			if err != nil {
				t.Fatal(err)
			}
			// Packages of this repository only: of the main module, or of
			// a module replaced by a folder (extauthz-grpc's view of the
			// main one). A module cache can sit inside the checkout (CI
			// puts GOMODCACHE there), and its packages are not the
			// repository's.
			cmd := exec.Command("go", "list", "-deps", "-f",
				"{{if and (not .Standard) .Module}}{{if or .Module.Main .Module.Replace}}{{.Dir}}{{end}}{{end}}", d.pkg)
			cmd.Dir = filepath.Join(root, d.module)
			cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("go list -deps %s: %v", d.pkg, err)
			}
			need := []string{filepath.Join(d.module, "go.mod")}
			for _, dir := range strings.Fields(string(out)) {
				if rel, err := filepath.Rel(root, dir); err == nil && !strings.HasPrefix(rel, "..") {
					need = append(need, rel)
				}
			}
			if len(need) < 2 {
				t.Fatalf("go list -deps %s found no package of this repository", d.pkg)
			}
			copied := copiedDirs(string(raw))
			if missing := notCopied(copied, need); len(missing) > 0 {
				t.Errorf("%s's build stage does not copy %v, which the build of %s reads", d.dockerfile, missing, d.pkg)
			}
			// The check itself: without the COPY of the command's own
			// folder, the build would fail.
			if len(notCopied(copied[:len(copied)-1], need)) == 0 {
				t.Errorf("%s: the check still passes without its last COPY line (%s)", d.dockerfile, copied[len(copied)-1])
			}
		})
	}
}
