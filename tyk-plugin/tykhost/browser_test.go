package tykhost_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bffgate/bffgate/tests/browser/browsertest"
	"github.com/bffgate/bffgate/tests/flowtest"
	"github.com/bffgate/bffgate/tests/op"
	"github.com/bffgate/bffgate/tyk-plugin/tykhost"
)

// TestDemoInChromium is tests/browser's test behind the Tyk test host: the
// demo SPA (sdk-js/demo/dist) in headless Chromium, served through a
// tykhost gateway that has the real bffgate.so loaded by Go's plugin
// loader, logs in at the real test OpenID Provider, calls the API through
// the BFF (and, in token-mediating mode, with a token from /token), and
// logs out — tests/browser/login.mjs, in both modes. Then it searches
// everything the browser received, sent and kept for every token the
// provider gave the plugin (package browsertest, shared with
// tests/browser).
//
// The gateway runs in a child process of this test binary with a config
// file of its own (a Go plugin loads once per process and reads
// BFFGATE_CONFIG once), laid out as tyk-plugin/README.md, "Serving the SPA
// from the same origin", says (spaAPIs). The child records the token
// endpoint's answers at the process's http.DefaultTransport, which the
// plugin's HTTP client uses (the plugin shares net/http with its host), and
// prints them for this test: the tokens are known without reaching into the
// plugin.
//
// It needs what tests/browser needs (browsertest.Prerequisites); without
// it the test fails with the commands to run, or skips with
// BFFGATE_SKIP_BROWSER=1. Artifacts go to tests/artifacts/tyk/ (login.mjs's
// files) and tests/artifacts/logged-in-tyk.png (the token-mediating page,
// logged in), or below $BFFGATE_ARTIFACTS.
func TestDemoInChromium(t *testing.T) {
	chromium := browsertest.Prerequisites(t)
	base := browsertest.Artifacts(t)
	artifacts := filepath.Join(base, "tyk")
	if err := os.MkdirAll(artifacts, 0o755); err != nil {
		t.Fatal(err)
	}
	shot := filepath.Join(base, "logged-in-tyk.png")
	_ = os.Remove(shot)
	// The whole test stays within about 90 s: the two runs of login.mjs
	// (about 6 s each) share 75 s, each killed when its share is up.
	deadline := time.Now().Add(75 * time.Second)
	modes := []string{browsertest.ModeBFF, browsertest.ModeTokenMediating}
	for i, mode := range modes {
		t.Run(mode, func(t *testing.T) {
			st := startTykStack(t, mode)
			timeout := time.Until(deadline) / time.Duration(len(modes)-i)
			rec := browsertest.Run(t, browsertest.Script{
				URL: st.url, Mode: mode, Chromium: chromium, Artifacts: artifacts, Logs: st.logs.String, Timeout: timeout,
			})
			tokens := st.stop(t)
			if rec == nil {
				return
			}
			checkTykRecording(t, st, mode, rec, tokens)
			if t.Failed() {
				t.Logf("the browser's recording: %s\nthe stack's logs (last 6000 bytes):\n%s", rec.File, tailOf(st.logs.String(), 6000))
			}
		})
	}
	if !t.Failed() {
		png, err := os.ReadFile(filepath.Join(artifacts, "logged-in-"+browsertest.ModeTokenMediating+".png"))
		if err == nil {
			err = os.WriteFile(shot, png, 0o644)
		}
		if err != nil {
			t.Errorf("screenshot: %v", err)
		}
	}
}

// checkTykRecording checks the browser's recording of a login.mjs run
// against the Tyk stack: every token the provider gave the plugin is
// searched for (browsertest.Check), and nothing JWT-shaped reached the
// browser (the provider's access and refresh tokens are opaque; its ID
// tokens are JWTs and may reach the browser nowhere).
func checkTykRecording(t *testing.T, st *tykStack, mode string, rec *browsertest.Recording, tokens []browsertest.Tokens) {
	ps := browsertest.Places(rec)
	if ids := browsertest.SessionCookies(rec, ps, st.url); len(ids) == 0 {
		t.Fatal("the browser never got a session cookie from the gateway")
	}
	var secrets browsertest.Secrets
	for _, tr := range tokens {
		secrets.Add(browsertest.AccessToken, tr.AccessToken)
		secrets.Add(browsertest.RefreshToken, tr.RefreshToken)
		secrets.Add(browsertest.IDToken, tr.IDToken)
	}
	t.Logf("answers of the provider's token endpoint to the plugin: %d", len(tokens))
	if len(tokens) == 0 {
		t.Fatal("the gateway child recorded no answer of the provider's token endpoint: does the plugin's HTTP client still use http.DefaultTransport?")
	}
	browsertest.Check(t, rec, ps, browsertest.Options{URL: st.url, Mode: mode, Secrets: &secrets, Introspect: st.op.Introspect})
	leaks := map[string]bool{}
	for _, p := range ps {
		if m := jwtShape.FindString(p.Text); m != "" {
			if msg := fmt.Sprintf("LEAK: a JWT (%.20s…) is in the %s", m, p); !leaks[msg] {
				leaks[msg] = true
				t.Error(msg)
			}
		}
	}
}

