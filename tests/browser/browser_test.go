// Package browser runs the demo SPA in headless Chromium (login.mjs, with
// playwright-core and Debian's /usr/bin/chromium) through a real login at
// the test OpenID Provider, API calls and logout, in both BFF modes, and
// then searches everything the browser received and sent for the session's
// real tokens, which the test knows because it holds the session store.
//
// Prerequisites (the test fails, with the command to run, when one is
// missing; BFFGATE_SKIP_BROWSER=1 skips it instead):
//
//	apt-get install -y chromium
//	npm ci --prefix tests/op
//	npm ci --prefix sdk-js && npm --prefix sdk-js run build:demo
//	npm ci --prefix tests/browser
//
// Artifacts (screenshots, the browser's recording) go to tests/artifacts,
// or to $BFFGATE_ARTIFACTS.
package browser

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bffgate/bffgate/core/bff"
	"github.com/bffgate/bffgate/core/session"
	"github.com/bffgate/bffgate/tests/demo"
)

const (
	sessionCookie = "__Host-bffgate"
	scriptTimeout = 90 * time.Second // login.mjs gives up by itself after 80 s
)

func TestDemoInChromium(t *testing.T) {
	chromium := prerequisites(t)
	artifacts := os.Getenv("BFFGATE_ARTIFACTS")
	if artifacts == "" {
		artifacts = filepath.Join(demo.RepoDir(), "tests", "artifacts")
	}
	artifacts, _ = filepath.Abs(artifacts)
	if err := os.MkdirAll(artifacts, 0o755); err != nil {
		t.Fatal(err)
	}
	// One mode after the other: each run is a Chromium and two Node
	// processes, enough for a small machine.
	for _, mode := range []string{bff.ModeBFF, bff.ModeTokenMediating} {
		t.Run(mode, func(t *testing.T) {
			st := startStack(t, mode)
			rec := runScript(t, st, mode, chromium, artifacts)
			if rec == nil {
				return
			}
			checkRecording(t, st, mode, rec)
			if t.Failed() {
				t.Logf("the browser's recording: %s", filepath.Join(artifacts, "recording-"+mode+".json"))
			}
		})
	}
}

// prerequisites fails the test with the commands that fix what is missing,
// and returns Chromium's path.
func prerequisites(t *testing.T) string {
	t.Helper()
	if os.Getenv("BFFGATE_SKIP_BROWSER") == "1" {
		t.Skip("BFFGATE_SKIP_BROWSER=1: the browser tests are skipped")
	}
	repo := demo.RepoDir()
	chromium := os.Getenv("BFFGATE_CHROMIUM")
	if chromium == "" {
		chromium = "/usr/bin/chromium"
	}
	var missing []string
	if _, err := os.Stat(chromium); err != nil {
		missing = append(missing, fmt.Sprintf("%s is missing: `apt-get update && apt-get install -y chromium`", chromium))
	}
	if _, err := exec.LookPath("node"); err != nil {
		missing = append(missing, "node is not on PATH: install Node.js 20 (`scripts/deps.sh node`)")
	}
	for _, p := range []struct{ file, fix string }{
		{"tests/op/node_modules/oidc-provider/package.json", "npm ci --prefix tests/op"},
		{"sdk-js/demo/dist/index.html", "npm ci --prefix sdk-js && npm --prefix sdk-js run build:demo"},
		{"tests/browser/node_modules/playwright-core/package.json", "npm ci --prefix tests/browser"},
	} {
		if _, err := os.Stat(filepath.Join(repo, p.file)); err != nil {
			missing = append(missing, fmt.Sprintf("%s is missing: `%s`", p.file, p.fix))
		}
	}
	if len(missing) > 0 {
		t.Fatalf("the browser tests cannot run (set BFFGATE_SKIP_BROWSER=1 to skip them):\n  - %s", strings.Join(missing, "\n  - "))
	}
	return chromium
}

