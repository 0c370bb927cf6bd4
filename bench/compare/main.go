// Command compare measures, in one run on loopback, an authenticated API
// request side by side: straight to the upstream; through a bare Go
// httputil.ReverseProxy with bffgate's transport settings and no
// authentication (the limit for any Go BFF); through `bffgate serve` with
// the memory store, with the Redis store, and with the Redis store and its
// read cache; and through oauth2-proxy
// v7.8.1 with its Redis session store and with cookie sessions, all logged
// in against the same real OpenID Provider. It writes requests per second,
// latency and the ratios to BENCHMARKS.md. `make bench-compare` builds both
// binaries and runs it; TestSmoke runs it for a second per target in `make
// test`, so it does not rot.
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
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/bffgate/bffgate/core/session"
	"github.com/bffgate/bffgate/core/session/redisstore"
	"github.com/bffgate/bffgate/core/session/sessiontest"
	"github.com/bffgate/bffgate/internal/loadtest"
	"github.com/bffgate/bffgate/internal/serve"
	"github.com/bffgate/bffgate/tests/op"
	"golang.org/x/sync/errgroup"
)

func main() {
	bffgate := flag.String("bffgate", "bin/bffgate", "the bffgate binary")
	o2p := flag.String("oauth2-proxy", "bin/oauth2-proxy", "the oauth2-proxy binary")
	duration := flag.Duration("d", 10*time.Second, "wrk duration per target and round")
	rounds := flag.Int("rounds", 3, "rounds of all targets")
	out := flag.String("out", "BENCHMARKS.md", "the file whose compare section is rewritten")
	redisURL := flag.String("redis", "redis://127.0.0.1:6379/0", "the Redis both Redis-backed proxies use")
	scaleList := flag.String("scale", "1,1000,100000", "live session counts for the scale section (empty: none)")
	stormN := flag.Int("storm", 1000, "sessions whose tokens expire at once in the storm section (0: none)")
	flag.Parse()
	bareProxyChild()
	if err := run(options{bffgate: *bffgate, oauth2Proxy: *o2p, d: *duration, rounds: *rounds, out: *out, redis: *redisURL, scale: counts(*scaleList), storm: *stormN}); err != nil {
		log.Fatal("compare: ", err)
	}
}

// options are one run's settings; an empty oauth2Proxy leaves its rows out.
type options struct {
	bffgate, oauth2Proxy string
	d                    time.Duration
	rounds               int
	out, redis           string
	scale                []int // live session counts of the scale section
	storm                int   // sessions refreshing at once in the storm section
}

// counts parses "1,1000,100000".
func counts(list string) []int {
	var out []int
	for _, f := range strings.Split(list, ",") {
		if n, err := strconv.Atoi(strings.TrimSpace(f)); err == nil && n > 0 {
			out = append(out, n)
		}
	}
	return out
}

// bareEnv, set in a child process of this program (or of its test),
// holds "listen-address upstream-URL": that process is the bare proxy.
const bareEnv = "BFFGATE_COMPARE_BARE_PROXY"

// bareToken is the bare proxy's bearer: 43 characters, the length of the
// test provider's opaque access tokens.
const bareToken = "bare-proxy-token-0123456789abcdefghijklmnop"

// bareProxyChild serves the bare proxy, never returning, when this
// process was started as it.
func bareProxyChild() {
	if v := os.Getenv(bareEnv); v != "" {
		addr, upstream, _ := strings.Cut(v, " ")
		log.Fatal(bareProxy(addr, upstream))
	}
}

// bareProxy is the baseline every Go BFF is measured against:
// httputil.ReverseProxy with the transport and copy buffers of bffgate
// serve (serve.NewTransport, serve.BufferPool) and net/http's server, no authentication. It runs
// in a process of its own, as the proxies it is compared with do.
func bareProxy(addr, upstream string) error {
	u, err := url.Parse(upstream)
	if err != nil {
		return err
	}
	proxy := &httputil.ReverseProxy{
		Rewrite:    func(pr *httputil.ProxyRequest) { pr.SetURL(u); pr.SetXForwarded() },
		Transport:  serve.NewTransport(serve.Limits{}),
		BufferPool: serve.BufferPool,
	}
	srv := &http.Server{Addr: addr, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// What any BFF does to a request, without deciding anything: the
		// browser's cookie off, a bearer as long as the test provider's
		// opaque access tokens on.
		r.Header.Del("Cookie")
		r.Header.Set("Authorization", "Bearer "+bareToken)
		proxy.ServeHTTP(w, r)
	}), ReadHeaderTimeout: 10 * time.Second}
	return srv.ListenAndServe()
}

