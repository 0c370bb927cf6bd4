// Package extauthztest runs a REAL nginx (auth_request) or a REAL Caddy
// (reverse_proxy with handle_response, as forward_auth is built) —
// Debian's packages — on loopback, configured with the nginx file (its
// upstreams and server block) and the Caddyfile site of docs/extauthz.md,
// in front of an echo API that records what reached it. The tests of
// bffgate extauthz (internal/extauthz) and the browser test
// (tests/browser) share it. It does not import package
// extauthz, so that package's own tests can use it: the caller starts
// bffgate extauthz and names its address.
package extauthztest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"text/template"
	"time"

	"github.com/bffgate/bffgate/tests/flowtest"
	"github.com/bffgate/bffgate/tests/op"
)

// API is the upstream: the echo API of tests/op, recording every request
// that reached it and its body.
type API struct {
	URL string // http://127.0.0.1:<port>

	mu     sync.Mutex // guards reqs, bodies
	reqs   []*http.Request
	bodies []string
	conns  atomic.Int64 // connections accepted
}

// StartAPI starts the echo API until the test ends; provider returns the
// OP it asks about bearer tokens (nil: none yet).
func StartAPI(t testing.TB, provider func() *op.Server) *API {
	t.Helper()
	a := &API{}
	echo := op.EchoAPI(provider)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		a.mu.Lock()
		a.reqs = append(a.reqs, r.Clone(context.Background()))
		a.bodies = append(a.bodies, string(body))
		a.mu.Unlock()
		echo.ServeHTTP(w, r)
	}))
	srv.Config.ConnState = CountConns(&a.conns)
	srv.Start()
	t.Cleanup(srv.Close)
	a.URL = srv.URL
	return a
}

// Count is the number of requests that reached the API.
func (a *API) Count() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.reqs)
}

// Requests are the requests that reached the API, oldest first.
func (a *API) Requests() []*http.Request {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]*http.Request(nil), a.reqs...)
}

// Conns is the number of connections the API has accepted: a proxy that
// keeps its connections to the API open opens few.
func (a *API) Conns() int64 { return a.conns.Load() }

// CountConns is an http.Server's ConnState hook that counts the
// connections it accepts in n.
func CountConns(n *atomic.Int64) func(net.Conn, http.ConnState) {
	return func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			n.Add(1)
		}
	}
}

// LastBody is the body of the last request that reached the API.
func (a *API) LastBody() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.bodies) == 0 {
		return ""
	}
	return a.bodies[len(a.bodies)-1]
}

// FreePort returns a port free on 127.0.0.1 right now.
func FreePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// HostOf is the host:port of a URL such as an httptest server's.
func HostOf(u string) string {
	_, h, _ := strings.Cut(u, "://")
	h, _, _ = strings.Cut(h, "/")
	return h
}

// Vars fill the configuration templates.
type Vars struct {
	Listen string // nginx's listen address, host:port
	Site   string // Caddy's site address, e.g. http://127.0.0.1:<port>
	Authz  string // bffgate extauthz, host:port
	API    string // the upstream, host:port
	Secret string // the shared secret the proxy sends to bffgate
	// Identity are the identity headers the proxy copies from the allow.
	// Defaults to X-User.
	Identity []string
	// Static, when set, is a directory of SPA files the proxy serves
	// itself, without asking bffgate, at / (index.html for unknown
	// paths); then only /api/ asks bffgate.
	Static string
	// NginxExtra is more of nginx's http block, after the server block
	// (another server, for a benchmark's baseline).
	NginxExtra string
	Dir        string // the proxy's working directory (Run sets it)
	// Root is set (by Run) when the tests run as root: nginx's workers
	// would then run as nobody, who may not reach the checkout's files
	// (a checkout under a private directory, as mktemp -d makes), so
	// they stay root.
	Root bool
}

var funcs = template.FuncMap{
	// nginxVar is the variable suffix of a header: X-User → x_user.
	"nginxVar": func(h string) string { return strings.ToLower(strings.ReplaceAll(h, "-", "_")) },
}

// Render fills a configuration template.
func Render(tmpl string, v Vars) (string, error) {
	if len(v.Identity) == 0 {
		v.Identity = []string{"X-User"}
	}
	var buf bytes.Buffer
	if err := template.Must(template.New("").Funcs(funcs).Parse(tmpl)).Execute(&buf, v); err != nil {
		return "", err
	}
	return buf.String(), nil
}

