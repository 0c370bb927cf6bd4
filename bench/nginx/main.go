// Command nginx measures, in one run on loopback, a real nginx (Debian's)
// in front of a small API two ways: proxying straight to the API, and
// asking bffgate extauthz first (auth_request, docs/extauthz.md's nginx
// file, for a logged-in session, memory store), both on the docs'
// kept-alive upstreams. The targets are loaded
// with wrk in interleaved rounds, and the median rounds go to BENCHMARKS.md.
// `make bench-nginx` runs it; `go test ./bench/nginx` (part of make test)
// starts the same stack and checks each target once, without wrk.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime"
	"strings"
	"sync/atomic"
	"time"

	"github.com/bffgate/bffgate/core/bff"
	"github.com/bffgate/bffgate/internal/extauthz"
	"github.com/bffgate/bffgate/internal/extauthz/extauthztest"
	"github.com/bffgate/bffgate/internal/loadtest"
	"github.com/bffgate/bffgate/tests/op"
)

func main() {
	duration := flag.Duration("d", 10*time.Second, "wrk duration per target and round")
	rounds := flag.Int("rounds", 3, "rounds of all targets")
	out := flag.String("out", "BENCHMARKS.md", "the file whose nginx section is rewritten")
	shared := flag.String("note", "", "a note on the machine's load during the run, for the section")
	flag.Parse()
	st, err := start()
	if err != nil {
		log.Fatal("bench nginx: ", err)
	}
	defer st.close()
	results, err := loadtest.Rounds(st.targets, *rounds, *duration, func(round int, t loadtest.Target) {
		log.Printf("round %d/%d: wrk %s for %s", round, *rounds, t.Name, *duration)
	})
	if err != nil {
		log.Fatal("bench nginx: ", err)
	}
	for i, t := range st.targets {
		fmt.Printf("%-50s %8.0f req/s (%.0f–%.0f)  p50 %s  p99 %s\n", t.Name, results[i].RPS, results[i].Min, results[i].Max, results[i].P50, results[i].P99)
	}
	if err := loadtest.WriteSection(*out, "nginx", section(st.targets, results, *duration, *rounds, *shared)); err != nil {
		log.Fatal("bench nginx: ", err)
	}
}

// stack is what start runs: the provider, the API, bffgate extauthz and
// nginx, with a logged-in session.
type stack struct {
	targets []loadtest.Target
	bearers atomic.Int64 // API requests that carried a bearer
	plain   atomic.Int64 // API requests without one
	stop    []func()
}

func (s *stack) close() {
	for i := len(s.stop) - 1; i >= 0; i-- {
		s.stop[i]()
	}
}

func listen() (net.Listener, error) { return net.Listen("tcp", "127.0.0.1:0") }