// jwtShape is a JWT: base64url of {"…} for header and payload, then a
// signature.
var jwtShape = regexp.MustCompile(`eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*`)

// The BFF's endpoints, at the root of the SPA's origin, where the demo's
// client (createClient with no baseUrl) calls them. /logout takes
// /logout/callback too.
var bffEndpoints = []string{"/login", "/oauth/callback", "/session", "/token", "/logout", "/backchannel-logout"}

// spaAPIs are the Tyk APIs that serve a same-origin SPA whose client calls
// the BFF at the origin's root (tyk-plugin/README.md, "Serving the SPA
// from the same origin"). The gateway takes, for each request, the API
// with the longest listen path that matches, as Tyk does:
//
//   - "/": the SPA's static files, keyless, with the BFFGatePublic hook
//     (no session needed; the session cookie and forged identity headers
//     never reach the file server);
//   - "/direct/": an API that checks bearer tokens itself, for
//     token-mediating mode: keyless, with BFFGatePublic;
//   - "/api/" and one API per BFF endpoint: keyless, with the BFFGate hook.
//
// The hooked APIs share one entry of the config file, with listen_path "/"
// (so path_prefix is empty): the plugin picks its engine by the request
// path, and "/" is the longest entry matching them all, so they share one
// engine and one session.
func spaAPIs(spa, api *url.URL, hook, public tykhost.Hook) []tykhost.API {
	apis := []tykhost.API{
		{ListenPath: "/", Target: spa, Pre: []tykhost.Hook{public}},
		{ListenPath: "/direct/", Target: api, Pre: []tykhost.Hook{public}},
		{ListenPath: "/api/", Target: api, Pre: []tykhost.Hook{hook}},
	}
	for _, p := range bffEndpoints {
		// The hook answers these itself; the target is never reached.
		apis = append(apis, tykhost.API{ListenPath: p, Target: api, Pre: []tykhost.Hook{hook}})
	}
	return apis
}

// spaConfig is the child's BFFGATE_CONFIG: one API, at listen path "/",
// in mode, for the gateway at base.
func spaConfig(base, mode string, o *op.Server) []byte {
	b, _ := json.MarshalIndent(map[string]any{"apis": []any{map[string]any{
		"listen_path": "/",
		"config": map[string]any{
			"issuer":                   o.Issuer,
			"client_id":                o.ClientID,
			"client_secret":            o.ClientSecret,
			"redirect_url":             base + "/oauth/callback",
			"post_logout_redirect_url": base + "/logout/callback",
			"cookie_keys":              []string{cookieKey},
			"mode":                     mode,
			"identity_headers": []map[string]string{
				{"header": "X-User", "claim": "sub"}, {"header": "X-User-Email", "claim": "email"},
			},
		},
	}}}, "", "  ")
	return b
}

// tykStack is one mode's stack: the SPA's files and the echo API (in this
// process), the gateway with bffgate.so (a child process) and the test
// OpenID Provider.
type tykStack struct {
	url  string // the gateway: the SPA's and the BFF's origin
	op   *op.Server
	logs *flowtest.SyncBuffer // the provider's, the plugin's and the gateway's

	stdin  io.Closer
	cmd    *exec.Cmd
	listen chan string // the child's URL
	mu     sync.Mutex
	tokens []browsertest.Tokens
	line   []byte // of the child's stdout, not yet ended
	once   sync.Once
}

const (
	spaUpstreamEnv = "BFFGATE_TYKHOST_SPA_UPSTREAM"
	apiUpstreamEnv = "BFFGATE_TYKHOST_API_UPSTREAM"
)

