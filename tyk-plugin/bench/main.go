// Command bench measures bffgate.so in a Tyk-like host: the same API path
// through tyk-plugin/tykhost with a no-op Go plugin hook (the baseline),
// without a hook, and with bffgate.so on the memory store, the Redis store
// and the Redis store with its read cache, side by side, with wrk on
// loopback, and writes the result to BENCHMARKS.md (its own section). It
// is what `make bench-tyk` runs, through tyk-plugin/bench.sh:
//
//	CGO_ENABLED=1 go run -trimpath -tags goplugin ./tyk-plugin/bench [-profile DIR]
//
// It builds the real bffgate.so and the no-op plugin, starts the test
// OpenID Provider (tests/op), logs alice in programmatically on each of
// bffgate's APIs, and runs wrk on every target in interleaved rounds. With
// -profile it then takes a CPU and an allocation profile of each target.
// The host runs the hooks with Tyk's contract and proxies with
// httputil.ReverseProxy, so the numbers compare the plugin's cost, not
// Tyk's.
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
	httppprof "net/http/pprof"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"github.com/bffgate/bffgate/internal/loadtest"
	"github.com/bffgate/bffgate/tests/op"
	"github.com/bffgate/bffgate/tyk-plugin/tykhost"
)

const cookieKey = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="

// profileDir is the -profile flag: where profiles go, or "" for none.
var profileDir string

