package tykhost_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bffgate/bffgate/core/session/redisstore/redistest"
	"github.com/bffgate/bffgate/tests/op"
	"github.com/bffgate/bffgate/tyk-plugin/tykhost"
)

// TestTwoHostsOneRedis runs two gateway processes — two children of this
// test binary, each loading bffgate.so with the same config file, whose
// API keeps sessions in one Redis — as two Tyk nodes behind a load
// balancer: a session made on one node works on the other, and a logout
// on one ends it on both.
func TestTwoHostsOneRedis(t *testing.T) {
	srv := redistest.Start(t)
	cfgPath := filepath.Join(t.TempDir(), "bffgate.json")
	// The children read the file on their first request, so it can be
	// written once their addresses are known.
	a := startHost(t, cfgPath)
	b := startHost(t, cfgPath)
	o := op.StartT(t, op.Options{
		RedirectURIs: []string{a + "/app/oauth/callback"},
		Stderr:       io.Discard,
	})
	cfg, _ := json.Marshal(map[string]any{"apis": []any{map[string]any{
		"listen_path": "/app/",
		"config": map[string]any{
			"issuer": o.Issuer, "client_id": o.ClientID, "client_secret": o.ClientSecret,
			// Both nodes serve one public URL; the provider sends the
			// browser back to node a.
			"redirect_url": a + "/app/oauth/callback",
			"cookie_keys":  []string{cookieKey},
			"redis":        map[string]any{"url": "redis://" + srv.Addr + "/0", "key_prefix": "tyk-two-hosts:"},
		},
	}}})
	if err := os.WriteFile(cfgPath, cfg, 0o600); err != nil {
		t.Fatal(err)
	}

	c := browser()
	r := do(t, c, "GET", a+"/app/login")
	if r.Status != http.StatusFound {
		t.Fatalf("node a /app/login = %d (body %s)", r.Status, r.Body)
	}
	cb, err := o.Login(t.Context(), c, r.Header.Get("Location"), op.AliceUser, op.AlicePassword)
	if err != nil {
		t.Fatal(err)
	}
	if r = do(t, c, "GET", cb.String()); r.Status != http.StatusFound {
		t.Fatalf("node a callback = %d (body %s)", r.Status, r.Body)
	}

	// The cookie jar sends the 127.0.0.1 cookie to both nodes' ports.
	seen := map[string]string{}
	for _, node := range []string{a, b} {
		r := do(t, c, "GET", node+"/app/api/x", "X-CSRF", "1")
		if r.Status != http.StatusOK {
			t.Fatalf("API on %s = %d (body %s)", node, r.Status, r.Body)
		}
		var echo map[string]string
		if err := json.Unmarshal(r.Body, &echo); err != nil {
			t.Fatalf("upstream answer %s: %v", r.Body, err)
		}
		if !strings.HasPrefix(echo["authorization"], "Bearer ") || strings.Contains(echo["cookie"], "__Host-bffgate") {
			t.Fatalf("upstream behind %s saw Authorization %q, Cookie %q", node, echo["authorization"], echo["cookie"])
		}
		seen[node] = echo["authorization"]
	}
	if seen[a] != seen[b] {
		t.Fatal("the two nodes sent different access tokens for one session")
	}
	if r := do(t, c, "GET", b+"/app/session"); r.Status != http.StatusOK || r.JSON(t)["authenticated"] != true {
		t.Fatalf("node b /app/session = %d (body %s)", r.Status, r.Body)
	}

	// Logout on b ends the session on a.
	if r := do(t, c, "POST", b+"/app/logout", "X-CSRF", "1"); r.Status != http.StatusOK {
		t.Fatalf("node b /app/logout = %d (body %s)", r.Status, r.Body)
	}
	do(t, c, "GET", a+"/app/api/x", "X-CSRF", "1").WantError(t, http.StatusUnauthorized, "unauthenticated")
}

// startHost starts a child gateway process with BFFGATE_CONFIG=cfgPath and
// returns its URL; it is stopped when the test ends.
func startHost(t *testing.T, cfgPath string) string {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), childEnv+"=host", pluginEnv+"="+soPath, "BFFGATE_CONFIG="+cfgPath)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close() // the child exits when its stdin closes
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if u, ok := strings.CutPrefix(sc.Text(), "LISTEN "); ok {
				lines <- u
			}
		}
		io.Copy(io.Discard, stdout)
	}()
	select {
	case u := <-lines:
		return u
	case <-time.After(30 * time.Second):
		t.Fatal("the child gateway did not start")
		return ""
	}
}

// hostChild is a gateway process: the plugin on /app/ in front of an
// upstream that echoes the Authorization and Cookie headers it got. It
// prints its URL and serves until its stdin closes.
func hostChild(t *testing.T) {
	h, err := tykhost.Load(soPath, "BFFGate")
	if err != nil {
		t.Fatal(err)
	}
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]string{"authorization": r.Header.Get("Authorization"), "cookie": r.Header.Get("Cookie")})
	}))
	defer up.Close()
	target, _ := url.Parse(up.URL)
	gw := httptest.NewServer(tykhost.New(tykhost.API{ListenPath: "/app/", StripListenPath: true, Target: target, Pre: []tykhost.Hook{h}}))
	defer gw.Close()
	fmt.Printf("LISTEN %s\n", gw.URL)
	io.Copy(io.Discard, os.Stdin)
}
