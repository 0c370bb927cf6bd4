package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bffgate/bffgate/tests/op"
)

// bffgate check -online against the real test OP and the real Redis:
// what works is said, and each failure is named (a wrong secret, Redis or
// the provider unreachable) with exit 1.
func TestCheckOnline(t *testing.T) {
	if binary == "" {
		t.Skip("-short: needs the built binary")
	}
	const redirect = "http://127.0.0.1:8080/oauth/callback"
	o := op.StartT(t, op.Options{RedirectURIs: []string{redirect}, Stderr: io.Discard})
	dir := t.TempDir()
	for _, tt := range []struct {
		name, issuer, secret, redis string
		code                        int
		want, notWant               []string
	}{
		{"all works", o.Issuer, o.ClientSecret, "redis://127.0.0.1:6379/0", 0,
			[]string{"online: provider discovery at " + o.Issuer + ": ok", "online: the client's credentials at the token endpoint: ok", "online: the Redis session store: ok", "config OK"}, []string{"FAILED"}},
		{"wrong secret", o.Issuer, "not-the-secret", "", 1,
			[]string{"discovery at " + o.Issuer + ": ok", "token endpoint: FAILED: the provider rejected the client's credentials (invalid_client)"}, []string{"Redis", "not-the-secret", "config OK"}},
		{"redis down", o.Issuer, o.ClientSecret, "redis://127.0.0.1:1/0", 1,
			[]string{"token endpoint: ok", "the Redis session store: FAILED"}, []string{"config OK"}},
		{"no provider", "http://127.0.0.1:1", o.ClientSecret, "", 1,
			[]string{"provider discovery at http://127.0.0.1:1: FAILED"}, []string{"token endpoint", "config OK"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "-")+".json")
			redis := ""
			if tt.redis != "" {
				redis = fmt.Sprintf(`, "redis": {"url": %q, "key_prefix": "bffgate-check-test:"}`, tt.redis)
			}
			os.WriteFile(cfg, fmt.Appendf(nil, `{
  "bff": {"issuer": %q, "client_id": %q, "client_secret": %q, "redirect_url": %q,
          "cookie_keys": ["MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="]%s},
  "routes": [{"path": "/", "upstream": "http://127.0.0.1:9000"}]
}`, tt.issuer, o.ClientID, tt.secret, redirect, redis), 0o600)
			cmd := exec.Command(binary, "check", "-online", "-config", cfg)
			var out, errb bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &errb
			err := cmd.Run()
			code := 0
			if ee, ok := err.(*exec.ExitError); ok {
				code = ee.ExitCode()
			}
			all := out.String() + errb.String()
			for _, w := range tt.want {
				if !strings.Contains(all, w) {
					t.Errorf("output lacks %q", w)
				}
			}
			for _, w := range tt.notWant {
				if strings.Contains(all, w) {
					t.Errorf("output has %q", w)
				}
			}
			if code != tt.code || t.Failed() {
				t.Fatalf("exit %d, want %d; output:\n%s", code, tt.code, all)
			}
		})
	}
}

// bffgate check warns of what works but is likely a mistake, and fails on
// what breaks the login; a JSON error names the line, column and key.
func TestCheckFindings(t *testing.T) {
	if binary == "" {
		t.Skip("-short: needs the built binary")
	}
	dir := t.TempDir()
	for _, tt := range []struct {
		name, body string
		code       int
		want       []string
	}{
		{"warnings only", `{"listen": ":8080",
  "bff": {"issuer": "http://idp.example.com", "client_id": "c", "client_secret": "s", "http_timeout": 10000,
          "redirect_url": "http://127.0.0.1:8080/oauth/callback", "cookie_keys": ["MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="]},
  "routes": [{"path": "/", "upstream": "http://127.0.0.1:9000"}]}`, 0,
			[]string{"warning: listen:", "warning: bff.issuer:", "warning: bff.http_timeout:", "config OK"}},
		{"callback path", `{"bff": {"issuer": "https://idp.example.com", "client_id": "c", "client_secret": "s",
          "redirect_url": "http://127.0.0.1:8080/callback", "cookie_keys": ["MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="]},
  "routes": [{"path": "/", "upstream": "http://127.0.0.1:9000"}]}`, 1,
			[]string{"error: bff.redirect_url: its path \"/callback\" is not the callback path", "1 problem(s)"}},
		{"json", "{\"bff\": {\n  \"issuer\": \"https://idp.example.com\",\n  \"client_id\": 7}}", 1,
			[]string{"json.json:3:3: bff.client_id: is a number, want a string"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := filepath.Join(dir, tt.name+".json")
			os.WriteFile(cfg, []byte(tt.body), 0o600)
			out, err := exec.Command(binary, "check", "-config", cfg).CombinedOutput()
			code := 0
			if ee, ok := err.(*exec.ExitError); ok {
				code = ee.ExitCode()
			}
			for _, w := range tt.want {
				if !strings.Contains(string(out), w) {
					t.Errorf("output lacks %q", w)
				}
			}
			if code != tt.code || t.Failed() {
				t.Fatalf("exit %d, want %d; output:\n%s", code, tt.code, out)
			}
		})
	}
}
