// Command bench measures bffgate.so in a Tyk-like host: the same API path
// through tyk-plugin/tykhost without the plugin and with it, side by side,
// with wrk on loopback, and writes the result to BENCHMARKS.md (its own
// section). It is what `make bench-tyk` runs, through tyk-plugin/bench.sh:
//
//	CGO_ENABLED=1 go run -trimpath -tags goplugin ./tyk-plugin/bench
//
// It builds the real bffgate.so, starts the test OpenID Provider
// (tests/op), logs alice in programmatically, and runs wrk once per target.
// A real Tyk gateway cannot be built here; the host runs the hook with
// Tyk's contract and proxies with httputil.ReverseProxy, so the numbers
// compare the plugin's cost, not Tyk's.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/bffgate/bffgate/internal/loadtest"
	"github.com/bffgate/bffgate/tests/op"
	"github.com/bffgate/bffgate/tyk-plugin/tykhost"
)

const cookieKey = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="

func main() {
	d := flag.Duration("d", 10*time.Second, "wrk duration per target")
	rounds := flag.Int("rounds", 3, "wrk runs per target, interleaved; the median is reported")
	out := flag.String("out", "BENCHMARKS.md", "file to write the Tyk section to, relative to the module root")
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix("bench-tyk: ")
	if err := run(*d, max(*rounds, 1), *out); err != nil {
		log.Fatal(err)
	}
}

