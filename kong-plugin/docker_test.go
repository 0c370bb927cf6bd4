package main

// No Docker daemon runs on the machines these tests run on, so the
// Dockerfile is never built here. What can be checked without one is that
// its build stage copies every file `go build ./kong-plugin` reads: go.mod,
// go.sum and the directory of each of the module's own packages the plugin
// is built from (`go list -deps`). A package the plugin gains outside the
// copied folders fails this test instead of `docker build`.

import (
	"bufio"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"testing"
)

func TestDockerfileCopiesWhatTheBuildReads(t *testing.T) {
	df, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	need := append([]string{"go.mod", "go.sum"}, modulePackageDirs(t)...)
	if missing := notCopied(t, string(df), need); len(missing) > 0 {
		t.Fatalf("kong-plugin/Dockerfile's build stage does not copy %v, which `go build ./kong-plugin` reads: add a COPY line for each (or COPY the folder they are in)", missing)
	}
	t.Logf("the Dockerfile copies all of: %s", strings.Join(need, " "))

	// The check itself, on the Dockerfile before internal/ was copied:
	// the build it describes failed for want of internal/envsecret.
	old := strings.Replace(string(df), "COPY internal ./internal\n", "", 1)
	if old == string(df) {
		t.Fatal("the Dockerfile has no `COPY internal ./internal` line to take out")
	}
	missing := notCopied(t, old, need)
	if !strings.Contains(strings.Join(missing, " "), "internal/") {
		t.Fatalf("without COPY internal, missing = %v; want the internal/ packages", missing)
	}
}

// modulePackageDirs lists, relative to the module root, the folders of the
// module's own packages that the plugin binary is built from, as the
// Dockerfile builds it (CGO_ENABLED=0).
func modulePackageDirs(t *testing.T) []string {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", "list", "-deps", "-f", "{{if .Module}}{{if .Module.Main}}{{.Dir}}{{end}}{{end}}", ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	var dirs []string
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		if sc.Text() == "" {
			continue
		}
		rel, err := filepath.Rel(root, sc.Text())
		if err != nil || strings.HasPrefix(rel, "..") {
			t.Fatalf("package folder %s is outside the module", sc.Text())
		}
		dirs = append(dirs, filepath.ToSlash(rel))
	}
	if len(dirs) < 3 { // kong-plugin, core/bff, core/session at least
		t.Fatalf("go list -deps found only %v", dirs)
	}
	return dirs
}

// notCopied returns the paths of need (relative to the module root, which
// is the build context and the build stage's WORKDIR) that the COPY lines
// of the Dockerfile's first stage do not put at the same path. A source
// folder's contents go into the destination, as with docker's COPY.
func notCopied(t *testing.T, dockerfile string, need []string) []string {
	t.Helper()
	type copyLine struct{ src, dst string }
	var copies []copyLine
	stages := 0
	for _, line := range strings.Split(dockerfile, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || strings.HasPrefix(f[0], "#") {
			continue
		}
		switch strings.ToUpper(f[0]) {
		case "FROM":
			stages++
		case "WORKDIR":
			if stages == 1 && f[1] != "/src" {
				t.Fatalf("build stage WORKDIR %s: this test assumes /src", f[1])
			}
		case "COPY", "ADD":
			if stages != 1 || strings.HasPrefix(f[1], "--from") {
				continue
			}
			args := f[1:]
			for len(args) > 0 && strings.HasPrefix(args[0], "--") {
				args = args[1:]
			}
			dst := args[len(args)-1]
			for _, src := range args[:len(args)-1] {
				src = path.Clean(src)
				d := path.Clean(dst)
				if fi, err := os.Stat(filepath.Join("..", src)); err == nil && !fi.IsDir() && strings.HasSuffix(dst, "/") {
					d = path.Join(d, path.Base(src))
				}
				copies = append(copies, copyLine{src, d})
			}
		}
	}
	var missing []string
	for _, p := range need {
		found := false
		for _, c := range copies {
			rel := ""
			switch {
			case c.src == p:
			case c.src == ".":
				rel = p
			case strings.HasPrefix(p, c.src+"/"):
				rel = strings.TrimPrefix(p, c.src+"/")
			default:
				continue
			}
			if path.Join(c.dst, rel) == p {
				found = true
				break
			}
		}
		if !found {
			missing = append(missing, p)
		}
	}
	return missing
}
