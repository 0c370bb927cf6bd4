package main

// BenchmarkKong measures the plugin server's own work per request through
// Kong's socket protocol (bffgate's own plugin server, as main runs it),
// side by side with the floor of every Go plugin: an empty go-pdk plugin
// (Access does nothing) served by go-pdk's server. Kong
// itself cannot run here; the fake Kong of binary_test.go drives both
// servers over their unix sockets with the connection handling of Kong
// 3.9's pb_rpc.lua: a bounded loopback load of benchConns requests per
// CPU in flight, each on its own connection, b.N requests in all.
//
// Both servers are this test binary, started again as a plugin server
// (TestMain serves instead of testing when benchServeEnv is set): one
// build, the same flags and toolchain for bffgate and the floor, and the
// server can count its own CPU time and allocations between two marks
// (SIGUSR1), which the benchmark takes around its timed loop. Profiles of
// the measured requests: -kong.profile=DIR writes DIR/<server>.cpu.pprof
// (from the first mark to the second) and DIR/<server>.allocs0.pprof and
// .allocs1.pprof (at each mark; pprof -base the first). Each pair of
// marks overwrites the server's profiles, so profile one request kind
// per run:
//
//	go test -v -run '^$' -bench Kong -benchtime 20000x ./kong-plugin/
//	go test -run '^$' -bench 'Kong/(floor|api)$' -benchtime 20000x ./kong-plugin/ -kong.profile=/tmp/p
//
// Reported per request: server-ns/op (the plugin server's CPU time, user
// and system, from getrusage), server-allocs/op and server-B/op (Go heap
// allocations), pdk-calls/op, pdk-round-trips/op and pdk-bytes/op (both
// directions). ns/op is the wall time of the whole round trip, fake Kong
// included.

import (
	"bufio"
	"flag"
	"fmt"
	"log"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/Kong/go-pdk"
	"github.com/Kong/go-pdk/server"

	"github.com/bffgate/bffgate/core/session/redisstore"
	"github.com/bffgate/bffgate/internal/version"
)

// benchServeEnv names the server TestMain runs instead of the tests:
// "bffgate" (this plugin, as main runs it) or "floor" (an empty plugin).
const benchServeEnv = "BFFGATE_KONG_BENCH_SERVE"

// benchProfileEnv, in a bench server's environment, is the file name
// prefix of the profiles it writes between its marks.
const benchProfileEnv = "BFFGATE_KONG_BENCH_PROFILE"

var profileDir = flag.String("kong.profile", "", "BenchmarkKong: write CPU and allocs profiles of the plugin servers to this `directory`")

// floorPlugin is the empty go-pdk plugin.
type floorPlugin struct{}

// Access does nothing: Kong forwards the request as it came.
func (*floorPlugin) Access(*pdk.PDK) {}

// benchServe runs the named plugin server until it is killed: bffgate's
// own, as main runs it, or go-pdk's with the empty plugin.
func benchServe(which string) {
	flag.Parse() // -kong-prefix, as main
	redisstore.LogTo(slog.New(slog.NewTextHandler(os.Stderr, nil)))
	go benchMarks(os.Getenv(benchProfileEnv))
	var err error
	if which == "floor" {
		err = server.StartServer(func() any { return &floorPlugin{} }, version.Version, Priority)
	} else {
		err = listenAndServe(flag.Lookup("kong-prefix").Value.String())
	}
	if err != nil {
		log.Fatalf("bench server: %v", err)
	}
}

