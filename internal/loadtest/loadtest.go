// Package loadtest is what the repository's load benchmarks share
// (`make bench-compare`, `make bench-tyk`): logging in at the test
// OpenID Provider through a proxy, loading targets with wrk on loopback in
// interleaved rounds, and rewriting one section of BENCHMARKS.md.
package loadtest

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/bffgate/bffgate/tests/op"
)

// Target is one URL to load, with the headers wrk sends ("Name: value").
type Target struct {
	Name   string
	URL    string
	Header []string
	// Script, when set, is a wrk Lua script (wrk -s) that makes the
	// requests, e.g. one per session from a list (CookieScript); Header
	// is then what the first request of Check sends.
	Script string
	// CPU, when set, reads the CPU time used so far by the processes
	// that serve the target (ProcessCPU for one): Wrk reports their CPU
	// time per request. Unlike requests/s, that hardly depends on how the
	// machine's cores were shared between the load generator and
	// everything else during the round.
	CPU func() (time.Duration, error)
}

// CookieScript writes a wrk script to dir that sends each request with
// the next of cookies (Cookie header values), in turn, plus header
// ("Name: value" pairs), and returns its path.
func CookieScript(dir string, cookies, header []string) (string, error) {
	list := filepath.Join(dir, "cookies.txt")
	if err := os.WriteFile(list, []byte(strings.Join(cookies, "\n")+"\n"), 0o600); err != nil {
		return "", err
	}
	var b strings.Builder
	b.WriteString("local cookies = {}\n")
	fmt.Fprintf(&b, "for line in io.lines(%q) do cookies[#cookies + 1] = line end\n", list)
	b.WriteString("local headers = {}\n")
	for _, h := range header {
		name, value, _ := strings.Cut(h, ": ")
		fmt.Fprintf(&b, "headers[%q] = %q\n", name, value)
	}
	// Each wrk thread has its own Lua state: start the threads apart.
	b.WriteString("local i = math.random(#cookies)\n")
	b.WriteString("request = function()\n  i = i % #cookies + 1\n  headers[\"Cookie\"] = cookies[i]\n  return wrk.format(nil, nil, headers)\nend\n")
	script := filepath.Join(dir, "cookies.lua")
	return script, os.WriteFile(script, []byte(b.String()), 0o600)
}

// Result is what wrk measured for a target: the median round, and the
// range of requests/s over all rounds.
type Result struct {
	RPS, Min, Max float64
	Avg, P50, P99 string // wrk's durations, e.g. "3.50ms"
	Non2xx        string
	SocketErrors  string // wrk's line, "" when none
	// CPU is Target.CPU's growth per request in that round (0 without
	// Target.CPU); from Rounds, the median of the rounds'.
	CPU time.Duration
}