// runScript runs login.mjs against the stack and reads its recording; it
// fails the test if the script fails.
func runScript(t *testing.T, st *stack, mode, chromium, artifacts string) *recording {
	t.Helper()
	recFile := filepath.Join(artifacts, "recording-"+mode+".json")
	for _, f := range []string{recFile, "logged-in-" + mode + ".png", "failure-" + mode + ".png"} {
		_ = os.Remove(filepath.Join(artifacts, filepath.Base(f)))
	}
	ctx, cancel := context.WithTimeout(context.Background(), scriptTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", filepath.Join(demo.RepoDir(), "tests", "browser", "login.mjs"))
	cmd.Env = append(os.Environ(),
		"BFFGATE_URL="+st.URL, "BFFGATE_MODE="+mode, "BFFGATE_ARTIFACTS="+artifacts, "BFFGATE_CHROMIUM="+chromium)
	// On timeout: SIGTERM, on which Playwright closes Chromium; SIGKILL
	// 10 s later.
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 10 * time.Second
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err := cmd.Run()
	if ctx.Err() != nil {
		err = fmt.Errorf("killed after %v: %w", scriptTimeout, err)
	}
	if err != nil {
		t.Errorf("login.mjs (%s mode) failed after %v: %v\n--- its output:\n%s--- the stack's logs (last 6000 bytes):\n%s\nartifacts: %s",
			mode, time.Since(start).Round(time.Millisecond), err, out.String(), tail(st.Logs.String(), 6000), artifacts)
		return nil
	}
	t.Logf("login.mjs (%s mode) passed in %v:\n%s", mode, time.Since(start).Round(time.Millisecond), out.String())
	data, err := os.ReadFile(recFile)
	if err != nil {
		t.Fatalf("login.mjs passed but left no recording: %v", err)
	}
	var rec recording
	if err := json.Unmarshal(data, &rec); err != nil {
		t.Fatalf("%s: %v", recFile, err)
	}
	if _, err := os.Stat(filepath.Join(artifacts, "logged-in-"+mode+".png")); err != nil {
		t.Errorf("login.mjs passed but took no screenshot: %v", err)
	}
	return &rec
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// recording is what login.mjs writes (see there).
type recording struct {
	Mode           string   `json:"mode"`
	URL            string   `json:"url"`
	Chromium       string   `json:"chromium"`
	Steps          []string `json:"steps"`
	SessionCookies []string `json:"sessionCookies"`
	Responses      []struct {
		URL          string   `json:"url"`
		Status       int      `json:"status"`
		Method       string   `json:"method"`
		ResourceType string   `json:"resourceType"`
		Headers      []header `json:"headers"`
		Body         *string  `json:"body"`
		BodyError    *string  `json:"bodyError"`
	} `json:"responses"`
	Intercepted []struct {
		URL       string   `json:"url"`
		Method    string   `json:"method"`
		Status    int      `json:"status"`
		Headers   []header `json:"headers"`
		Body      *string  `json:"body"`
		BodyError *string  `json:"bodyError"`
	} `json:"intercepted"`
	Requests []struct {
		URL          string            `json:"url"`
		Method       string            `json:"method"`
		ResourceType string            `json:"resourceType"`
		Headers      map[string]string `json:"headers"`
		PostData     *string           `json:"postData"`
	} `json:"requests"`
	Storage []struct {
		When           string            `json:"when"`
		URL            string            `json:"url"`
		LocalStorage   map[string]string `json:"localStorage"`
		SessionStorage map[string]string `json:"sessionStorage"`
		DocumentCookie string            `json:"documentCookie"`
		Cookies        []struct {
			Name   string `json:"name"`
			Value  string `json:"value"`
			Domain string `json:"domain"`
		} `json:"cookies"`
	} `json:"storage"`
	Unsettled int     `json:"unsettled"`
	Error     *string `json:"error"`
}

type header struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// place is one piece of text the browser received, sent or kept.
type place struct {
	kind   string // "response header", "response body", "request URL", "request header", "request body", "page storage", "cookie jar"
	origin string // of the URL
	method string
	path   string
	header string // lower case, for headers
	text   string
}

func (p place) String() string {
	s := fmt.Sprintf("%s of %s %s%s", p.kind, p.method, p.origin, p.path)
	if p.header != "" {
		s += " (" + p.header + ")"
	}
	return s
}

func places(rec *recording) []place {
	var out []place
	at := func(kind, method, rawURL string) place {
		p := place{kind: kind, method: method, path: rawURL}
		if u, err := url.Parse(rawURL); err == nil {
			p.origin, p.path = u.Scheme+"://"+u.Host, u.EscapedPath()
		}
		return p
	}
	for _, r := range rec.Responses {
		for _, h := range r.Headers {
			p := at("response header", r.Method, r.URL)
			p.header, p.text = strings.ToLower(h.Name), h.Value
			out = append(out, p)
		}
		if r.Body != nil {
			p := at("response body", r.Method, r.URL)
			p.text = *r.Body
			out = append(out, p)
		}
	}
	for _, r := range rec.Intercepted {
		for _, h := range r.Headers {
			p := at("response header", r.Method, r.URL)
			p.header, p.text = strings.ToLower(h.Name), h.Value
			out = append(out, p)
		}
		if r.Body != nil {
			p := at("response body", r.Method, r.URL)
			p.text = *r.Body
			out = append(out, p)
		}
	}
	for _, r := range rec.Requests {
		p := at("request URL", r.Method, r.URL)
		p.text = r.URL
		out = append(out, p)
		for name, v := range r.Headers {
			p := at("request header", r.Method, r.URL)
			p.header, p.text = strings.ToLower(name), v
			out = append(out, p)
		}
		if r.PostData != nil {
			p := at("request body", r.Method, r.URL)
			p.text = *r.PostData
			out = append(out, p)
		}
	}
	for _, s := range rec.Storage {
		for kind, m := range map[string]map[string]string{"localStorage": s.LocalStorage, "sessionStorage": s.SessionStorage} {
			for k, v := range m {
				p := at("page storage", "", s.URL)
				p.header, p.text = kind, k+"="+v
				out = append(out, p)
			}
		}
		p := at("page storage", "", s.URL)
		p.header, p.text = "document.cookie", s.DocumentCookie
		out = append(out, p)
		for _, c := range s.Cookies {
			p := place{kind: "cookie jar", origin: c.Domain, header: c.Name, text: c.Name + "=" + c.Value}
			out = append(out, p)
		}
	}
	return out
}

// secret is a token the browser must not see, or see only where allowed.
type secret struct {
	kind    string // "access token", "refresh token", "ID token"
	value   string
	needles []string // the token, and parts of it that identify it alone
}

func newSecret(kind, value string) secret {
	s := secret{kind: kind, value: value, needles: []string{value}}
	if parts := strings.Split(value, "."); len(parts) == 3 {
		// A JWT: its payload and its signature each identify it (its
		// header is the same for all of the provider's ID tokens).
		s.needles = append(s.needles, parts[1], parts[2])
	} else if len(value) >= 32 {
		// An opaque token: so does each half of it.
		s.needles = append(s.needles, value[:len(value)/2], value[len(value)/2:])
	}
	return s
}

// checkRecording searches what the browser received and sent for the
// session's tokens, and checks the recording is complete.
func checkRecording(t *testing.T, st *stack, mode string, rec *recording) {
	if rec.Mode != mode || rec.URL != st.URL {
		t.Fatalf("the recording is of %s at %s, want %s at %s", rec.Mode, rec.URL, mode, st.URL)
	}
	t.Logf("Chromium %s; %d responses, %d response bodies intercepted, %d requests", rec.Chromium, len(rec.Responses), len(rec.Intercepted), len(rec.Requests))
	ps := places(rec)

	// The session(s) the browser held: the cookie it showed login.mjs,
	// and every value a Set-Cookie gave it.
	ids := map[string]bool{}
	for _, v := range rec.SessionCookies {
		ids[v] = true
	}
	for _, p := range ps {
		if p.kind == "response header" && p.header == "set-cookie" && p.origin == st.URL {
			if v, ok := strings.CutPrefix(p.text, sessionCookie+"="); ok {
				if v, _, _ = strings.Cut(v, ";"); v != "" {
					ids[v] = true
				}
			}
		}
	}
	if len(ids) == 0 {
		t.Fatal("the browser never got a session cookie")
	}
	var secrets []secret
	seen := map[string]bool{}
	add := func(kind, v string) {
		if v != "" && !seen[v] {
			seen[v] = true
			secrets = append(secrets, newSecret(kind, v))
		}
	}
	keys := map[string]bool{}
	for id := range ids {
		versions, err := st.Store.versions(id)
		if err != nil {
			t.Fatal(err)
		}
		if len(versions) == 0 {
			t.Errorf("the session of cookie %.8s… was never stored", id)
		}
		for _, s := range versions {
			add("access token", s.AccessToken)
			add("refresh token", s.RefreshToken)
			add("ID token", s.IDToken)
		}
		pid, _ := session.ParseID(id)
		keys[pid.StoreKey()] = true
		// Logout deleted it.
		if _, err := st.Store.Get(context.Background(), pid.StoreKey(), 0); !errors.Is(err, session.ErrNotFound) {
			t.Errorf("after logout the session store still has the session (err %v)", err)
		}
	}
	// bffgate keeps no ID token in the session (logout_id_token_hint is
	// off): search for every one the provider gave it.
	for _, idt := range st.Tokens.IDTokens() {
		add("ID token", idt)
	}
	for _, k := range st.Store.keys() {
		if !keys[k] {
			t.Errorf("the store holds a session (key %.8s…) whose cookie the browser never got: its tokens are not searched for", k)
		}
	}
	count := map[string]int{}
	for _, s := range secrets {
		count[s.kind]++
	}
	for _, kind := range []string{"access token", "refresh token", "ID token"} {
		if count[kind] == 0 {
			t.Errorf("the session never held a %s: nothing to search for", kind)
		}
	}
	// In token-mediating mode the browser gets an access token from /token:
	// it may be the session's own or an exchanged one; search for it too.
	var handedOut []string
	for _, p := range ps {
		if p.kind == "response body" && p.origin == st.URL && p.method == "GET" && p.path == "/token" {
			var body map[string]any
			if json.Unmarshal([]byte(p.text), &body) == nil {
				if v, ok := body["access_token"].(string); ok {
					handedOut = append(handedOut, v)
					add("access token", v)
				}
				for _, f := range []string{"refresh_token", "id_token"} {
					if _, ok := body[f]; ok {
						t.Errorf("GET /token answered with a %s field", f)
					}
				}
			}
		}
	}
	for _, r := range rec.Responses {
		if strings.HasPrefix(r.URL, st.URL+"/token") && r.Status == 200 {
			cc := ""
			for _, h := range r.Headers {
				if strings.EqualFold(h.Name, "cache-control") {
					cc = h.Value
				}
			}
			if !strings.Contains(cc, "no-store") {
				t.Errorf("GET /token handed out a token with Cache-Control %q, want no-store", cc)
			}
		}
	}
	t.Logf("searching for %d access, %d refresh and %d ID tokens (%d needles) in %d places",
		count["access token"], count["refresh token"], count["ID token"], needles(secrets), len(ps))

	allowed := func(s secret, p place) bool {
		switch s.kind {
		case "access token":
			// Token-mediating mode: /token hands it to the app, which sends
			// it to the API that checks tokens itself.
			return mode == bff.ModeTokenMediating && p.origin == st.URL &&
				((p.kind == "response body" && p.method == "GET" && p.path == "/token") ||
					(p.kind == "request header" && p.header == "authorization" && strings.HasPrefix(p.path, "/direct/")))
		}
		// The ID token never reaches the browser: RP-initiated logout
		// sends client_id, not id_token_hint (logout_id_token_hint is off).
		return false
	}
	found := map[string]int{}
	leaks := map[string]bool{}
	for _, s := range secrets {
		for _, p := range ps {
			for _, n := range s.needles {
				if !strings.Contains(p.text, n) {
					continue
				}
				if allowed(s, p) {
					found[s.kind+" in "+p.kind+" of "+p.method+" "+p.path]++
				} else {
					what := "the " + s.kind
					if n != s.value {
						what = "part of the " + s.kind
					}
					if msg := fmt.Sprintf("LEAK: %s is in the %s", what, p); !leaks[msg] {
						leaks[msg] = true
						t.Error(msg)
					}
				}
				break
			}
		}
	}
	for _, k := range slices.Sorted(maps.Keys(found)) {
		t.Logf("allowed: %s (%d times)", k, found[k])
	}
	if mode == bff.ModeTokenMediating {
		if len(handedOut) == 0 {
			t.Error("token-mediating mode: no GET /token response body with an access_token was recorded")
		}
		if found["access token in request header of GET /direct/whoami"] == 0 {
			t.Error("token-mediating mode: the access token from /token was not found in the Authorization header to /direct/whoami")
		}
	}
	checkComplete(t, st, rec, ps)

	// The provider revoked the tokens at logout.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, s := range secrets {
		if s.kind != "access token" {
			continue
		}
		info, err := st.OP.Introspect(ctx, s.value)
		if err != nil {
			t.Errorf("introspect: %v", err)
		} else if info["active"] != false {
			t.Errorf("after logout the provider still says an access token is active: %v", info["active"])
		}
	}
}

func needles(ss []secret) int {
	n := 0
	for _, s := range ss {
		n += len(s.needles)
	}
	return n
}

// checkComplete checks that the search saw what it should: every response
// body, Set-Cookie headers, and the BFF's JSON.
func checkComplete(t *testing.T, st *stack, rec *recording, ps []place) {
	if rec.Error != nil {
		t.Errorf("the recording has an error: %s", *rec.Error)
	}
	if rec.Unsettled != 0 {
		t.Errorf("login.mjs ended with %d requests or responses not yet recorded", rec.Unsettled)
	}
	intercepted := map[string]bool{}
	for _, r := range rec.Intercepted {
		if r.Body != nil {
			intercepted[r.Method+" "+r.URL] = true
		} else if r.BodyError == nil || *r.BodyError != "redirect" {
			t.Errorf("the body of %s %s (HTTP %d) was not intercepted: %v", r.Method, r.URL, r.Status, deref(r.BodyError))
		}
	}
	for _, r := range rec.Responses {
		if r.Body != nil || (r.Status >= 300 && r.Status < 400) || intercepted[r.Method+" "+r.URL] {
			continue
		}
		t.Errorf("the body of %s %s (HTTP %d) was read neither from Playwright (%s) nor by interception", r.Method, r.URL, r.Status, deref(r.BodyError))
	}
	must := map[string]bool{
		"a Set-Cookie header with the session cookie":        false,
		"the /session body with the user's name":             false,
		"the POST /logout body (read before the navigation)": false,
	}
	for _, p := range ps {
		switch {
		case p.kind == "response header" && p.header == "set-cookie" && strings.HasPrefix(p.text, sessionCookie+"="+firstOr(rec.SessionCookies)):
			must["a Set-Cookie header with the session cookie"] = true
		case p.kind == "response body" && p.origin == st.URL && p.path == "/session" && strings.Contains(p.text, "Alice Example"):
			must["the /session body with the user's name"] = true
		case p.kind == "response body" && p.origin == st.URL && p.method == "POST" && p.path == "/logout" && strings.Contains(p.text, "logoutUrl"):
			must["the POST /logout body (read before the navigation)"] = true
		}
	}
	for what, ok := range must {
		if !ok {
			t.Errorf("the recording lacks %s: the search would miss things", what)
		}
	}
}

func deref(s *string) string {
	if s == nil {
		return "no reason given"
	}
	return *s
}

func firstOr(s []string) string {
	if len(s) == 0 {
		return "\x00"
	}
	return s[0]
}