// benchMarks answers every SIGUSR1 with a line on stdout, "bench-stats
// <mark> <cpu ns> <mallocs> <bytes allocated>", counted since the process
// started. With a profile prefix, the CPU profile runs from the first mark
// to the second and the allocs profile is written at both.
func benchMarks(profile string) {
	marks := make(chan os.Signal, 1)
	signal.Notify(marks, syscall.SIGUSR1)
	var cpuProfile *os.File
	for n := 0; ; n++ {
		<-marks
		if cpuProfile != nil {
			pprof.StopCPUProfile()
			cpuProfile.Close()
			cpuProfile = nil
		}
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		var ru syscall.Rusage
		_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
		if profile != "" {
			if f, err := os.Create(fmt.Sprintf("%s.allocs%d.pprof", profile, n%2)); err == nil {
				_ = pprof.Lookup("allocs").WriteTo(f, 0)
				f.Close()
			}
			if n%2 == 0 {
				if f, err := os.Create(profile + ".cpu.pprof"); err == nil && pprof.StartCPUProfile(f) == nil {
					cpuProfile = f
				}
			}
		}
		// Last: the benchmark may stop the server once it has the line.
		fmt.Printf("bench-stats %d %d %d %d\n", n, ru.Utime.Nano()+ru.Stime.Nano(), ms.Mallocs, ms.TotalAlloc)
	}
}

// benchStats is what a bench server reported at a mark.
type benchStats struct{ cpu, mallocs, bytes int64 }

// benchServer is a running bench server and the fake Kong that talks to it.
type benchServer struct {
	name  string
	ps    *pluginServer
	k     *fakeKong
	id    int32 // the plugin instance
	marks int
}

func startBenchServer(b *testing.B, which string, config map[string]any) *benchServer {
	b.Helper()
	exe, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	env := []string{benchServeEnv + "=" + which}
	if *profileDir != "" {
		env = append(env, benchProfileEnv+"="+filepath.Join(*profileDir, which))
	}
	s := &benchServer{name: which, ps: startServer(b, exe, env)}
	s.k = &fakeKong{t: b, sock: s.ps.sock}
	b.Cleanup(s.k.close)
	s.id = s.k.startInstance(config)
	return s
}

// mark asks the server for its counts.
func (s *benchServer) mark(b *testing.B) benchStats {
	b.Helper()
	n := s.marks
	s.marks++
	if err := s.ps.cmd.Process.Signal(syscall.SIGUSR1); err != nil {
		b.Fatal(err)
	}
	prefix := fmt.Sprintf("bench-stats %d ", n)
	if !s.ps.logs(prefix, 10*time.Second) {
		b.Fatalf("%s server did not answer mark %d:\n%s", s.name, n, s.ps.out)
	}
	sc := bufio.NewScanner(strings.NewReader(s.ps.out.String()))
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), prefix); ok {
			var st benchStats
			if _, err := fmt.Sscan(rest, &st.cpu, &st.mallocs, &st.bytes); err != nil {
				b.Fatalf("mark line %q: %v", sc.Text(), err)
			}
			return st
		}
	}
	b.Fatalf("no line %q", prefix)
	return benchStats{}
}

// benchRequest is the request a benchmark repeats.
type benchRequest struct {
	method, target string
	header         http.Header
	forwarded      bool // the plugin lets it go upstream (else it answers)
}

// browserHeaders are the headers of a browser's fetch() to the app's API.
func browserHeaders(cookie string) http.Header {
	h := http.Header{
		"Host":            {"app.example.test"},
		"User-Agent":      {"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"},
		"Accept":          {"application/json"},
		"Accept-Encoding": {"gzip, deflate, br, zstd"},
		"Accept-Language": {"en-GB,en;q=0.9"},
		"Referer":         {"https://app.example.test/orders"},
		"Sec-Fetch-Dest":  {"empty"},
		"Sec-Fetch-Mode":  {"cors"},
		"Sec-Fetch-Site":  {"same-origin"},
		"X-Csrf":          {"1"},
	}
	if cookie != "" {
		h.Set("Cookie", cookie)
	}
	return h
}

// benchConns is how many requests the fake Kong has in flight at once
// (each on its own connection, as Kong's workers have), per CPU.
const benchConns = 4