// startTykStack starts the stack for one test and stops it when the test
// ends.
func startTykStack(t *testing.T, mode string) *tykStack {
	t.Helper()
	st := &tykStack{logs: &flowtest.SyncBuffer{}, listen: make(chan string, 1)}
	spa := httptest.NewServer(http.FileServer(http.Dir(browsertest.SPADir())))
	t.Cleanup(spa.Close)
	var provider atomic.Pointer[op.Server]
	api := httptest.NewServer(op.EchoAPI(provider.Load))
	t.Cleanup(api.Close)

	// The gateway first: the provider must know its URL, and the plugin
	// reads the config file on the first request, so it is written once
	// the provider runs.
	cfgPath := filepath.Join(t.TempDir(), "bffgate.json")
	cmd := exec.Command(os.Args[0], "-test.run=^TestBrowserHostChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), childEnv+"=browser-host", pluginEnv+"="+soPath, "BFFGATE_CONFIG="+cfgPath,
		spaUpstreamEnv+"="+spa.URL, apiUpstreamEnv+"="+api.URL)
	// A writer, not a pipe read here: Wait returns once all of it is
	// written, so stop has every TOKENS line.
	cmd.Stdout, cmd.Stderr = st, st.logs
	cmd.WaitDelay = 5 * time.Second
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	st.cmd, st.stdin = cmd, stdin
	t.Cleanup(func() { st.stop(t) })
	select {
	case st.url = <-st.listen:
	case <-time.After(30 * time.Second):
		t.Fatalf("the gateway child did not start; its output:\n%s", st.logs.String())
	}

	st.op = op.StartT(t, op.Options{
		RedirectURIs:           []string{st.url + "/oauth/callback"},
		PostLogoutRedirectURIs: []string{st.url + "/logout/callback"},
		BackchannelLogoutURI:   st.url + "/backchannel-logout",
		Stderr:                 st.logs,
	})
	provider.Store(st.op)
	if err := os.WriteFile(cfgPath, spaConfig(st.url, mode, st.op), 0o600); err != nil {
		t.Fatal(err)
	}
	return st
}

// Write takes the child's stdout: "LISTEN <url>", "TOKENS <json>", and
// anything else, which goes to the logs.
func (st *tykStack) Write(p []byte) (int, error) {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.line = append(st.line, p...)
	for {
		i := bytes.IndexByte(st.line, '\n')
		if i < 0 {
			return len(p), nil
		}
		line := string(st.line[:i])
		st.line = st.line[i+1:]
		if u, ok := strings.CutPrefix(line, "LISTEN "); ok {
			select {
			case st.listen <- u:
			default:
			}
		} else if js, ok := strings.CutPrefix(line, "TOKENS "); ok {
			var tr browsertest.Tokens
			if err := json.Unmarshal([]byte(js), &tr); err != nil {
				fmt.Fprintf(st.logs, "bad TOKENS line from the gateway child: %v\n", err)
			}
			st.tokens = append(st.tokens, tr)
		} else {
			fmt.Fprintln(st.logs, line)
		}
	}
}

// stop ends the gateway child (it exits when its stdin closes; killed
// after 10 s) and returns the token endpoint's answers it saw, all of
// them: its stdout has been read to its end.
func (st *tykStack) stop(t *testing.T) []browsertest.Tokens {
	st.once.Do(func() {
		st.stdin.Close()
		done := make(chan error, 1)
		go func() { done <- st.cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("the gateway child: %v\n%s", err, tailOf(st.logs.String(), 6000))
			}
		case <-time.After(10 * time.Second):
			st.cmd.Process.Kill()
			<-done
			t.Error("the gateway child did not exit when its stdin closed: killed")
		}
	})
	st.mu.Lock()
	defer st.mu.Unlock()
	return append([]browsertest.Tokens(nil), st.tokens...)
}

// TestBrowserHostChild is the gateway of TestDemoInChromium, in a child
// process; it does nothing in a normal run. It loads bffgate.so, serves
// spaAPIs, prints "LISTEN <url>", and one "TOKENS <json>" line per answer
// of the provider's token endpoint to the plugin, until its stdin closes.
func TestBrowserHostChild(t *testing.T) {
	if os.Getenv(childEnv) != "browser-host" {
		t.Skip("runs only as a child process of TestDemoInChromium")
	}
	hook, err := tykhost.Load(soPath, "BFFGate")
	if err != nil {
		t.Fatal(err)
	}
	public, err := tykhost.Load(soPath, "BFFGatePublic")
	if err != nil {
		t.Fatal(err)
	}
	spa, err := url.Parse(os.Getenv(spaUpstreamEnv))
	if err != nil {
		t.Fatal(err)
	}
	api, err := url.Parse(os.Getenv(apiUpstreamEnv))
	if err != nil {
		t.Fatal(err)
	}
	gw := httptest.NewServer(tykhost.New(spaAPIs(spa, api, hook, public)...))
	defer gw.Close()
	// tykhost.New has cloned http.DefaultTransport for the upstreams; what
	// is left on it is the plugin's HTTP client (no Transport of its own).
	var mu sync.Mutex // one TOKENS line at a time
	http.DefaultTransport = &browsertest.TokenTap{Next: http.DefaultTransport, Seen: func(tok browsertest.Tokens) {
		line, _ := json.Marshal(tok)
		mu.Lock()
		defer mu.Unlock()
		fmt.Printf("TOKENS %s\n", line)
	}}
	fmt.Printf("LISTEN %s\n", gw.URL)
	io.Copy(io.Discard, os.Stdin)
}

func tailOf(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}
