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
	"cmp"
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
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

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

// target is one thing wrk loads.
type target struct {
	name, store string
	url         string
	header      []string // wrk -H values
}

type result struct {
	rps           float64
	min, max      float64 // requests/s of the slowest and fastest round
	avg, p50, p99 string
	non2xx        string
	errors        string
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
	go http.Serve(plain, tykhost.New(tykhost.API{ListenPath: "/app/", StripListenPath: true, Target: upstream}))
	go http.Serve(withPlugin, tykhost.New(
		tykhost.API{ListenPath: "/app/", StripListenPath: true, Target: upstream, Pre: []tykhost.Hook{hook}},
		tykhost.API{ListenPath: "/redis/", StripListenPath: true, Target: upstream, Pre: []tykhost.Hook{hook}},
	))

	cookie, err := login(o, base, "/app")
	if err != nil {
		return err
	}
	// The baseline gets the same headers; without the plugin they go
	// upstream as they are.
	header := []string{"Cookie: __Host-benchapp=" + cookie, "X-CSRF: 1"}
	targets := []target{
		{"host without the plugin", "—", "http://" + plain.Addr().String() + "/app/api/orders", header},
		{"host with bffgate.so", "memory", base + "/app/api/orders", header},
	}
	if redisAddr != "" {
		rc, err := login(o, base, "/redis")
		if err != nil {
			return err
		}
		targets = append(targets, target{"host with bffgate.so", "Redis", base + "/redis/api/orders",
			[]string{"Cookie: __Host-benchredis=" + rc, "X-CSRF: 1"}})
	}
	for _, t := range targets {
		if err := check(t.url, t.header); err != nil {
			return fmt.Errorf("%s: %w", t.name, err)
		}
	}
	// Rounds interleave the targets, so a slow spell of the machine hits
	// each of them; each target's median round is reported, with the
	// spread of its rounds.
	runs := make([][]result, len(targets))
	for round := 1; round <= rounds; round++ {
		for i, t := range targets {
			log.Printf("round %d/%d: wrk %s (%s) for %s", round, rounds, t.name, t.store, d)
			r, err := wrk(t.url, t.header, d)
			if err != nil {
				return fmt.Errorf("%s: %w", t.name, err)
			}
			if r.non2xx != "0" {
				return fmt.Errorf("%s: %s responses were not 2xx: the session did not hold", t.name, r.non2xx)
			}
			runs[i] = append(runs[i], r)
		}
	}
	results := make([]result, len(targets))
	for i, rs := range runs {
		slices.SortFunc(rs, func(a, b result) int { return cmp.Compare(a.rps, b.rps) })
		results[i] = rs[len(rs)/2]
		results[i].min, results[i].max = rs[0].rps, rs[len(rs)-1].rps
	}
	file := filepath.Join(root, out)
	if err := writeSection(file, targets, results, d, rounds); err != nil {
		return err
	}
	log.Printf("wrote %s", file)
	for i, t := range targets {
		log.Printf("%-24s %-8s %6.0f req/s (%.0f–%.0f)  p50 %s  p99 %s", t.name, t.store, results[i].rps, results[i].min, results[i].max, results[i].p50, results[i].p99)
	}
	return nil
}

// login logs alice in through the plugin's API at prefix and returns the
// session cookie.
func login(o *op.Server, base, prefix string) (string, error) {
	c := &http.Client{
		Jar:           op.NewJar(),
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Timeout:       30 * time.Second,
	}
	resp, err := c.Get(base + prefix + "/login")
	if err != nil {
		return "", err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		return "", fmt.Errorf("login: %s", resp.Status)
	}
	cb, err := o.Login(context.Background(), c, resp.Header.Get("Location"), op.AliceUser, op.AlicePassword)
	if err != nil {
		return "", err
	}
	if resp, err = c.Get(cb.String()); err != nil {
		return "", err
	}
	resp.Body.Close()
	u, _ := url.Parse(base)
	for _, ck := range c.Jar.Cookies(u) {
		if ck.Name == "__Host-bench"+strings.TrimPrefix(prefix, "/") {
			return ck.Value, nil
		}
	}
	return "", fmt.Errorf("login: callback answered %s without a session cookie", resp.Status)
}