// Start runs the proxy named "nginx" or "caddy" on port (NginxTestConfig
// or CaddyTestConfig; Listen and Site are set from port) until the test
// ends.
func Start(t testing.TB, proxy string, port int, v Vars) {
	t.Helper()
	p, err := Run(proxy, port, v, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		out := p.Stop()
		if t.Failed() {
			t.Logf("%s output:\n%s", proxy, out)
		}
	})
}

// Proxy is a running proxy.
type Proxy struct {
	name string
	dir  string
	cmd  *exec.Cmd
	out  *flowtest.SyncBuffer
	done chan struct{}
}

// Run starts the proxy named "nginx" or "caddy" on port, its files in
// dir, and waits until it accepts connections (at most 15 s). Listen and
// Site are set from port.
func Run(proxy string, port int, v Vars, dir string) (*Proxy, error) {
	v.Listen = fmt.Sprintf("127.0.0.1:%d", port)
	v.Site = fmt.Sprintf("http://127.0.0.1:%d", port)
	v.Dir = dir
	v.Root = os.Geteuid() == 0
	var tmpl string
	var args []string
	conf := filepath.Join(dir, proxy+".conf")
	switch proxy {
	case "nginx":
		tmpl, args = NginxTestConfig, []string{"-p", dir, "-c", conf, "-e", filepath.Join(dir, "error.log")}
	case "caddy":
		tmpl, args = CaddyTestConfig, []string{"run", "--config", conf, "--adapter", "caddyfile"}
	default:
		return nil, fmt.Errorf("extauthztest: no proxy %q", proxy)
	}
	bin, err := exec.LookPath(proxy)
	if err != nil {
		// Debian installs nginx in /usr/sbin, which a user's PATH may lack.
		if bin, err = exec.LookPath(filepath.Join("/usr/sbin", proxy)); err != nil {
			return nil, fmt.Errorf("%s is not installed: run scripts/deps.sh debs (make test does)", proxy)
		}
	}
	text, err := Render(tmpl, v)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
		return nil, err
	}
	p := &Proxy{name: proxy, dir: dir, out: &flowtest.SyncBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Env = append(os.Environ(), "HOME="+dir, "XDG_CONFIG_HOME="+dir, "XDG_DATA_HOME="+dir)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		return nil, err
	}
	go func() { p.cmd.Wait(); close(p.done) }()
	deadline := time.Now().Add(15 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", v.Listen, time.Second)
		if err == nil {
			c.Close()
			return p, nil
		}
		select {
		case <-p.done:
			return nil, fmt.Errorf("%s exited: %s", proxy, p.out.String())
		default:
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("%s does not listen on %d: %s", proxy, port, p.Stop())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Stop ends the proxy (SIGTERM, then SIGKILL after 5 s) and returns what
// it wrote, with nginx's error.log.
func (p *Proxy) Stop() string {
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
	}
	out := p.out.String()
	if b, err := os.ReadFile(filepath.Join(p.dir, "error.log")); err == nil && len(b) > 0 {
		out += "\nerror.log:\n" + string(b)
	}
	return out
}

// NginxServer is docs/extauthz.md's nginx configuration, the upstream
// blocks and the server block, for nginx's http context (extauthz's
// TestDocs holds the doc to it). The upstreams are named bffgate and api.
const NginxServer = `# bffgate and the API as upstreams whose connections stay open between
# requests (keepalive: the idle ones each worker keeps). Every location
# that proxies to them needs HTTP/1.1 and an empty Connection header.
upstream bffgate {
    server {{.Authz}};
    keepalive 32;
}

upstream api {
    server {{.API}};
    keepalive 32;
}

server {
    listen {{.Listen}};

    # The BFF's own endpoints go to bffgate directly.
    location ~ ^/(login|oauth/callback|session|token|logout|logout/callback|backchannel-logout|sessions(/[^/]+)?)$ {
        proxy_pass http://bffgate;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_set_header Host $http_host;
        proxy_set_header X-Forwarded-Proto $scheme;
        proxy_set_header X-Bffgate-Secret "{{.Secret}}";
    }
{{- if .Static}}

    # The SPA's files, public.
    location / {
        root {{.Static}};
        try_files $uri /index.html;
    }

    # The API asks bffgate first.
    location /api/ {
{{- else}}

    # Everything else asks bffgate first.
    location / {
{{- end}}
        auth_request /_bffgate/auth;
        auth_request_set $bff_authorization $upstream_http_authorization;
        auth_request_set $bff_cookie $upstream_http_cookie;
{{- range .Identity}}
        auth_request_set $bff_{{nginxVar .}} $upstream_http_{{nginxVar .}};
{{- end}}
        # Replaced, or removed when bffgate sent none (an empty value).
        proxy_set_header Authorization $bff_authorization;
        proxy_set_header Cookie $bff_cookie;
{{- range .Identity}}
        proxy_set_header {{.}} $bff_{{nginxVar .}};
{{- end}}
        # A refusal: bffgate answers the request itself, with its own
        # status, headers and JSON body.
        error_page 401 403 500 = @bffgate;
        proxy_pass http://api;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
    }

    location = /_bffgate/auth {
        internal;
        proxy_pass http://bffgate/_bffgate/nginx;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_pass_request_body off;
        proxy_set_header Content-Length "";
        proxy_set_header X-Original-URI $request_uri;
        proxy_set_header X-Original-Method $request_method;
        proxy_set_header Host $http_host;
        proxy_set_header X-Forwarded-Proto $scheme;
        proxy_set_header X-Bffgate-Secret "{{.Secret}}";
    }

    location @bffgate {
        proxy_pass http://bffgate;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_set_header Host $http_host;
        proxy_set_header X-Forwarded-Proto $scheme;
        proxy_set_header X-Bffgate-Secret "{{.Secret}}";
    }
}
`

// NginxTestConfig makes NginxServer a complete file for a test: files in
// the test's directory, the MIME types an SPA needs.
const NginxTestConfig = `daemon off;
{{- if .Root}}
user root;
{{- end}}
worker_processes 1;
pid {{.Dir}}/nginx.pid;
error_log {{.Dir}}/error.log warn;
events { worker_connections 256; }
http {
access_log off;
types { text/html html; text/css css; application/javascript js mjs; image/svg+xml svg; image/png png; }
client_body_temp_path {{.Dir}}/body;
proxy_temp_path {{.Dir}}/proxy;
fastcgi_temp_path {{.Dir}}/fastcgi;
uwsgi_temp_path {{.Dir}}/uwsgi;
scgi_temp_path {{.Dir}}/scgi;
` + NginxServer + `{{.NginxExtra}}}
`

// CaddySite is the site block of docs/extauthz.md's Caddyfile.
const CaddySite = `{{.Site}} {
	# The BFF's own endpoints go to bffgate directly.
	@bff path /login /oauth/callback /session /token /logout /logout/callback /backchannel-logout /sessions /sessions/*
	handle @bff {
		reverse_proxy {{.Authz}} {
			header_up X-Bffgate-Secret "{{.Secret}}"
		}
	}
{{- if .Static}}

	# The SPA's files, public.
	handle {
		root * {{.Static}}
		try_files {path} /index.html
		file_server
	}

	# The API asks bffgate first: forward_auth spelled out, so that each
	# header bffgate manages is replaced, also by nothing.
	handle /api/* {
{{- else}}

	# Everything else asks bffgate first: forward_auth spelled out, so
	# that each header bffgate manages is replaced, also by nothing.
	handle {
{{- end}}
		reverse_proxy {{.Authz}} {
			method GET
			rewrite /_bffgate/forward
			header_up X-Forwarded-Method {method}
			header_up X-Forwarded-Uri {uri}
			header_up X-Bffgate-Secret "{{.Secret}}"
			@allowed status 2xx
			handle_response @allowed {
				request_header Authorization {http.reverse_proxy.header.Authorization}
				request_header Cookie {http.reverse_proxy.header.Cookie}
{{- range .Identity}}
				request_header {{.}} {http.reverse_proxy.header.{{.}}}
{{- end}}
				reverse_proxy {{.API}}
			}
		}
	}
}
`

// CaddyTestConfig makes CaddySite a complete Caddyfile for a test.
const CaddyTestConfig = `{
	admin off
	auto_https off
}

` + CaddySite
