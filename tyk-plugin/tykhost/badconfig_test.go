package tykhost_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/bffgate/bffgate/tyk-plugin/tykhost"
)

// runChild runs this test binary again as a child process running only
// TestChild, with env added, and returns its stdout and stderr. The child
// loads the parent's bffgate.so: a process that has loaded the plugin
// cannot load it again with another configuration.
func runChild(t *testing.T, child string, env ...string) (stdout, stderr string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), childEnv+"="+child, pluginEnv+"="+soPath)
	cmd.Env = append(cmd.Env, env...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		t.Fatalf("child %s: %v\nstdout:\n%s\nstderr:\n%s", child, err, out.String(), errOut.String())
	}
	return out.String(), errOut.String()
}

// childResult is what the bad-config child reports for each request.
type childResult struct {
	Status   int    `json:"status"`
	Body     string `json:"body"`
	Upstream bool   `json:"upstream"`
}

// TestChild is the body of the child processes; it does nothing in a
// normal run.
func TestChild(t *testing.T) {
	switch os.Getenv(childEnv) {
	case "":
		t.Skip("runs only as a child process of another test")
	case "badconfig":
		badConfigChild(t)
	case "host":
		hostChild(t)
	default:
		t.Fatalf("unknown child %q", os.Getenv(childEnv))
	}
}

// badConfigChild sends three requests through the hook and prints what
// came back, one RESULT line each.
func badConfigChild(t *testing.T) {
	h, err := tykhost.Load(soPath, "BFFGate")
	if err != nil {
		t.Fatal(err)
	}
	var upstreamHit atomic.Bool
	upSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { upstreamHit.Store(true) }))
	defer upSrv.Close()
	target, _ := url.Parse(upSrv.URL)
	g := tykhost.New(tykhost.API{ListenPath: "/app/", StripListenPath: true, Target: target, Pre: []tykhost.Hook{h}})
	for _, path := range []string{"/app/login", "/app/api/x", "/app/session"} {
		upstreamHit.Store(false)
		req := httptest.NewRequest("GET", "http://gw.example"+path, nil)
		req.Header.Set("X-CSRF", "1")
		rec := httptest.NewRecorder()
		g.ServeHTTP(rec, req)
		line, _ := json.Marshal(childResult{rec.Code, rec.Body.String(), upstreamHit.Load()})
		os.Stdout.Write(append([]byte("RESULT "), append(line, '\n')...))
	}
}

func TestBadConfig(t *testing.T) {
	const secret = "s3cr3t-client-secret"
	valid := map[string]any{
		"issuer":        "https://idp.example.com",
		"client_id":     "spa",
		"client_secret": secret,
		"redirect_url":  "https://app.example.com/app/oauth/callback",
		"cookie_keys":   []string{cookieKey},
	}
	with := func(k string, v any) map[string]any {
		m := map[string]any{}
		for k, v := range valid {
			m[k] = v
		}
		m[k] = v
		return m
	}
	file := func(apis ...any) string {
		b, _ := json.Marshal(map[string]any{"apis": apis})
		return string(b)
	}
	api := func(cfg map[string]any) map[string]any { return map[string]any{"listen_path": "/app/", "config": cfg} }

	for _, tt := range []struct {
		name    string
		content string // "" with noFile: no file at that path
		noFile  bool
		unset   bool // BFFGATE_CONFIG not set at all
		want    []string
	}{
		{name: "variable not set", unset: true, want: []string{"BFFGATE_CONFIG is not set"}},
		{name: "missing file", noFile: true, want: []string{"BFFGATE_CONFIG", "no such file"}},
		{name: "YAML", content: "apis:\n  - listen_path: /app/\n", want: []string{"not a valid bffgate config (JSON"}},
		{name: "truncated JSON", content: `{"apis": [`, want: []string{"not a valid bffgate config (JSON"}},
		{name: "unknown field", content: `{"apis": [{"listen_path": "/app/", "config": {"issuer_url": "x"}}]}`, want: []string{`apis[0] (listen_path "/app/")`, `unknown field "issuer_url"`}},
		{name: "no APIs", content: `{"apis": []}`, want: []string{`"apis" is empty`}},
		{name: "no listen path", content: file(map[string]any{"config": valid}), want: []string{"apis[0].listen_path"}},
		{name: "path_prefix outside listen path", content: file(api(with("path_prefix", "/other"))), want: []string{"apis[0].config.path_prefix", "outside listen_path"}},
		{name: "secret from an unset variable", content: file(api(with("client_secret", "env:BFFGATE_TEST_UNSET"))), want: []string{"apis[0]", "client_secret", "BFFGATE_TEST_UNSET"}},
		{name: "bad cookie key", content: file(api(with("cookie_keys", []string{"s3cr3t-not-a-key"}))), want: []string{"cookie_keys[0]", "openssl rand"}},
		{name: "second API bad", content: file(api(valid), map[string]any{"listen_path": "/tm/", "config": with("mode", "tokens")}), want: []string{"apis[1]", `"/tm/"`, "mode"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "bffgate.json")
			if !tt.noFile && !tt.unset {
				if err := os.WriteFile(path, []byte(tt.content), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			env := []string{"BFFGATE_CONFIG=" + path}
			if tt.unset {
				env = []string{"BFFGATE_CONFIG="}
			}
			stdout, stderr := runChild(t, "badconfig", env...)
			var results []childResult
			sc := bufio.NewScanner(strings.NewReader(stdout))
			for sc.Scan() {
				if line, ok := strings.CutPrefix(sc.Text(), "RESULT "); ok {
					var r childResult
					if err := json.Unmarshal([]byte(line), &r); err != nil {
						t.Fatal(err)
					}
					results = append(results, r)
				}
			}
			if len(results) != 3 {
				t.Fatalf("child reported %d results, want 3\nstdout:\n%s\nstderr:\n%s", len(results), stdout, stderr)
			}
			for _, r := range results {
				if r.Status != http.StatusInternalServerError || r.Upstream {
					t.Fatalf("status %d, upstream reached %v; want 500 and no upstream (body %s)", r.Status, r.Upstream, r.Body)
				}
				var body struct {
					Error       string `json:"error"`
					Description string `json:"error_description"`
				}
				if err := json.Unmarshal([]byte(r.Body), &body); err != nil || body.Error != "bffgate_config_invalid" {
					t.Fatalf("body = %s, want error bffgate_config_invalid", r.Body)
				}
				for _, w := range tt.want {
					if !strings.Contains(body.Description, w) {
						t.Errorf("error_description %q lacks %q", body.Description, w)
					}
				}
				for _, secretish := range []string{secret, "s3cr3t", cookieKey} {
					if strings.Contains(r.Body, secretish) {
						t.Fatalf("the answer reveals a secret: %s", r.Body)
					}
				}
			}
			// Logged once, not once per request, and without secrets.
			// In bffgate serve's line shape.
			if n := strings.Count(stderr, ` level=ERROR msg="bffgate: config refused" error="BFFGATE_CONFIG`); n != 1 {
				t.Errorf("the reason was logged %d times as level=ERROR msg=... error=..., want once:\n%s", n, stderr)
			}
			if strings.Contains(stderr, "s3cr3t") || strings.Contains(stderr, cookieKey) {
				t.Errorf("the log reveals a secret:\n%s", stderr)
			}
		})
	}
}