func run(o options) error {
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

	bareAddr, bffAddr, bffRedisAddr, bffCacheAddr, o2pAddr, o2pRedisAddr := freeAddr(), freeAddr(), freeAddr(), freeAddr(), freeAddr(), freeAddr()
	srv, err := op.Start(op.Options{
		RedirectURIs: []string{
			"http://" + bffAddr + "/oauth/callback", "http://" + bffRedisAddr + "/oauth/callback", "http://" + bffCacheAddr + "/oauth/callback",
			"http://" + o2pAddr + "/oauth2/callback", "http://" + o2pRedisAddr + "/oauth2/callback",
		},
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
	// Both bffgate processes log nothing per request, as oauth2-proxy is
	// told to: the comparison is of the request path.
	config := func(addr string, redis map[string]any) (string, error) {
		bc := map[string]any{
			"issuer": srv.Issuer, "client_id": srv.ClientID, "client_secret": srv.ClientSecret,
			"redirect_url": "http://" + addr + "/oauth/callback",
			"cookie_keys":  []string{"MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="},
		}
		if redis != nil {
			bc["redis"] = redis
		}
		data, _ := json.Marshal(map[string]any{"listen": addr, "access_log": "off", "bff": bc,
			"routes": []map[string]any{{"path": "/", "upstream": upURL}}})
		file := filepath.Join(dir, strings.ReplaceAll(addr, ":", "_")+".json")
		return file, os.WriteFile(file, data, 0o600)
	}
	prefix := fmt.Sprintf("bffgate-bench-%d:", time.Now().UnixNano())
	memCfg, err := config(bffAddr, nil)
	if err != nil {
		return err
	}
	redisCfg, err := config(bffRedisAddr, map[string]any{"url": o.redis, "key_prefix": prefix})
	if err != nil {
		return err
	}
	// The same store with its per-node read cache at the most it allows
	// (docs/config.md, redis.cache_ttl_ms): the trade-off that buys.
	cacheCfg, err := config(bffCacheAddr, map[string]any{"url": o.redis, "key_prefix": prefix, "cache_ttl_ms": 1000})
	if err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	pid := map[string]int{} // each proxy's process, by its address
	launch := func(addr string, env []string, bin string, args ...string) {
		p := startEnv(env, bin, args...)
		stop, pid[addr] = append(stop, p.stop), p.pid
	}
	launch(bareAddr, []string{bareEnv + "=" + bareAddr + " " + upURL}, self)
	launch(bffAddr, nil, o.bffgate, "serve", "-config", memCfg)
	launch(bffRedisAddr, nil, o.bffgate, "serve", "-config", redisCfg)
	launch(bffCacheAddr, nil, o.bffgate, "serve", "-config", cacheCfg)
	addrs := []string{bareAddr, bffAddr, bffRedisAddr, bffCacheAddr}
	if o.oauth2Proxy != "" {
		o2p := func(addr string, extra ...string) {
			launch(addr, nil, o.oauth2Proxy, append([]string{
				"--http-address=" + addr, "--provider=oidc", "--oidc-issuer-url=" + srv.Issuer,
				"--client-id=" + srv.ClientID, "--client-secret=" + srv.ClientSecret,
				"--redirect-url=http://" + addr + "/oauth2/callback", "--upstream=" + upURL,
				"--cookie-secret=0123456789abcdef0123456789abcdef", "--cookie-secure=false",
				"--email-domain=*", "--code-challenge-method=S256", "--skip-provider-button=true",
				"--pass-access-token=true", "--scope=openid profile email offline_access",
				"--request-logging=false", "--auth-logging=false", "--standard-logging=false"}, extra...)...)
		}
		o2p(o2pAddr)
		o2p(o2pRedisAddr, "--session-store-type=redis", "--redis-connection-url="+o.redis)
		addrs = append(addrs, o2pAddr, o2pRedisAddr)
	}
	for _, a := range addrs {
		if err := waitListening(a); err != nil {
			return err
		}
	}

	login := func(addr string) (string, error) {
		return loadtest.Login(ctx, srv, "http://"+addr+"/login", "__Host-bffgate")
	}
	bffCookie, err := login(bffAddr)
	if err != nil {
		return fmt.Errorf("bffgate login: %w", err)
	}
	bffRedisCookie, err := login(bffRedisAddr)
	if err != nil {
		return fmt.Errorf("bffgate (Redis) login: %w", err)
	}
	bffCacheCookie, err := login(bffCacheAddr)
	if err != nil {
		return fmt.Errorf("bffgate (Redis, cache) login: %w", err)
	}
	targets := []loadtest.Target{
		{Name: "upstream directly (no auth)", URL: upURL + "/api/orders?direct=1"},
		// The same request as bffgate's, which the bare proxy forwards as
		// a BFF would, less the session: cookie off, a bearer on.
		{Name: "bare Go reverse proxy (no auth)", URL: "http://" + bareAddr + "/api/orders", Header: []string{"Cookie: " + bffCookie, "X-CSRF: 1"}, CPU: cpuOf(pid[bareAddr])},
		{Name: "bffgate serve (memory store)", URL: "http://" + bffAddr + "/api/orders", Header: []string{"Cookie: " + bffCookie, "X-CSRF: 1"}, CPU: cpuOf(pid[bffAddr])},
		{Name: "bffgate serve (Redis store)", URL: "http://" + bffRedisAddr + "/api/orders", Header: []string{"Cookie: " + bffRedisCookie, "X-CSRF: 1"}, CPU: cpuOf(pid[bffRedisAddr])},
		{Name: "bffgate serve (Redis store, cache_ttl_ms 1000)", URL: "http://" + bffCacheAddr + "/api/orders", Header: []string{"Cookie: " + bffCacheCookie, "X-CSRF: 1"}, CPU: cpuOf(pid[bffCacheAddr])},
	}
	if o.oauth2Proxy != "" {
		for _, p := range []struct{ name, addr string }{
			{"oauth2-proxy v7.8.1 (Redis session store)", o2pRedisAddr},
			{"oauth2-proxy v7.8.1 (cookie session)", o2pAddr},
		} {
			cookie, err := loadtest.Login(ctx, srv, "http://"+p.addr+"/oauth2/start?rd=%2F", "_oauth2_proxy")
			if err != nil {
				return fmt.Errorf("%s login: %w", p.name, err)
			}
			targets = append(targets, loadtest.Target{Name: p.name, URL: "http://" + p.addr + "/api/orders", Header: []string{"Cookie: " + cookie}, CPU: cpuOf(pid[p.addr])})
		}
	}
	results, err := loadtest.Rounds(targets, o.rounds, o.d, func(round int, t loadtest.Target) {
		log.Printf("round %d/%d: wrk %s for %s", round, o.rounds, t.Name, o.d)
	})
	if err != nil {
		return err
	}
	for i, t := range targets {
		fmt.Printf("%-40s %10.0f req/s (%.0f–%.0f)  p50 %s  p99 %s\n", t.Name, results[i].RPS, results[i].Min, results[i].Max, results[i].P50, results[i].P99)
	}
	if err := loadtest.WriteSection(o.out, "compare", section(targets, results, o.d, o.rounds)); err != nil {
		return err
	}
	if len(o.scale) == 0 {
		return nil
	}
	store, err := redisstore.New(redisstore.Config{URL: o.redis, KeyPrefix: prefix})
	if err != nil {
		return err
	}
	defer store.Close()
	if err := scale(ctx, o, store, srv.Issuer, "http://"+bffRedisAddr+"/api/orders", dir); err != nil {
		return err
	}
	return storm(ctx, o, store, srv, "http://"+bffRedisAddr, dir)
}

// storm logs o.storm users in through bffgate's Redis target, then makes
// every one of their access tokens expire at once (the sessions are
// rewritten with a past expiry, as a provider's short token lifetime would
// leave them) and loads them all, each request the next session's cookie:
// the first request of each session refreshes its tokens at the real
// provider, the others wait for it or use the result. It measures
// requests/s during the storm beside the same load right after it, and
// counts the refresh grants: one per session is the goal.
func storm(ctx context.Context, o options, store *redisstore.Store, srv *op.Server, base, dir string) error {
	if o.storm <= 0 {
		return nil
	}
	cookies := make([]string, o.storm)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for i := range cookies {
		g.Go(func() (err error) {
			cookies[i], err = loadtest.Login(gctx, srv, base+"/login", "__Host-bffgate")
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return fmt.Errorf("storm logins: %w", err)
	}
	m := &session.Manager{Store: store, Idle: time.Hour, Max: 24 * time.Hour}
	for _, c := range cookies {
		id, err := session.ParseID(strings.TrimPrefix(c, "__Host-bffgate="))
		if err != nil {
			return err
		}
		s, err := m.Load(ctx, id, false)
		if err != nil {
			return err
		}
		s.Expiry = time.Now().Add(-time.Second)
		if err := m.Save(ctx, id, s); err != nil {
			return err
		}
	}
	before, err := srv.Stats(ctx)
	if err != nil {
		return err
	}
	script, err := loadtest.CookieScript(dir, cookies, []string{"X-CSRF: 1"})
	if err != nil {
		return err
	}
	// Check's single request would refresh one session before the storm:
	// the storm target is loaded without it.
	during, err := loadtest.Wrk(loadtest.Target{URL: base + "/api/orders", Script: script}, o.d)
	if err != nil {
		return err
	}
	after, err := srv.Stats(ctx)
	if err != nil {
		return err
	}
	refreshes := after.Grants["refresh_token"] - before.Grants["refresh_token"]
	steady, err := loadtest.Wrk(loadtest.Target{URL: base + "/api/orders", Script: script}, o.d)
	if err != nil {
		return err
	}
	for _, r := range []loadtest.Result{during, steady} {
		if r.Non2xx != "0" {
			return fmt.Errorf("storm: %s answers were not 2xx", r.Non2xx)
		}
	}
	var b strings.Builder
	b.WriteString("## Standalone: a refresh storm\n\n")
	fmt.Fprintf(&b, "`make bench-compare`, the same run: %d users logged in through bffgate serve's Redis target at the real test provider, then every session's access token made to expire at once, then wrk -d%s over all of them in turn (each request the next session's cookie), then the same load again once they are fresh.\n\n", o.storm, o.d)
	b.WriteString("| load | requests/s | vs after | p50 | p99 | non-2xx |\n|---|---|---|---|---|---|\n")
	fmt.Fprintf(&b, "| while %d sessions refresh | %.0f | %.2f | %s | %s | %s |\n", o.storm, during.RPS, during.RPS/steady.RPS, during.P50, during.P99, during.Non2xx)
	fmt.Fprintf(&b, "| right after, all fresh | %.0f | 1.00 | %s | %s | %s |\n", steady.RPS, steady.P50, steady.P99, steady.Non2xx)
	fmt.Fprintf(&b, "\nRefresh grants at the provider during the storm: **%d** for %d sessions (one each is the goal: bffgate refreshes a session once, under its lock, and every other request of that session waits for the result).\n", refreshes, o.storm)
	log.Printf("storm: %d refreshes for %d sessions; %.0f req/s during, %.0f after", refreshes, o.storm, during.RPS, steady.RPS)
	if refreshes != o.storm {
		return fmt.Errorf("storm: %d refresh grants for %d sessions, want one each", refreshes, o.storm)
	}
	return loadtest.WriteSection(o.out, "storm", b.String())
}

// scale loads bffgate's Redis target with 1, 1,000, 100,000 (o.scale)
// live sessions, each request carrying the next session's cookie in turn
// (a wrk script), so that what a bigger session population costs shows:
// the goal is flat. The sessions are planted in the store as a login
// would leave them, and deleted afterwards.
func scale(ctx context.Context, o options, store *redisstore.Store, issuer, url, dir string) error {
	var cookies []string
	defer func() {
		for _, c := range cookies {
			if id, err := session.ParseID(strings.TrimPrefix(c, "__Host-bffgate=")); err == nil {
				_ = store.Delete(ctx, id.StoreKey())
			}
		}
	}()
	var targets []loadtest.Target
	var results []loadtest.Result
	for _, n := range o.scale {
		planted, err := plant(ctx, store, issuer, n-len(cookies))
		if err != nil {
			return err
		}
		cookies = append(cookies, planted...)
		script, err := loadtest.CookieScript(dir, cookies, []string{"X-CSRF: 1"})
		if err != nil {
			return err
		}
		t := loadtest.Target{Name: fmt.Sprintf("%d live sessions", n), URL: url, Script: script,
			Header: []string{"Cookie: " + cookies[0], "X-CSRF: 1"}}
		r, err := loadtest.Rounds([]loadtest.Target{t}, o.rounds, o.d, func(round int, t loadtest.Target) {
			log.Printf("scale round %d/%d: wrk %s for %s", round, o.rounds, t.Name, o.d)
		})
		if err != nil {
			return err
		}
		targets, results = append(targets, t), append(results, r[0])
	}
	var b strings.Builder
	b.WriteString("## Standalone: bffgate serve with many live sessions in Redis\n\n")
	fmt.Fprintf(&b, "`make bench-compare`, the same run, bffgate serve's Redis target: each request carries the next of N live sessions' cookies in turn (a wrk script), N growing from row to row (the sessions are planted in Redis as a login leaves them: %d rounds of -d%s per N, one N after the other, so the machine's drift between rows is not averaged out as in the table above).\n\n", o.rounds, o.d)
	b.WriteString("| live sessions | requests/s | rounds' range | vs the first row | p50 | p99 | non-2xx |\n|---|---|---|---|---|---|---|\n")
	for i, t := range targets {
		fmt.Fprintf(&b, "| %s | %.0f | %.0f–%.0f | %.2f | %s | %s | %s |\n", strings.TrimSuffix(t.Name, " live sessions"), results[i].RPS, results[i].Min, results[i].Max, results[i].RPS/results[0].RPS, results[i].P50, results[i].P99, results[i].Non2xx)
	}
	return loadtest.WriteSection(o.out, "scale", b.String())
}

// plant puts n sessions in store, 32 at a time, and returns their Cookie
// header values.
func plant(ctx context.Context, store session.Store, issuer string, n int) ([]string, error) {
	out := make([]string, n)
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(32)
	for i := range out {
		g.Go(func() error {
			v, err := sessiontest.Plant(ctx, store, issuer, fmt.Sprintf("user%d", i), "access-token")
			out[i] = "__Host-bffgate=" + v
			return err
		})
	}
	return out, g.Wait()
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
// cpuOf is a target's CPU meter: the process pid's.
func cpuOf(pid int) func() (time.Duration, error) {
	return func() (time.Duration, error) { return loadtest.ProcessCPU(pid) }
}

// proc is a process startEnv started: its PID, and how to stop it.
type proc struct {
	pid  int
	stop func()
}

// startEnv starts bin with args and these environment variables added.
func startEnv(env []string, bin string, args ...string) proc {
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = io.Discard, os.Stderr
	if err := cmd.Start(); err != nil {
		log.Fatalf("compare: start %s: %v (run `make bench-compare`, which builds it)", bin, err)
	}
	return proc{pid: cmd.Process.Pid, stop: func() {
		cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
		}
	}}
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
	rps := map[string]float64{}
	for i, t := range ts {
		rps[t.Name] = rs[i].RPS
	}
	bare := rps["bare Go reverse proxy (no auth)"]
	bareCPU := rs[1].CPU // the targets' order is run's
	var b strings.Builder
	b.WriteString("## Standalone: bffgate serve vs a bare Go proxy vs oauth2-proxy\n\n")
	fmt.Fprintf(&b, "`make bench-compare`, one run on %s, %d cores, loopback; wrk -t2 -c32 -d%s per target, %d rounds with the targets interleaved, each target's median round shown, all logged in as the same user against the same test OpenID Provider; every proxy in a process of its own, none logging per request. The bare Go reverse proxy is `httputil.ReverseProxy` with bffgate's transport settings and copy buffers (`serve.NewTransport`, `serve.BufferPool`) and no authentication: the limit for a BFF written in Go. It gets the same request as bffgate (the session cookie and `X-CSRF: 1`) and forwards it as a BFF does, cookie removed and a bearer of the provider's token length set, without looking at either. The proxy CPU per request is the proxy process's own user and system time over a round divided by its requests (`/proc/<pid>/stat`), the median of the rounds: it hardly depends on how the cores were shared, so it is the steadier figure of what a proxy costs. `cache_ttl_ms 1000` is the Redis store with its per-node read cache at its most (docs/config.md: a session ended through another node may be served by this one for up to that long). The load generator, the proxies, the upstream, Redis and the provider share the machine's cores, so compare the ratios, not the absolute numbers; differences within a row's range are noise.\n\n",
		time.Now().UTC().Format("2006-01-02"), runtime.NumCPU(), d, rounds)
	b.WriteString("| target | requests/s | rounds' range | vs upstream | vs bare Go proxy | avg latency | p50 | p99 | non-2xx | proxy CPU per request | vs bare Go proxy |\n|---|---|---|---|---|---|---|---|---|---|---|\n")
	for i, t := range ts {
		cpu, cpuRatio := "—", "—"
		if rs[i].CPU > 0 {
			cpu = fmt.Sprintf("%.1f µs", float64(rs[i].CPU)/float64(time.Microsecond))
			if bareCPU > 0 {
				cpuRatio = fmt.Sprintf("%.2f×", float64(rs[i].CPU)/float64(bareCPU))
			}
		}
		fmt.Fprintf(&b, "| %s | %.0f | %.0f–%.0f | %.2f | %.2f | %s | %s | %s | %s | %s | %s |\n", t.Name, rs[i].RPS, rs[i].Min, rs[i].Max, rs[i].RPS/rs[0].RPS, rs[i].RPS/bare, rs[i].Avg, rs[i].P50, rs[i].P99, rs[i].Non2xx, cpu, cpuRatio)
	}
	ratio := func(x, y string) string {
		if rps[x] == 0 || rps[y] == 0 {
			return "—"
		}
		return fmt.Sprintf("%.2f×", rps[x]/rps[y])
	}
	cpu := map[string]time.Duration{}
	for i, t := range ts {
		cpu[t.Name] = rs[i].CPU
	}
	cpuRatio := func(x, y string) string {
		if cpu[x] == 0 || cpu[y] == 0 {
			return "—"
		}
		return fmt.Sprintf("%.2f×", float64(cpu[x])/float64(cpu[y]))
	}
	fmt.Fprintf(&b, "\nLike for like: bffgate / oauth2-proxy with both keeping sessions in Redis **%s** (%s with bffgate's read cache); with bffgate's memory store and oauth2-proxy's cookie sessions **%s**. In CPU per request, oauth2-proxy with Redis spends %s what bffgate with Redis does. bffgate reads a server-side session (one store lookup, AES-GCM unseal) and sets the bearer; oauth2-proxy with cookies decrypts its session from the cookie itself.\n",
		ratio("bffgate serve (Redis store)", "oauth2-proxy v7.8.1 (Redis session store)"),
		ratio("bffgate serve (Redis store, cache_ttl_ms 1000)", "oauth2-proxy v7.8.1 (Redis session store)"),
		ratio("bffgate serve (memory store)", "oauth2-proxy v7.8.1 (cookie session)"),
		cpuRatio("oauth2-proxy v7.8.1 (Redis session store)", "bffgate serve (Redis store)"))
	return b.String()
}
