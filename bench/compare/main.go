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
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/bffgate/bffgate/internal/loadtest"
	"github.com/bffgate/bffgate/tests/op"
)

func main() {
	bffgate := flag.String("bffgate", "bin/bffgate", "the bffgate binary")
	o2p := flag.String("oauth2-proxy", "bin/oauth2-proxy", "the oauth2-proxy binary")
	duration := flag.Duration("d", 10*time.Second, "wrk duration per target and round")
	rounds := flag.Int("rounds", 3, "rounds of all targets")
	out := flag.String("out", "BENCHMARKS.md", "the file whose compare section is rewritten")
	flag.Parse()
	if err := run(*bffgate, *o2p, *duration, *rounds, *out); err != nil {
		log.Fatal("compare: ", err)
	}
}

func run(bffgateBin, o2pBin string, d time.Duration, rounds int, outFile string) error {
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

	bffCookie, err := loadtest.Login(ctx, srv, "http://"+bffAddr+"/login", "__Host-bffgate")
	if err != nil {
		return fmt.Errorf("bffgate login: %w", err)
	}
	o2pCookie, err := loadtest.Login(ctx, srv, "http://"+o2pAddr+"/oauth2/start?rd=%2F", "_oauth2_proxy")
	if err != nil {
		return fmt.Errorf("oauth2-proxy login: %w", err)
	}
	targets := []loadtest.Target{
		{Name: "upstream directly (no auth)", URL: upURL + "/api/orders?direct=1"},
		{Name: "bffgate serve (memory store)", URL: "http://" + bffAddr + "/api/orders", Header: []string{"Cookie: " + bffCookie, "X-CSRF: 1"}},
		{Name: "oauth2-proxy v7.8.1 (cookie session)", URL: "http://" + o2pAddr + "/api/orders", Header: []string{"Cookie: " + o2pCookie}},
	}
	results, err := loadtest.Rounds(targets, rounds, d, func(round int, t loadtest.Target) {
		log.Printf("round %d/%d: wrk %s for %s", round, rounds, t.Name, d)
	})
	if err != nil {
		return err
	}
	for i, t := range targets {
		fmt.Printf("%-40s %10.0f req/s (%.0f–%.0f)  p50 %s  p99 %s\n", t.Name, results[i].RPS, results[i].Min, results[i].Max, results[i].P50, results[i].P99)
	}
	return loadtest.WriteSection(outFile, "compare", section(targets, results, d, rounds))
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

// section is this benchmark's part of BENCHMARKS.md.
func section(ts []loadtest.Target, rs []loadtest.Result, d time.Duration, rounds int) string {
	var b strings.Builder
	b.WriteString("## Standalone: bffgate serve vs oauth2-proxy\n\n")
	fmt.Fprintf(&b, "`make bench-compare`, one run on %s, %d cores, loopback; wrk -t2 -c32 -d%s per target, %d rounds with the targets interleaved, each target's median round shown, all logged in as the same user against the same test OpenID Provider. The load generator, the proxies, the upstream and the provider share the machine's cores, so compare the ratios, not the absolute numbers; differences within a row's range are noise.\n\n",
		time.Now().UTC().Format("2006-01-02"), runtime.NumCPU(), d, rounds)
	b.WriteString("| target | requests/s | rounds' range | vs upstream | avg latency | p50 | p99 | non-2xx |\n|---|---|---|---|---|---|---|---|\n")
	for i, t := range ts {
		fmt.Fprintf(&b, "| %s | %.0f | %.0f–%.0f | %.2f | %s | %s | %s | %s |\n", t.Name, rs[i].RPS, rs[i].Min, rs[i].Max, rs[i].RPS/rs[0].RPS, rs[i].Avg, rs[i].P50, rs[i].P99, rs[i].Non2xx)
	}
	fmt.Fprintf(&b, "\nbffgate / oauth2-proxy throughput: **%.2f×**. bffgate reads a server-side session (one memory-store lookup, AES-GCM unseal) and sets the bearer; oauth2-proxy decrypts its session from the cookie itself.\n", rs[1].RPS/rs[2].RPS)
	return b.String()
}
