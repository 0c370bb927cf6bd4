package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestCLI: help goes to stdout with exit 0; an error has one "bffgate:"
// prefix and exit 1; an unknown command gets the usage on stderr, exit 2.
func TestCLI(t *testing.T) {
	if binary == "" {
		t.Skip("-short: the binary is not built")
	}
	bad := filepath.Join(t.TempDir(), "bad.json")
	os.WriteFile(bad, []byte(`{"bff":{"issuer":""},"routes":[{"path":"/","upstream":"http://127.0.0.1:1"}]}`), 0o600)
	for _, tt := range []struct {
		args             []string
		code             int
		stdout, stderr   string
		notStdout, notEr string
	}{
		{[]string{"-h"}, 0, "bffgate extauthz -config FILE", "", "", ""},
		{[]string{"help"}, 0, "usage:", "", "", ""},
		{[]string{"version"}, 0, "bffgate 0.", "", "", ""},
		{[]string{"check", "-config", bad}, 1, "", "bffgate: config: issuer:", "", "bffgate: bffgate"},
		{[]string{"frobnicate"}, 2, "", "usage:", "usage:", ""},
	} {
		cmd := exec.Command(binary, tt.args...)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		if code != tt.code || !strings.Contains(out.String(), tt.stdout) || !strings.Contains(errb.String(), tt.stderr) ||
			(tt.notStdout != "" && strings.Contains(out.String(), tt.notStdout)) || (tt.notEr != "" && strings.Contains(errb.String(), tt.notEr)) {
			t.Errorf("bffgate %s: exit %d, stdout %q, stderr %q", strings.Join(tt.args, " "), code, out.String(), errb.String())
		}
	}
}
