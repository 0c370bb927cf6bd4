package tykhost

import (
	"bytes"
	"debug/buildinfo"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
)

// PluginPackage is bffgate's Tyk plugin.
const PluginPackage = "github.com/bffgate/bffgate/tyk-plugin"

// NoopPackage is a Tyk plugin whose hook, NoOp, does nothing: the
// baseline the benchmark compares bffgate.so with.
const NoopPackage = "github.com/bffgate/bffgate/tyk-plugin/tykhost/noop"

// BuildCommand is how test binaries and programs using this package must be
// built for the plugins they load to match them.
const BuildCommand = "CGO_ENABLED=1 go test -trimpath -tags goplugin ./tyk-plugin/..."

// CheckFlags reports whether the running binary was built as Tyk builds
// its gateway (cgo, -trimpath, tag goplugin). A plugin built with Tyk's
// flags does not load into a binary built otherwise.
func CheckFlags() error {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return errors.New("tykhost: this binary has no build information")
	}
	var missing []string
	if setting(bi, "CGO_ENABLED") != "1" {
		missing = append(missing, "CGO_ENABLED=1")
	}
	if setting(bi, "-trimpath") != "true" {
		missing = append(missing, "-trimpath")
	}
	if !slices.Contains(strings.Split(setting(bi, "-tags"), ","), "goplugin") {
		missing = append(missing, "-tags goplugin")
	}
	if len(missing) > 0 {
		return fmt.Errorf("tykhost: this binary was built without %s, as Tyk builds its gateway and plugins: run `make test-tyk` (with Tyk's Go) or `%s`", strings.Join(missing, ", "), BuildCommand)
	}
	return nil
}

// CheckPlugin reports whether the plugin at path was built as the running
// binary was: by the same Go toolchain, with cgo, -trimpath and the goplugin
// tag. A plugin built by another Go minor version kills a Tyk gateway when
// it is loaded; another patch release or other flags make it fail to load.
func CheckPlugin(path string) error {
	bi, err := buildinfo.ReadFile(path)
	if err != nil {
		return fmt.Errorf("tykhost: %w", err)
	}
	if bi.GoVersion != runtime.Version() {
		return fmt.Errorf("tykhost: %s was built with %s, this binary with %s: a plugin must be built by its host's Go toolchain", path, bi.GoVersion, runtime.Version())
	}
	for _, want := range [][2]string{{"CGO_ENABLED", "1"}, {"-trimpath", "true"}} {
		if got := setting(bi, want[0]); got != want[1] {
			return fmt.Errorf("tykhost: %s was built with %s=%q, want %q", path, want[0], got, want[1])
		}
	}
	if !slices.Contains(strings.Split(setting(bi, "-tags"), ","), "goplugin") {
		return fmt.Errorf("tykhost: %s was built without -tags goplugin", path)
	}
	return nil
}

// BuildPlugin builds bffgate's plugin (PluginPackage) in the module at
// moduleDir into out, as the Makefile does, with the running binary's
// toolchain and flags (which CheckFlags requires to be Tyk's; -race too
// when the binary has it).
func BuildPlugin(moduleDir, out string) error {
	return BuildPackage(moduleDir, PluginPackage, out)
}

// BuildPackage builds the plugin package pkg of the module at moduleDir
// into out as BuildPlugin builds bffgate's.
func BuildPackage(moduleDir, pkg, out string) error {
	if err := CheckFlags(); err != nil {
		return err
	}
	bi, _ := debug.ReadBuildInfo()
	args := []string{"build", "-buildmode=plugin", "-trimpath", "-tags", setting(bi, "-tags")}
	if setting(bi, "-race") == "true" {
		args = append(args, "-race")
	}
	args = append(args, "-o", out, pkg)
	return run(moduleDir, nil, goCommand(), args...)
}

// Compile builds bffgate's plugin in the module at moduleDir into out with
// tyk-plugin/compile.sh, as a user does (outside the compiler image);
// buildID, when set, makes a build that loads beside another one.
func Compile(moduleDir, out, buildID string) error {
	if err := CheckFlags(); err != nil {
		return err
	}
	bi, _ := debug.ReadBuildInfo()
	var env []string
	if setting(bi, "-race") == "true" {
		env = append(env, "GOFLAGS=-race")
	}
	args := []string{filepath.Join(moduleDir, "tyk-plugin", "compile.sh"), out}
	if buildID != "" {
		args = append(args, buildID)
	}
	return run(moduleDir, env, "bash", args...)
}

// run runs a build with the toolchain that built the running binary: the
// go command switches to it (GOTOOLCHAIN), so the plugin and its host
// always share one toolchain, whatever go is on PATH.
func run(dir string, env []string, name string, args ...string) error {
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=1")
	if v := runtime.Version(); strings.HasPrefix(v, "go1.") {
		cmd.Env = append(cmd.Env, "GOTOOLCHAIN="+v)
	}
	cmd.Env = append(cmd.Env, env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("tykhost: %s %s: %v\n%s", name, strings.Join(args, " "), err, stderr.Bytes())
	}
	return nil
}

func setting(bi *debug.BuildInfo, key string) string {
	for _, s := range bi.Settings {
		if s.Key == key {
			return s.Value
		}
	}
	return ""
}

// goCommand is the go command of the toolchain that built this binary
// when it can be found, so the plugin gets the same toolchain.
func goCommand() string {
	if root := os.Getenv("GOROOT"); root != "" {
		if p := filepath.Join(root, "bin", "go"); fileExists(p) {
			return p
		}
	}
	return "go"
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// ModuleRoot returns the root directory of the module of the working
// directory (go env GOMOD).
func ModuleRoot() (string, error) {
	out, err := exec.Command(goCommand(), "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("tykhost: go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", errors.New("tykhost: not inside a Go module")
	}
	return filepath.Dir(mod), nil
}