func main() {
	d := flag.Duration("d", 6*time.Second, "wrk duration per target and round")
	rounds := flag.Int("rounds", 5, "wrk runs per target, interleaved; the median is reported")
	out := flag.String("out", "BENCHMARKS.md", "file to write the Tyk section to, relative to the module root")
	flag.StringVar(&profileDir, "profile", "", "after the rounds, load each target once more for -d while taking a CPU and an allocation profile of this process (the host, its plugins and the upstream), written to this folder as <API>.cpu.pprof and <API>.allocs.pprof")
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

	noop := filepath.Join(dir, "noop.so")
	log.Printf("building %s", noop)
	if err := tykhost.BuildPackage(root, tykhost.NoopPackage, noop); err != nil {
		return err
	}

	upSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"orders":[]}`)
	}))
	defer upSrv.Close()
	upstream, _ := url.Parse(upSrv.URL)

	// One host on loopback with an API per target: without a hook, with
	// the no-op hook, and with bffgate.so on each store.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	base := "http://" + l.Addr().String()

	// The Redis rows need redis-server (Debian: redis-server).
	redisAddr, redisPID, stopRedis, err := startRedis(dir)
	if err != nil {
		log.Printf("no Redis rows: %v", err)
	} else {
		defer stopRedis()
	}

	// bffgate's APIs: the memory store, and, with Redis, the Redis store
	// without and with its per-node read cache (cache_ttl_ms at its most).
	type bffAPI struct {
		prefix, store string
		redis         map[string]any
	}
	bffAPIs := []bffAPI{{prefix: "/app", store: "memory"}}
	if redisAddr != "" {
		url := "redis://" + redisAddr + "/0"
		bffAPIs = append(bffAPIs,
			bffAPI{prefix: "/redis", store: "Redis", redis: map[string]any{"url": url, "key_prefix": "bench:redis:"}},
			bffAPI{prefix: "/rcache", store: "Redis, cache_ttl_ms 1000", redis: map[string]any{"url": url, "key_prefix": "bench:rcache:", "cache_ttl_ms": 1000}})
	}
	var redirects []string
	for _, a := range bffAPIs {
		redirects = append(redirects, base+a.prefix+"/oauth/callback")
	}
	o, err := op.Start(op.Options{
		RedirectURIs: redirects,
		// Long-lived tokens: no refresh during the measurement.
		AccessTokenTTL: time.Hour,
		Stderr:         io.Discard,
	})
	if err != nil {
		return err
	}
	defer o.Close()

	var apis []any
	for _, a := range bffAPIs {
		c := map[string]any{
			"issuer": o.Issuer, "client_id": o.ClientID, "client_secret": o.ClientSecret,
			"redirect_url": base + a.prefix + "/oauth/callback",
			"cookie_keys":  []string{cookieKey},
			"cookie_name":  "__Host-bench" + strings.TrimPrefix(a.prefix, "/"),
		}
		if a.redis != nil {
			c["redis"] = a.redis
		}
		apis = append(apis, map[string]any{"listen_path": a.prefix + "/", "config": c})
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
	noopHook, err := tykhost.Load(noop, "NoOp")
	if err != nil {
		return err
	}
	// max_idle_connections_per_host as tyk-plugin/README.md recommends
	// (Tyk's default, 0, keeps 2 and would measure new connections).
	const idle = 500
	hostAPIs := []tykhost.API{
		{ListenPath: "/bare/", StripListenPath: true, Target: upstream, MaxIdleConnsPerHost: idle},
		{ListenPath: "/noop/", StripListenPath: true, Target: upstream, Pre: []tykhost.Hook{noopHook}, MaxIdleConnsPerHost: idle},
	}
	for _, a := range bffAPIs {
		hostAPIs = append(hostAPIs, tykhost.API{ListenPath: a.prefix + "/", StripListenPath: true, Target: upstream, Pre: []tykhost.Hook{hook}, MaxIdleConnsPerHost: idle})
	}
	go http.Serve(l, tykhost.New(hostAPIs...))

	// The no-op hook's API is the baseline (the first target's ratio is
	// 1.00 in the table): it gets the same headers as bffgate's memory
	// API, and forwards them upstream as they are.
	var cookies []string
	for _, a := range bffAPIs {
		c, err := loadtest.Login(context.Background(), o, base+a.prefix+"/login", "__Host-bench"+strings.TrimPrefix(a.prefix, "/"))
		if err != nil {
			return fmt.Errorf("%s: %w", a.prefix, err)
		}
		cookies = append(cookies, c)
	}
	header := []string{"Cookie: " + cookies[0], "X-CSRF: 1"}
	targets := []loadtest.Target{
		{Name: "no-op Go plugin hook", URL: base + "/noop/api/orders", Header: header},
		{Name: "no hook", URL: base + "/bare/api/orders", Header: header},
	}
	stores := []string{"—", "—"}
	for i, a := range bffAPIs {
		targets = append(targets, loadtest.Target{Name: "bffgate.so", URL: base + a.prefix + "/api/orders",
			Header: []string{"Cookie: " + cookies[i], "X-CSRF: 1"}})
		stores = append(stores, a.store)
	}
	cpu := cpuMeter(redisPID)
	for i := range targets {
		targets[i].CPU = cpu
	}
	loadBefore := loadAverage()
	results, err := loadtest.Rounds(targets, rounds, d, func(round int, t loadtest.Target) {
		log.Printf("round %d/%d: wrk %s for %s", round, rounds, t.URL, d)
	})
	if err != nil {
		return err
	}
	load := [2]string{loadBefore, loadAverage()}
	if profileDir != "" {
		if err := profile(profileDir, targets, stores, d); err != nil {
			return err
		}
	}
	file := out
	if !filepath.IsAbs(file) {
		file = filepath.Join(root, out)
	}
	if err := loadtest.WriteSection(file, "tyk", section(targets, stores, results, load, d, rounds)); err != nil {
		return err
	}
	log.Printf("wrote %s", file)
	for i, t := range targets {
		log.Printf("%-22s %-26s %6.0f req/s (%.0f–%.0f)  %6.1f µs CPU/req (%.2f)  p50 %s  p99 %s", t.Name, stores[i], results[i].RPS, results[i].Min, results[i].Max,
			float64(results[i].CPU)/float64(time.Microsecond), float64(results[0].CPU)/float64(results[i].CPU), results[i].P50, results[i].P99)
	}
	return nil
}

// cpuMeter is the CPU time used so far by this process (the host, its
// plugins, the upstream), by its children that have ended (every wrk run
// so far) and by redis-server (pid; 0 for none): every process a request
// runs through. The test provider, another child, is idle meanwhile.
func cpuMeter(pid int) func() (time.Duration, error) {
	return func() (time.Duration, error) {
		var total time.Duration
		for _, who := range []int{syscall.RUSAGE_SELF, syscall.RUSAGE_CHILDREN} {
			var ru syscall.Rusage
			if err := syscall.Getrusage(who, &ru); err != nil {
				return 0, err
			}
			total += time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
		}
		if pid != 0 {
			redis, err := loadtest.ProcessCPU(pid)
			if err != nil {
				return 0, err
			}
			total += redis
		}
		return total, nil
	}
}

// loadAverage is the machine's 1-minute load average (/proc/loadavg), or
// "unknown".
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); err == nil && len(f) > 0 {
		return f[0]
	}
	return "unknown"
}

// section is this benchmark's part of BENCHMARKS.md. The first target, the
// no-op hook, is what the others are compared with.
func section(ts []loadtest.Target, stores []string, rs []loadtest.Result, load [2]string, d time.Duration, rounds int) string {
	var b strings.Builder
	b.WriteString("## Tyk: bffgate.so in a Tyk-like host\n\n")
	fmt.Fprintf(&b, "`make bench-tyk`, one run on %s, %d cores, %s, loopback; wrk -t2 -c32 -d%s per target, %d rounds with the targets interleaved, each target's median round shown: GET /<API>/api/orders with a logged-in session cookie and `X-CSRF: 1`, proxied to a Go upstream that answers 13 bytes of JSON. The baseline is the same API with a no-op Go plugin hook (`tyk-plugin/tykhost/noop`, built as bffgate.so is): the ratio to it is what bffgate's hook adds to a request. The host is `tyk-plugin/tykhost` — Tyk's hook contract and its per-request context, in front of `httputil.ReverseProxy`, with `max_idle_connections_per_host` 500 — not a real Tyk gateway, whose own work per request is larger, so in real Tyk the same plugin costs a smaller share (see tyk-plugin/README.md, Performance). The load generator, the host, the upstream and the provider share the machine's cores, so the spread of the rounds is shown too: differences smaller than it are noise. The machine's load average (1 minute) was %s when the rounds began and %s when they ended: above the %d cores, other work was running beside the benchmark.\n\n",
		time.Now().UTC().Format("2006-01-02"), runtime.NumCPU(), runtime.Version(), d, rounds, load[0], load[1], runtime.NumCPU())
	b.WriteString("| target | store | requests/s | rounds' range | vs no-op hook | CPU per request | no-op's CPU ÷ this | avg latency | p50 | p50 vs no-op | p99 | p99 vs no-op | non-2xx |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for i, t := range ts {
		fmt.Fprintf(&b, "| %s | %s | %.0f | %.0f–%.0f | %.2f | %.1f µs | %.2f | %s | %s | %s | %s | %s | %s |\n",
			t.Name, stores[i], rs[i].RPS, rs[i].Min, rs[i].Max, rs[i].RPS/rs[0].RPS,
			float64(rs[i].CPU)/float64(time.Microsecond), float64(rs[0].CPU)/float64(rs[i].CPU), rs[i].Avg,
			rs[i].P50, loadtest.Ratio(rs[i].P50, rs[0].P50), rs[i].P99, loadtest.Ratio(rs[i].P99, rs[0].P99), rs[i].Non2xx)
	}
	b.WriteString("\nCPU per request is the CPU time every process on a request's path used during a round (this benchmark's process — the host, its plugins and the upstream —, wrk, and redis-server), divided by the requests of the round; the median round. It is a second estimate of the ratio the same cores would give with nothing else running, less tied than requests/s to how the cores were shared out during a round; both still swing with other work on the machine (it shares the cores and their caches), so compare several runs.\n")
	b.WriteString("\nWith bffgate.so each request runs the BFFGate hook: the session cookie's store lookup and AES-GCM unseal, the CSRF and Origin checks, and the header edits (Authorization set, session cookie removed). With the Redis store the lookup is one round trip to a redis-server on the same machine; with `cache_ttl_ms` a session read within the last second is served from the node's cache.\n")
	for i, t := range ts {
		if rs[i].SocketErrors != "" {
			fmt.Fprintf(&b, "\n%s (%s): wrk reported %s\n", t.Name, stores[i], rs[i].SocketErrors)
		}
	}
	return b.String()
}

// profile loads each target once more for d while taking a CPU profile
// and an allocation profile (the allocations made during the run) of
// this process, and writes them to dir as <API>.cpu.pprof and
// <API>.allocs.pprof, <API> being the target's listen path. Read them
// with `go tool pprof -top <file>`; the hook's share is what runs under
// tykhost.runHook.
func profile(dir string, targets []loadtest.Target, stores []string, d time.Duration) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for i, t := range targets {
		u, _ := url.Parse(t.URL)
		name, _, _ := strings.Cut(strings.TrimPrefix(u.Path, "/"), "/")
		log.Printf("profiling %s (%s, %s) for %s", t.URL, t.Name, stores[i], d)
		cpu, err := os.Create(filepath.Join(dir, name+".cpu.pprof"))
		if err != nil {
			return err
		}
		// The allocation profile is net/http/pprof's delta profile: the
		// allocations between its start and its end, d later.
		allocs := make(chan []byte, 1)
		go func() {
			rec := httptest.NewRecorder()
			httppprof.Handler("allocs").ServeHTTP(rec, httptest.NewRequest("GET", fmt.Sprintf("/debug/pprof/allocs?seconds=%d", int(d.Seconds())), nil))
			allocs <- rec.Body.Bytes()
		}()
		if err := pprof.StartCPUProfile(cpu); err != nil {
			cpu.Close()
			return err
		}
		res, err := loadtest.Wrk(t, d)
		pprof.StopCPUProfile()
		cpu.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", t.Name, err)
		}
		// The number of requests turns a profile's totals into costs per
		// request.
		log.Printf("profiled %s: %.0f requests", name, res.RPS*d.Seconds())
		if err := os.WriteFile(filepath.Join(dir, name+".allocs.pprof"), <-allocs, 0o644); err != nil {
			return err
		}
	}
	log.Printf("profiles in %s", dir)
	return nil
}

// startRedis runs redis-server on a free loopback port, without
// persistence, until stop is called.
func startRedis(dir string) (addr string, pid int, stop func(), err error) {
	path, err := exec.LookPath("redis-server")
	if err != nil {
		return "", 0, nil, errors.New("redis-server is not installed")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", 0, nil, err
	}
	addr = l.Addr().String()
	l.Close()
	_, port, _ := net.SplitHostPort(addr)
	cmd := exec.Command(path, "--port", port, "--bind", "127.0.0.1", "--dir", dir, "--save", "", "--appendonly", "no")
	if err := cmd.Start(); err != nil {
		return "", 0, nil, err
	}
	stop = func() {
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait()
	}
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return addr, cmd.Process.Pid, stop, nil
		}
	}
	stop()
	return "", 0, nil, fmt.Errorf("redis-server did not start on %s", addr)
}