// Login follows a proxy's login start URL through the provider (as alice)
// and back, and returns the Cookie header value of the cookies whose names
// start with cookiePrefix.
func Login(ctx context.Context, o *op.Server, startURL, cookiePrefix string) (string, error) {
	c := &http.Client{Jar: op.NewJar(), Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Get(startURL)
	if err != nil {
		return "", err
	}
	resp.Body.Close()
	authURL := resp.Header.Get("Location")
	if !strings.HasPrefix(authURL, o.Issuer) {
		return "", fmt.Errorf("login start answered %d to %q, not the provider", resp.StatusCode, authURL)
	}
	cb, err := o.Login(ctx, c, authURL, op.AliceUser, op.AlicePassword)
	if err != nil {
		return "", err
	}
	if resp, err = c.Get(cb.String()); err != nil {
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

// Check makes one request as wrk will and wants a 200.
func Check(t Target) error {
	req, err := http.NewRequest("GET", t.URL, nil)
	if err != nil {
		return err
	}
	for _, h := range t.Header {
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

// Rounds checks every target, then loads each for d in rounds that
// interleave the targets, so a slow spell of the machine hits all of them;
// it returns each target's median round with the range of its rounds.
// progress, if not nil, is told before each run.
func Rounds(targets []Target, rounds int, d time.Duration, progress func(round int, t Target)) ([]Result, error) {
	for _, t := range targets {
		if err := Check(t); err != nil {
			return nil, fmt.Errorf("%s: %w", t.Name, err)
		}
	}
	runs := make([][]Result, len(targets))
	for round := 1; round <= rounds; round++ {
		for i, t := range targets {
			if progress != nil {
				progress(round, t)
			}
			r, err := Wrk(t, d)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", t.Name, err)
			}
			if r.Non2xx != "0" {
				return nil, fmt.Errorf("%s: %s responses were not 2xx: the session did not hold", t.Name, r.Non2xx)
			}
			runs[i] = append(runs[i], r)
		}
	}
	out := make([]Result, len(targets))
	for i, rs := range runs {
		cpus := make([]time.Duration, len(rs))
		for j, r := range rs {
			cpus[j] = r.CPU
		}
		slices.Sort(cpus)
		slices.SortFunc(rs, func(a, b Result) int { return cmp.Compare(a.RPS, b.RPS) })
		out[i] = rs[len(rs)/2]
		out[i].Min, out[i].Max = rs[0].RPS, rs[len(rs)-1].RPS
		out[i].CPU = cpus[len(cpus)/2]
	}
	return out, nil
}

var (
	rpsRe     = regexp.MustCompile(`Requests/sec:\s+([\d.]+)`)
	avgRe     = regexp.MustCompile(`Latency\s+(\S+)`)
	pctRe     = regexp.MustCompile(`(?m)^\s+(50|99)%\s+(\S+)`)
	non2xxRe  = regexp.MustCompile(`Non-2xx or 3xx responses:\s+(\d+)`)
	sockErrRe = regexp.MustCompile(`Socket errors:.*`)
	countRe   = regexp.MustCompile(`(\d+) requests in `)
)

// ProcessCPU is the user and system CPU time process pid has used, from
// /proc/<pid>/stat (fields 14 and 15, in USER_HZ ticks: 100 a second on
// Linux, whatever the kernel's own tick).
func ProcessCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("the CPU time of process %d: %w", pid, err)
	}
	// The command name (field 2) is in parentheses and may hold spaces:
	// count fields after its closing one.
	i := strings.LastIndexByte(string(b), ')')
	var f []string
	if i >= 0 {
		f = strings.Fields(string(b[i+1:])) // f[0] is field 3
	}
	if len(f) < 13 {
		return 0, fmt.Errorf("the CPU time of process %d: /proc/%d/stat is %q", pid, pid, b)
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("the CPU time of process %d: /proc/%d/stat is %q", pid, pid, b)
	}
	return time.Duration(utime+stime) * (time.Second / 100), nil
}

// Wrk loads one target once: 2 threads, 32 connections, for d, bounded by
// d plus 30 s.
func Wrk(t Target, d time.Duration) (Result, error) {
	args := []string{"-t2", "-c32", "-d" + strconv.Itoa(int(d.Seconds())) + "s", "--latency"}
	for _, h := range t.Header {
		args = append(args, "-H", h)
	}
	if t.Script != "" {
		args = append(args, "-s", t.Script)
	}
	ctx, cancel := context.WithTimeout(context.Background(), d+30*time.Second)
	defer cancel()
	var cpu0 time.Duration
	if t.CPU != nil {
		var err error
		if cpu0, err = t.CPU(); err != nil {
			return Result{}, err
		}
	}
	out, err := exec.CommandContext(ctx, "wrk", append(args, t.URL)...).CombinedOutput()
	if err != nil {
		return Result{}, fmt.Errorf("wrk: %v: %s", err, out)
	}
	s := string(out)
	r := Result{Non2xx: "0", SocketErrors: sockErrRe.FindString(s)}
	if t.CPU != nil {
		cpu1, err := t.CPU()
		if err != nil {
			return Result{}, err
		}
		if m := countRe.FindStringSubmatch(s); m != nil {
			if n, _ := strconv.Atoi(m[1]); n > 0 {
				r.CPU = (cpu1 - cpu0) / time.Duration(n)
			}
		}
	}
	if m := rpsRe.FindStringSubmatch(s); m != nil {
		r.RPS, _ = strconv.ParseFloat(m[1], 64)
	}
	if m := avgRe.FindStringSubmatch(s); m != nil {
		r.Avg = m[1]
	}
	for _, m := range pctRe.FindAllStringSubmatch(s, -1) {
		if m[1] == "50" {
			r.P50 = m[2]
		} else {
			r.P99 = m[2]
		}
	}
	if m := non2xxRe.FindStringSubmatch(s); m != nil {
		r.Non2xx = m[1]
	}
	if r.RPS == 0 {
		return r, fmt.Errorf("could not read wrk's output: %s", s)
	}
	r.Min, r.Max = r.RPS, r.RPS
	return r, nil
}

// Ratio is x/y of two of wrk's durations ("812.00us", "3.50ms"), or "—".
func Ratio(x, y string) string {
	dx, errx := time.ParseDuration(x)
	dy, erry := time.ParseDuration(y)
	if errx != nil || erry != nil || dx == 0 || dy == 0 {
		return "—"
	}
	return fmt.Sprintf("%.2f×", float64(dx)/float64(dy))
}

// WriteSection replaces the section called name in file, between the
// markers <!-- begin:name --> and <!-- end:name -->, or appends it; the
// file is created with a heading if missing. body is the section's text
// without the markers.
func WriteSection(file, name, body string) error {
	begin, end := "<!-- begin:"+name+" -->", "<!-- end:"+name+" -->"
	section := begin + "\n" + strings.TrimRight(body, "\n") + "\n" + end + "\n"
	old, err := os.ReadFile(file)
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	s := string(old)
	if s == "" {
		s = "# Benchmarks\n\nEvery figure here is a ratio measured side by side in one run on this repository's machines; rerun the command named in each section to reproduce it.\n"
	}
	if i, j := strings.Index(s, begin), strings.Index(s, end); i >= 0 && j > i {
		s = s[:i] + section + strings.TrimPrefix(s[j+len(end):], "\n")
	} else {
		s = strings.TrimRight(s, "\n") + "\n\n" + section
	}
	return os.WriteFile(file, []byte(s), 0o644)
}
