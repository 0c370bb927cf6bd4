package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/bffgate/bffgate/tests/op"
)

// proc is a bffgate serve process of a test, with its log.
type proc struct {
	t       *testing.T
	cmd     *exec.Cmd
	logFile string
	addr    string
}

func startProc(t *testing.T, cfg string, args ...string) *proc {
	t.Helper()
	logFile := filepath.Join(t.TempDir(), "stderr.log")
	logOut, err := os.Create(logFile)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { logOut.Close() })
	cmd := exec.Command(binary, append([]string{"serve", "-config", cfg, "-listen", "127.0.0.1:0"}, args...)...)
	cmd.Stdout, cmd.Stderr = logOut, logOut
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})
	return &proc{t: t, cmd: cmd, logFile: logFile, addr: waitListening(t, logFile)}
}

// waitLog waits for the n-th line holding s in the log.
func (p *proc) waitLog(s string, n int) {
	p.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		logs, _ := os.ReadFile(p.logFile)
		if strings.Count(string(logs), s) >= n {
			return
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("no %q in bffgate's log within 30 s:\n%s", s, tail(logs))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (p *proc) log() string {
	b, _ := os.ReadFile(p.logFile)
	return string(b)
}

// browser keeps bffgate's cookies by hand (they are __Host-, Secure: a
// cookie jar keeps them off plain http) and the OP's in a jar.
type browser struct {
	t       *testing.T
	op      *http.Client
	cookies map[string]string
}

func newBrowser(t *testing.T) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, op: &http.Client{Jar: jar}, cookies: map[string]string{}}
}

func (b *browser) do(method, u string, hdr ...string) (int, string) {
	b.t.Helper()
	req, _ := http.NewRequest(method, u, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	for k, v := range b.cookies {
		req.AddCookie(&http.Cookie{Name: k, Value: v})
	}
	resp, err := (&http.Transport{}).RoundTrip(req)
	if err != nil {
		b.t.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, c := range resp.Cookies() {
		if c.MaxAge < 0 {
			delete(b.cookies, c.Name)
		} else {
			b.cookies[c.Name] = c.Value
		}
	}
	if loc := resp.Header.Get("Location"); loc != "" {
		return resp.StatusCode, loc
	}
	return resp.StatusCode, string(body)
}

// login runs the whole login through bffgate at base with the real OP.
func (b *browser) login(o *op.Server, base string) {
	b.t.Helper()
	status, authURL := b.do("GET", base+"/login")
	if status != http.StatusFound {
		b.t.Fatalf("/login: %d %s", status, authURL)
	}
	cb, err := o.Login(context.Background(), b.op, authURL, op.AliceUser, op.AlicePassword)
	if err != nil {
		b.t.Fatalf("login at the OP: %v", err)
	}
	if status, loc := b.do("GET", base+cb.Path+"?"+cb.RawQuery); status != http.StatusFound || b.cookies["__Host-bffgate"] == "" {
		b.t.Fatalf("callback: %d to %s, cookies %v", status, loc, b.cookies)
	}
}

// SIGHUP reloads the config file: a changed route takes effect, a session
// made before the reload still works (the in-process store is kept), a
// request in flight across the reload finishes, and a bad new config is
// refused with a log line while the old one keeps serving.
func TestSIGHUPReload(t *testing.T) {
	if binary == "" {
		t.Skip("-short: needs the built binary")
	}
	const redirect = "http://127.0.0.1:1/oauth/callback" // the test follows the callback to bffgate itself
	o := op.StartT(t, op.Options{RedirectURIs: []string{redirect}, Stderr: io.Discard})
	upstream := func(name string) *httptest.Server {
		s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, "%s bearer=%v", name, strings.HasPrefix(r.Header.Get("Authorization"), "Bearer "))
		}))
		t.Cleanup(s.Close)
		return s
	}
	a, b := upstream("A"), upstream("B")
	arrived, release := make(chan struct{}), make(chan struct{})
	free := sync.OnceFunc(func() { close(release) })
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(arrived)
		<-release
		io.WriteString(w, "done")
	}))
	t.Cleanup(slow.Close)
	t.Cleanup(free)

	cfg := filepath.Join(t.TempDir(), "bffgate.json")
	write := func(api string) {
		os.WriteFile(cfg, fmt.Appendf(nil, `{
  "bff": {"issuer": %q, "client_id": %q, "client_secret": %q, "redirect_url": %q,
          "cookie_keys": ["MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="]},
  "routes": [{"path": "/api/", "upstream": %q}, {"path": "/slow/", "upstream": %q, "public": true}]
}`, o.Issuer, o.ClientID, o.ClientSecret, redirect, api, slow.URL), 0o644)
	}
	write(a.URL)
	p := startProc(t, cfg)
	base := "http://" + p.addr
	br := newBrowser(t)
	br.login(o, base)
	if _, body := br.do("GET", base+"/api/x", "X-CSRF", "1"); body != "A bearer=true" {
		t.Fatalf("before the reload: %q, want A bearer=true", body)
	}

	inFlight := make(chan string, 1)
	go func() {
		resp, err := http.Get(base + "/slow/x")
		if err != nil {
			inFlight <- err.Error()
			return
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		inFlight <- string(body)
	}()
	<-arrived

	write(b.URL)
	p.cmd.Process.Signal(syscall.SIGHUP)
	p.waitLog("configuration reloaded", 1)
	if _, body := br.do("GET", base+"/api/x", "X-CSRF", "1"); body != "B bearer=true" {
		t.Fatalf("after the reload, with the session made before it: %q, want B bearer=true\n%s", body, tail([]byte(p.log())))
	}
	free()
	if got := <-inFlight; got != "done" {
		t.Fatalf("the request in flight across the reload got %q, want done", got)
	}

	for i, bad := range []string{`{"routes": [`, `{"bff": {"issuer": ""}, "routes": [{"path": "/", "upstream": "http://127.0.0.1:1"}]}`} {
		os.WriteFile(cfg, []byte(bad), 0o644)
		p.cmd.Process.Signal(syscall.SIGHUP)
		p.waitLog("reload refused", i+1)
		if _, body := br.do("GET", base+"/api/x", "X-CSRF", "1"); body != "B bearer=true" {
			t.Fatalf("after a refused reload of %s: %q, want the old config's B bearer=true", bad, body)
		}
	}
	if n := strings.Count(p.log(), "configuration reloaded"); n != 1 {
		t.Fatalf("%d reloads logged, want 1 (the bad configs refused)", n)
	}
}