// run times b.N requests, benchConns × GOMAXPROCS at a time, and reports
// the server's counts per request.
func (s *benchServer) run(b *testing.B, r benchRequest) benchStats {
	b.Helper()
	// Warm up: the engine built, connections pooled, the check below.
	for range 50 {
		if a := s.k.access(s.id, r.method, r.target, r.header, nil); a.exited == r.forwarded {
			b.Fatalf("%s %s: exited %v, status %d %s; want forwarded %v", r.method, r.target, a.exited, a.status, a.body, r.forwarded)
		}
	}
	start := s.mark(b)
	var calls, trips, bytes atomic.Int64
	b.SetParallelism(benchConns)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		k := &fakeKong{t: b, sock: s.ps.sock}
		defer k.close()
		var n, rt, size int
		for pb.Next() {
			a := k.access(s.id, r.method, r.target, r.header, nil)
			n += len(a.calls)
			rt += a.roundTrips
			size += a.toKong + a.fromKong
		}
		calls.Add(int64(n))
		trips.Add(int64(rt))
		bytes.Add(int64(size))
	})
	b.StopTimer()
	end := s.mark(b)
	n := float64(b.N)
	per := benchStats{cpu: end.cpu - start.cpu, mallocs: end.mallocs - start.mallocs, bytes: end.bytes - start.bytes}
	b.ReportMetric(float64(per.cpu)/n, "server-ns/op")
	b.ReportMetric(float64(per.mallocs)/n, "server-allocs/op")
	b.ReportMetric(float64(per.bytes)/n, "server-B/op")
	b.ReportMetric(float64(calls.Load())/n, "pdk-calls/op")
	b.ReportMetric(float64(trips.Load())/n, "pdk-round-trips/op")
	b.ReportMetric(float64(bytes.Load())/n, "pdk-bytes/op")
	return per
}

func BenchmarkKong(b *testing.B) {
	srv := provider(b)
	floor := startBenchServer(b, "floor", map[string]any{"__seq__": 1, "__key__": "plugins:floor:route-1::::ws-1"})
	bff := startBenchServer(b, "bffgate", kongConfig(b, map[string]any{
		"issuer": srv.Issuer, "client_id": srv.ClientID, "client_secret": srv.ClientSecret,
		"redirect_url":     appOrigin + "/oauth/callback",
		"cookie_keys":      []string{cookieKey},
		"public_paths":     []string{"/public/"},
		"identity_headers": []map[string]any{{"header": "X-User", "claim": "sub"}},
	}))
	// A session, logged in through the server (the OP's tokens last 60 s,
	// refreshed 30 s before they expire; each benchmark logs in again).
	session := func(b *testing.B) string {
		br := newBrowser(b, viaKong(bff.k, bff.id))
		br.login("/")
		return "theme=dark; __Host-bffgate=" + br.sessionCookie()
	}
	cpu := map[string]float64{}
	for _, tt := range []struct {
		name    string
		s       *benchServer
		session bool
		req     benchRequest
	}{
		{"floor", floor, false, benchRequest{"GET", appOrigin + "/api/orders?page=2", nil, true}},
		{"api", bff, true, benchRequest{"GET", appOrigin + "/api/orders?page=2", nil, true}},
		{"public", bff, false, benchRequest{"GET", appOrigin + "/public/app.js", nil, true}},
		{"refused", bff, false, benchRequest{"GET", appOrigin + "/api/orders?page=2", nil, false}},
		{"session", bff, true, benchRequest{"GET", appOrigin + "/session", nil, false}},
	} {
		b.Run(tt.name, func(b *testing.B) {
			cookie := ""
			if tt.session {
				cookie = session(b)
			}
			r := tt.req
			r.header = browserHeaders(cookie)
			per := tt.s.run(b, r)
			cpu[tt.name] = float64(per.cpu) / float64(b.N)
		})
	}
	if cpu["floor"] > 0 && cpu["api"] > 0 {
		b.Logf("plugin server CPU per authenticated API request: bffgate %.0f ns, empty go-pdk plugin %.0f ns: %.2f× the floor",
			cpu["api"], cpu["floor"], cpu["api"]/cpu["floor"])
	}
}