func start() (_ *stack, err error) {
	s := &stack{}
	defer func() {
		if err != nil {
			s.close()
		}
	}()
	// The API: the smallest useful answer, counting what reached it.
	apiLn, err := listen()
	if err != nil {
		return nil, err
	}
	api := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.Header.Get("Authorization"), "Bearer ") {
			s.bearers.Add(1)
		} else {
			s.plain.Add(1)
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"ok":true}`)
	})}
	go api.Serve(apiLn)
	s.stop = append(s.stop, func() { api.Close() })

	authPort, plainPort := freePort(), freePort()
	site := fmt.Sprintf("http://127.0.0.1:%d", authPort)
	o, err := op.Start(op.Options{
		RedirectURIs: []string{site + "/oauth/callback"},
		// Long-lived tokens: the benchmark measures the request path, not refresh.
		AccessTokenTTL: time.Hour,
		Stderr:         io.Discard,
	})
	if err != nil {
		return nil, err
	}
	s.stop = append(s.stop, func() { o.Close() })

	const secret = "bench-shared-secret-0123456789"
	authz, err := extauthz.New(&extauthz.Config{Secret: secret, AccessLog: "off", Apps: []extauthz.App{{BFF: bff.Config{
		Issuer: o.Issuer, ClientID: o.ClientID, ClientSecret: o.ClientSecret,
		RedirectURL:     site + "/oauth/callback",
		CookieKeys:      []string{"MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="},
		IdentityHeaders: []bff.IdentityHeader{{Header: "X-User", Claim: "sub"}},
		Logger:          slog.New(slog.DiscardHandler),
	}}}})
	if err != nil {
		return nil, err
	}
	s.stop = append(s.stop, func() { authz.Close() })
	authzLn, err := listen()
	if err != nil {
		return nil, err
	}
	authzSrv := &http.Server{Handler: authz, ReadHeaderTimeout: 10 * time.Second}
	go authzSrv.Serve(authzLn)
	s.stop = append(s.stop, func() { authzSrv.Close() })

	dir, err := os.MkdirTemp("", "bffgate-bench-nginx")
	if err != nil {
		return nil, err
	}
	s.stop = append(s.stop, func() { os.RemoveAll(dir) })
	// One nginx, one worker, two servers: the docs' configuration, and
	// the same API proxied without auth through the docs' upstream, on
	// kept-alive connections as well.
	p, err := extauthztest.Run("nginx", authPort, extauthztest.Vars{
		Authz: authzLn.Addr().String(), API: apiLn.Addr().String(), Secret: secret,
		NginxExtra: fmt.Sprintf(`server {
    listen 127.0.0.1:%d;
    location / {
        proxy_pass http://api;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
    }
}
`, plainPort),
	}, dir)
	if err != nil {
		return nil, err
	}
	s.stop = append(s.stop, func() { p.Stop() })

	cookie, err := loadtest.Login(context.Background(), o, site+"/login", "__Host-bffgate")
	if err != nil {
		return nil, fmt.Errorf("login through nginx: %w", err)
	}
	s.targets = []loadtest.Target{
		{Name: "nginx → API (no auth)", URL: fmt.Sprintf("http://127.0.0.1:%d/api/orders", plainPort)},
		{Name: "nginx + bffgate auth_request → API (session)", URL: site + "/api/orders", Header: []string{"Cookie: " + cookie, "X-CSRF: 1"}},
	}
	return s, nil
}

func freePort() int {
	ln, err := listen()
	if err != nil {
		log.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// section is this benchmark's part of BENCHMARKS.md.
func section(ts []loadtest.Target, rs []loadtest.Result, d time.Duration, rounds int, note string) string {
	var b strings.Builder
	b.WriteString("## Forward auth: real nginx with and without bffgate's auth_request\n\n")
	fmt.Fprintf(&b, "`make bench-nginx`, one run on %s, %d cores, loopback; wrk -t2 -c32 -d%s per target, %d rounds with the targets interleaved, each target's median round shown. One nginx (Debian's, one worker) with two servers: one proxies GET /api/orders straight to a Go API that answers 11 bytes of JSON, the other is docs/extauthz.md's configuration — an `auth_request` subrequest to `bffgate extauthz` (in-process, memory store, access log off, as nginx's) for a logged-in session with `X-CSRF: 1`, then the request to the API with the bearer. Both servers proxy to the docs' `keepalive` upstreams (HTTP/1.1, `Connection \"\"`), so nginx reuses its connections to the API and to bffgate instead of opening one per request. wrk, nginx, bffgate, the API and the provider share the machine's cores: compare the ratios, and differences within a row's range are noise.",
		time.Now().UTC().Format("2006-01-02"), runtime.NumCPU(), d, rounds)
	if note != "" {
		b.WriteString(" " + note)
	}
	b.WriteString("\n\n| target | requests/s | rounds' range | vs no auth | avg latency | p50 | p50 vs no auth | p99 | p99 vs no auth | non-2xx |\n|---|---|---|---|---|---|---|---|---|---|\n")
	for i, t := range ts {
		fmt.Fprintf(&b, "| %s | %.0f | %.0f–%.0f | %.2f | %s | %s | %s | %s | %s | %s |\n", t.Name, rs[i].RPS, rs[i].Min, rs[i].Max, rs[i].RPS/rs[0].RPS,
			rs[i].Avg, rs[i].P50, loadtest.Ratio(rs[i].P50, rs[0].P50), rs[i].P99, loadtest.Ratio(rs[i].P99, rs[0].P99), rs[i].Non2xx)
	}
	b.WriteString("\nWith bffgate each request makes nginx proxy twice (the subrequest, then the API request), both on kept-alive connections, and bffgate decide (session lookup, AES-GCM unseal, CSRF and Origin checks, the allow's headers). The Go benchmark of one decision alone is `go test -run '^$' -bench Check ./internal/extauthz/` (and `./extauthz-grpc/` for a gRPC Check).\n")
	return b.String()
}
