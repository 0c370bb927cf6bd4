// Command compare measures, in one run on loopback, an authenticated API
// request three ways: straight to the upstream, through `bffgate serve`
// (memory store), and through oauth2-proxy v7.8.1 (cookie sessions), all
// logged in against the same real OpenID Provider. It writes requests per
// second, latency and the ratios to BENCHMARKS.md. `make bench-compare`
// builds both binaries and runs it.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/bffgate/bffgate/tests/op"
)

func main() {
	bffgate := flag.String("bffgate", "bin/bffgate", "the bffgate binary")
	o2p := flag.String("oauth2-proxy", "bin/oauth2-proxy", "the oauth2-proxy binary")
	duration := flag.Duration("d", 10*time.Second, "wrk duration per target")
	out := flag.String("out", "BENCHMARKS.md", "the file whose compare section is rewritten")
	flag.Parse()
	if err := run(*bffgate, *o2p, *duration, *out); err != nil {
		log.Fatal("compare: ", err)
	}
}

type target struct {
	name   string
	url    string
	header []string // wrk -H values
}

type result struct {
	rps            float64
	avg, p50, p99  string
	non2xx, errors string
}

func run(bffgateBin, o2pBin string, d time.Duration, outFile string) error {
	ctx := context.Background()
	var stop []func()
	defer func() {
		for i := len(stop) - 1; i >= 0; i-- {
			stop[i]()
		}
	}()

	// The upstream: the smallest useful API.
	upLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	up := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") == "" && r.Header.Get("X-Forwarded-Access-Token") == "" && r.URL.Query().Get("direct") == "" {
			http.Error(w, "no token", http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"ok":true}`)
	})}
	go up.Serve(upLn)
	stop = append(stop, func() { up.Close() })
	upURL := "http://" + upLn.Addr().String()

	bffAddr, o2pAddr := freeAddr(), freeAddr()
	srv, err := op.Start(op.Options{
		RedirectURIs: []string{"http://" + bffAddr + "/oauth/callback", "http://" + o2pAddr + "/oauth2/callback"},
		// Long-lived tokens: the benchmark measures the request path, not refresh.
		AccessTokenTTL: time.Hour,
		Stderr:         io.Discard,
	})
	if err != nil {
		return err
	}
	stop = append(stop, func() { srv.Close() })

	dir, err := os.MkdirTemp("", "bffgate-compare")
	if err != nil {
		return err
	}
	stop = append(stop, func() { os.RemoveAll(dir) })
	cfg := map[string]any{
		"listen": bffAddr,
		"bff": map[string]any{
			"issuer": srv.Issuer, "client_id": srv.ClientID, "client_secret": srv.ClientSecret,
			"redirect_url": "http://" + bffAddr + "/oauth/callback",
			"cookie_keys":  []string{"MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="},
		},
		"routes": []map[string]any{{"path": "/", "upstream": upURL}},
	}
	cfgFile := filepath.Join(dir, "bffgate.json")
	data, _ := json.Marshal(cfg)
	if err := os.WriteFile(cfgFile, data, 0o600); err != nil {
		return err
	}
	stop = append(stop, start(bffgateBin, "serve", "-config", cfgFile))
	stop = append(stop, start(o2pBin,
		"--http-address="+o2pAddr, "--provider=oidc", "--oidc-issuer-url="+srv.Issuer,
		"--client-id="+srv.ClientID, "--client-secret="+srv.ClientSecret,
		"--redirect-url=http://"+o2pAddr+"/oauth2/callback", "--upstream="+upURL,
		"--cookie-secret=0123456789abcdef0123456789abcdef", "--cookie-secure=false",
		"--email-domain=*", "--code-challenge-method=S256", "--skip-provider-button=true",
		"--pass-access-token=true", "--scope=openid profile email offline_access",
		"--request-logging=false", "--auth-logging=false", "--standard-logging=false"))
	for _, a := range []string{bffAddr, o2pAddr} {
		if err := waitListening(a); err != nil {
			return err
		}
	}

	bffCookie, err := login(ctx, srv, "http://"+bffAddr+"/login", "__Host-bffgate")
	if err != nil {
		return fmt.Errorf("bffgate login: %w", err)
	}
	o2pCookie, err := login(ctx, srv, "http://"+o2pAddr+"/oauth2/start?rd=%2F", "_oauth2_proxy")
	if err != nil {
		return fmt.Errorf("oauth2-proxy login: %w", err)
	}
	targets := []target{
		{"upstream directly (no auth)", upURL + "/api/orders?direct=1", nil},
		{"bffgate serve (memory store)", "http://" + bffAddr + "/api/orders", []string{"Cookie: " + bffCookie, "X-CSRF: 1"}},
		{"oauth2-proxy v7.8.1 (cookie session)", "http://" + o2pAddr + "/api/orders", []string{"Cookie: " + o2pCookie}},
	}
	results := make([]result, len(targets))
	for i, t := range targets {
		if err := check(t); err != nil {
			return fmt.Errorf("%s: %w", t.name, err)
		}
		if results[i], err = wrk(t, d); err != nil {
			return fmt.Errorf("%s: %w", t.name, err)
		}
		fmt.Printf("%-40s %10.0f req/s  avg %s  p99 %s\n", t.name, results[i].rps, results[i].avg, results[i].p99)
	}
	return writeSection(outFile, targets, results, d)
}

func freeAddr() string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// start runs a binary in the background and returns its stop function.
func start(bin string, args ...string) func() {
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = io.Discard, os.Stderr
	if err := cmd.Start(); err != nil {
		log.Fatalf("compare: start %s: %v (run `make bench-compare`, which builds it)", bin, err)
	}
	return func() {
		cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
		}
	}
}

func waitListening(addr string) error {
	for range 100 {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("nothing listens on %s after 10 s", addr)
}

// login follows a proxy's login start through the provider and back, and
// returns the Cookie header value of the proxy's session cookies.
func login(ctx context.Context, srv *op.Server, startURL, cookiePrefix string) (string, error) {
	c := &http.Client{Jar: op.NewJar(), Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Get(startURL)
	if err != nil {
		return "", err
	}
	resp.Body.Close()
	authURL := resp.Header.Get("Location")
	if !strings.HasPrefix(authURL, srv.Issuer) {
		return "", fmt.Errorf("login start answered %d to %q, not the provider", resp.StatusCode, authURL)
	}
	cb, err := srv.Login(ctx, c, authURL, op.AliceUser, op.AlicePassword)
	if err != nil {
		return "", err
	}
	resp, err = c.Get(cb.String())
	if err != nil {
		return "", err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		return "", fmt.Errorf("callback answered %d", resp.StatusCode)
	}
	u, _ := url.Parse(startURL)
	var parts []string
	for _, ck := range c.Jar.Cookies(u) {
		if strings.HasPrefix(ck.Name, cookiePrefix) && !strings.Contains(ck.Name, "csrf") && !strings.Contains(ck.Name, "-login-") {
			parts = append(parts, ck.Name+"="+ck.Value)
		}
	}
	if len(parts) == 0 {
		return "", fmt.Errorf("no %s cookie after login", cookiePrefix)
	}
	return strings.Join(parts, "; "), nil
}

// check makes one request as wrk will and wants a 200.
func check(t target) error {
	req, _ := http.NewRequest("GET", t.url, nil)
	for _, h := range t.header {
		k, v, _ := strings.Cut(h, ": ")
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("a single request got %d: %s", resp.StatusCode, body)
	}
	return nil
}

var (
	rpsRe     = regexp.MustCompile(`Requests/sec:\s+([\d.]+)`)
	avgRe     = regexp.MustCompile(`Latency\s+(\S+)`)
	pctRe     = regexp.MustCompile(`(?m)^\s+(50|99)%\s+(\S+)`)
	non2xxRe  = regexp.MustCompile(`Non-2xx or 3xx responses:\s+(\d+)`)
	sockErrRe = regexp.MustCompile(`Socket errors:.*`)
)

// wrk loads one target: 2 threads, 32 connections, for d, on loopback.
func wrk(t target, d time.Duration) (result, error) {
	args := []string{"-t2", "-c32", "-d" + strconv.Itoa(int(d.Seconds())) + "s", "--latency"}
	for _, h := range t.header {
		args = append(args, "-H", h)
	}
	args = append(args, t.url)
	out, err := exec.Command("wrk", args...).CombinedOutput()
	if err != nil {
		return result{}, fmt.Errorf("wrk: %v: %s", err, out)
	}
	s := string(out)
	var r result
	if m := rpsRe.FindStringSubmatch(s); m != nil {
		r.rps, _ = strconv.ParseFloat(m[1], 64)
	}
	if m := avgRe.FindStringSubmatch(s); m != nil {
		r.avg = m[1]
	}
	for _, m := range pctRe.FindAllStringSubmatch(s, -1) {
		if m[1] == "50" {
			r.p50 = m[2]
		} else {
			r.p99 = m[2]
		}
	}
	r.non2xx = "0"
	if m := non2xxRe.FindStringSubmatch(s); m != nil {
		r.non2xx = m[1]
	}
	if m := sockErrRe.FindString(s); m != "" {
		r.errors = m
	}
	if r.rps == 0 {
		return r, fmt.Errorf("could not read wrk's output: %s", s)
	}
	return r, nil
}

const begin, end = "<!-- begin:compare -->", "<!-- end:compare -->"

// writeSection replaces (or appends) this benchmark's section of the file.
func writeSection(file string, ts []target, rs []result, d time.Duration) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%s\n## Standalone: bffgate serve vs oauth2-proxy\n\n", begin)
	fmt.Fprintf(&b, "`make bench-compare`, one run on %s, %d cores, loopback; wrk -t2 -c32 -d%s per target, one after another, all logged in as the same user against the same test OpenID Provider. The load generator, the proxies, the upstream and the provider share the machine's cores, so compare the ratios, not the absolute numbers.\n\n", time.Now().UTC().Format("2006-01-02"), runtime.NumCPU(), d)
	b.WriteString("| target | requests/s | vs upstream | avg latency | p50 | p99 | non-2xx |\n|---|---|---|---|---|---|---|\n")
	for i, t := range ts {
		fmt.Fprintf(&b, "| %s | %.0f | %.2f | %s | %s | %s | %s |\n", t.name, rs[i].rps, rs[i].rps/rs[0].rps, rs[i].avg, rs[i].p50, rs[i].p99, rs[i].non2xx)
	}
	fmt.Fprintf(&b, "\nbffgate / oauth2-proxy throughput: **%.2f×**. bffgate reads a server-side session (one memory-store lookup, AES-GCM unseal) and sets the bearer; oauth2-proxy decrypts its session from the cookie itself.\n%s\n", rs[1].rps/rs[2].rps, end)
	old, _ := os.ReadFile(file)
	s := string(old)
	if s == "" {
		s = "# Benchmarks\n\nEvery figure here is a ratio measured side by side in one run on this repository's machines; rerun the command named in each section to reproduce it.\n\n"
	}
	if i, j := strings.Index(s, begin), strings.Index(s, end); i >= 0 && j > i {
		s = s[:i] + b.String() + strings.TrimPrefix(s[j+len(end):], "\n")
	} else {
		s += "\n" + b.String()
	}
	return os.WriteFile(file, []byte(s), 0o644)
}