func run(d time.Duration, rounds int, out string) error {
	if _, err := exec.LookPath("wrk"); err != nil {
		return errors.New("wrk is not installed: `apt-get install wrk` (tyk-plugin/bench.sh does it)")
	}
	root, err := tykhost.ModuleRoot()
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "bffgate-bench-tyk-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	so := filepath.Join(dir, "bffgate.so")
	log.Printf("building %s", so)
	if err := tykhost.BuildPlugin(root, so); err != nil {
		return err
	}

	upSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"orders":[]}`)
	}))
	defer upSrv.Close()
	upstream, _ := url.Parse(upSrv.URL)

	// Two listeners on loopback: the host without the plugin, and with it.
	plain, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	withPlugin, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	base := "http://" + withPlugin.Addr().String()

	// The Redis store's row needs redis-server (Debian: redis-server).
	redisAddr, stopRedis, err := startRedis(dir)
	if err != nil {
		log.Printf("no Redis row: %v", err)
	} else {
		defer stopRedis()
	}

	o, err := op.Start(op.Options{
		RedirectURIs: []string{base + "/app/oauth/callback", base + "/redis/oauth/callback"},
		// Long-lived tokens: no refresh during the measurement.
		AccessTokenTTL: time.Hour,
		Stderr:         io.Discard,
	})
	if err != nil {
		return err
	}
	defer o.Close()

	api := func(prefix string, redis map[string]any) map[string]any {
		c := map[string]any{
			"issuer": o.Issuer, "client_id": o.ClientID, "client_secret": o.ClientSecret,
			"redirect_url": base + prefix + "/oauth/callback",
			"cookie_keys":  []string{cookieKey},
			"cookie_name":  "__Host-bench" + strings.TrimPrefix(prefix, "/"),
		}
		if redis != nil {
			c["redis"] = redis
		}
		return map[string]any{"listen_path": prefix + "/", "config": c}
	}
	apis := []any{api("/app", nil)}
	if redisAddr != "" {
		apis = append(apis, api("/redis", map[string]any{"url": "redis://" + redisAddr + "/0"}))
	}
	cfg, _ := json.Marshal(map[string]any{"apis": apis})
	cfgPath := filepath.Join(dir, "bffgate.json")
	if err := os.WriteFile(cfgPath, cfg, 0o600); err != nil {
		return err
	}
	os.Setenv("BFFGATE_CONFIG", cfgPath)
	hook, err := tykhost.Load(so, "BFFGate")
	if err != nil {
		return err
	}
	// The engine logs each login; keep wrk's runs quiet otherwise.
	// max_idle_connections_per_host as tyk-plugin/README.md recommends
	// (Tyk's default, 0, keeps 2 and would measure new connections).
	const idle = 500
	go http.Serve(plain, tykhost.New(tykhost.API{ListenPath: "/app/", StripListenPath: true, Target: upstream, MaxIdleConnsPerHost: idle}))
	go http.Serve(withPlugin, tykhost.New(
		tykhost.API{ListenPath: "/app/", StripListenPath: true, Target: upstream, Pre: []tykhost.Hook{hook}, MaxIdleConnsPerHost: idle},
		tykhost.API{ListenPath: "/redis/", StripListenPath: true, Target: upstream, Pre: []tykhost.Hook{hook}, MaxIdleConnsPerHost: idle},
	))

	cookie, err := loadtest.Login(context.Background(), o, base+"/app/login", "__Host-benchapp")
	if err != nil {
		return err
	}
	// The baseline gets the same headers; without the plugin they go
	// upstream as they are.
	header := []string{"Cookie: " + cookie, "X-CSRF: 1"}
	targets := []loadtest.Target{
		{Name: "host without the plugin", URL: "http://" + plain.Addr().String() + "/app/api/orders", Header: header},
		{Name: "host with bffgate.so", URL: base + "/app/api/orders", Header: header},
	}
	stores := []string{"—", "memory"}
	if redisAddr != "" {
		rc, err := loadtest.Login(context.Background(), o, base+"/redis/login", "__Host-benchredis")
		if err != nil {
			return err
		}
		targets = append(targets, loadtest.Target{Name: "host with bffgate.so", URL: base + "/redis/api/orders",
			Header: []string{"Cookie: " + rc, "X-CSRF: 1"}})
		stores = append(stores, "Redis")
	}
	results, err := loadtest.Rounds(targets, rounds, d, func(round int, t loadtest.Target) {
		log.Printf("round %d/%d: wrk %s for %s", round, rounds, t.URL, d)
	})
	if err != nil {
		return err
	}
	file := out
	if !filepath.IsAbs(file) {
		file = filepath.Join(root, out)
	}
	if err := loadtest.WriteSection(file, "tyk", section(targets, stores, results, d, rounds)); err != nil {
		return err
	}
	log.Printf("wrote %s", file)
	for i, t := range targets {
		log.Printf("%-24s %-8s %6.0f req/s (%.0f–%.0f)  p50 %s  p99 %s", t.Name, stores[i], results[i].RPS, results[i].Min, results[i].Max, results[i].P50, results[i].P99)
	}
	return nil
}

// section is this benchmark's part of BENCHMARKS.md.
func section(ts []loadtest.Target, stores []string, rs []loadtest.Result, d time.Duration, rounds int) string {
	var b strings.Builder
	b.WriteString("## Tyk: bffgate.so in a Tyk-like host\n\n")
	fmt.Fprintf(&b, "`make bench-tyk`, one run on %s, %d cores, %s, loopback; wrk -t2 -c32 -d%s per target, %d rounds with the targets interleaved, each target's median round shown: GET /app/api/orders with a logged-in session cookie and `X-CSRF: 1`, proxied to a Go upstream that answers 13 bytes of JSON. The host is `tyk-plugin/tykhost` — Tyk's hook contract in front of `httputil.ReverseProxy`, with `max_idle_connections_per_host` 500 — not a real Tyk gateway, which cannot be built here: the ratios show what the plugin adds to a request, not Tyk's own throughput. The load generator, the host, the upstream and the provider share the machine's cores, so the spread of the rounds is shown too: differences smaller than it are noise.\n\n",
		time.Now().UTC().Format("2006-01-02"), runtime.NumCPU(), runtime.Version(), d, rounds)
	b.WriteString("| target | store | requests/s | rounds' range | vs without | avg latency | p50 | p50 vs without | p99 | p99 vs without | non-2xx |\n|---|---|---|---|---|---|---|---|---|---|---|\n")
	for i, t := range ts {
		fmt.Fprintf(&b, "| %s | %s | %.0f | %.0f–%.0f | %.2f | %s | %s | %s | %s | %s | %s |\n",
			t.Name, stores[i], rs[i].RPS, rs[i].Min, rs[i].Max, rs[i].RPS/rs[0].RPS, rs[i].Avg,
			rs[i].P50, loadtest.Ratio(rs[i].P50, rs[0].P50), rs[i].P99, loadtest.Ratio(rs[i].P99, rs[0].P99), rs[i].Non2xx)
	}
	b.WriteString("\nWith the plugin each request runs the BFFGate hook: the session cookie's store lookup and AES-GCM unseal, the CSRF and Origin checks, and the header edits (Authorization set, session cookie removed). With the Redis store the lookup is one round trip to a redis-server on the same machine (no read cache).\n")
	for i, t := range ts {
		if rs[i].SocketErrors != "" {
			fmt.Fprintf(&b, "\n%s (%s): wrk reported %s\n", t.Name, stores[i], rs[i].SocketErrors)
		}
	}
	return b.String()
}

// startRedis runs redis-server on a free loopback port, without
// persistence, until stop is called.
func startRedis(dir string) (addr string, stop func(), err error) {
	path, err := exec.LookPath("redis-server")
	if err != nil {
		return "", nil, errors.New("redis-server is not installed")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	addr = l.Addr().String()
	l.Close()
	_, port, _ := net.SplitHostPort(addr)
	cmd := exec.Command(path, "--port", port, "--bind", "127.0.0.1", "--dir", dir, "--save", "", "--appendonly", "no")
	if err := cmd.Start(); err != nil {
		return "", nil, err
	}
	stop = func() {
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait()
	}
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return addr, stop, nil
		}
	}
	stop()
	return "", nil, fmt.Errorf("redis-server did not start on %s", addr)
}