// check makes one request as wrk will and wants a 200.
func check(u string, header []string) error {
	req, _ := http.NewRequest("GET", u, nil)
	for _, h := range header {
		name, value, _ := strings.Cut(h, ": ")
		req.Header.Set(name, value)
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

// wrk loads u: 2 threads, 32 connections, for d.
func wrk(u string, header []string, d time.Duration) (result, error) {
	args := []string{"-t2", "-c32", "-d" + strconv.Itoa(int(d.Seconds())) + "s", "--latency"}
	for _, h := range header {
		args = append(args, "-H", h)
	}
	ctx, cancel := context.WithTimeout(context.Background(), d+30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "wrk", append(args, u)...).CombinedOutput()
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
	r.errors = sockErrRe.FindString(s)
	if r.rps == 0 {
		return r, fmt.Errorf("could not read wrk's output: %s", s)
	}
	return r, nil
}

// latency reads one of wrk's durations ("812.00us", "3.50ms", "1.02s").
func latency(s string) time.Duration {
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0
	}
	return d
}

func ratio(x, y time.Duration) string {
	if x == 0 || y == 0 {
		return "—"
	}
	return fmt.Sprintf("%.2f×", float64(x)/float64(y))
}

const begin, end = "<!-- begin:tyk -->", "<!-- end:tyk -->"

// writeSection replaces (or appends) this benchmark's section of file.
func writeSection(file string, ts []target, rs []result, d time.Duration, rounds int) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%s\n## Tyk: bffgate.so in a Tyk-like host\n\n", begin)
	fmt.Fprintf(&b, "`make bench-tyk`, one run on %s, %d cores, %s, loopback; wrk -t2 -c32 -d%s per target, %d rounds with the targets interleaved, each target's median round shown: GET /app/api/orders with a logged-in session cookie and `X-CSRF: 1`, proxied to a Go upstream that answers 13 bytes of JSON. The host is `tyk-plugin/tykhost` — Tyk's hook contract in front of `httputil.ReverseProxy` — not a real Tyk gateway, which cannot be built here: the ratios show what the plugin adds to a request, not Tyk's own throughput. The load generator, the host, the upstream and the provider share the machine's cores, so the spread of the rounds is shown too: differences smaller than it are noise.\n\n",
		time.Now().UTC().Format("2006-01-02"), runtime.NumCPU(), runtime.Version(), d, rounds)
	b.WriteString("| target | store | requests/s | rounds' range | vs without | avg latency | p50 | p50 vs without | p99 | p99 vs without | non-2xx |\n|---|---|---|---|---|---|---|---|---|---|---|\n")
	for i, t := range ts {
		fmt.Fprintf(&b, "| %s | %s | %.0f | %.0f–%.0f | %.2f | %s | %s | %s | %s | %s | %s |\n",
			t.name, t.store, rs[i].rps, rs[i].min, rs[i].max, rs[i].rps/rs[0].rps, rs[i].avg,
			rs[i].p50, ratio(latency(rs[i].p50), latency(rs[0].p50)), rs[i].p99, ratio(latency(rs[i].p99), latency(rs[0].p99)), rs[i].non2xx)
	}
	b.WriteString("\nWith the plugin each request runs the BFFGate hook: the session cookie's store lookup and AES-GCM unseal, the CSRF and Origin checks, and the header edits (Authorization set, session cookie removed). With the Redis store the lookup is one round trip to a redis-server on the same machine (no read cache).\n")
	for i, t := range ts {
		if rs[i].errors != "" {
			fmt.Fprintf(&b, "\n%s: wrk reported %s\n", t.name, rs[i].errors)
		}
	}
	b.WriteString(end + "\n")
	old, _ := os.ReadFile(file)
	s := string(old)
	if s == "" {
		s = "# Benchmarks\n\nEvery figure here is a ratio measured side by side in one run on this repository's machines; rerun the command named in each section to reproduce it.\n"
	}
	if i, j := strings.Index(s, begin), strings.Index(s, end); i >= 0 && j > i {
		s = s[:i] + b.String() + strings.TrimPrefix(s[j+len(end):], "\n")
	} else {
		s = strings.TrimRight(s, "\n") + "\n\n" + b.String()
	}
	return os.WriteFile(file, []byte(s), 0o644)
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
