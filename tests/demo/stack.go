// Package demo starts the demo stack: the test OpenID Provider, a small API
// that shows what it received, and bffgate serve in front of both and of
// the demo SPA. `make demo` runs it for people; the browser tests run it
// for Chromium.
package demo

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/bffgate/bffgate/core/bff"
	"github.com/bffgate/bffgate/core/session"
	"github.com/bffgate/bffgate/internal/serve"
	"github.com/bffgate/bffgate/tests/op"
)

// Options configure the stack.
type Options struct {
	// Addr is where bffgate listens. Defaults to "127.0.0.1:0" (a free
	// port).
	Addr string
	// Mode is the BFF mode. Defaults to token-mediating, so the demo can
	// show both ways of calling an API.
	Mode string
	// StaticDir is the built SPA. Defaults to sdk-js/demo/dist in this
	// repository.
	StaticDir string
	// AccessTokenTTL is the provider's access token lifetime. Defaults to
	// 60 s.
	AccessTokenTTL time.Duration
	// Logs receives the provider's and bffgate's logs. nil discards them.
	Logs io.Writer
	// Host is the host name in the stack's URL. Defaults to the listen
	// address's IP. The demo uses "localhost", so the provider's cookies
	// (on 127.0.0.1; cookies ignore ports) never reach the API.
	Host string
	// Store keeps the sessions. Defaults to the memory store.
	Store session.Store
	// HTTPClient makes bffgate's calls to the provider. Defaults to
	// bffgate's own.
	HTTPClient *http.Client
}

// Stack is the running demo.
type Stack struct {
	URL string // the SPA and the BFF, same origin
	OP  *op.Server
	API string // the echo API's own URL

	srv  *http.Server
	api  *http.Server
	done []func()
}

// RepoDir is the repository's root directory.
func RepoDir() string { return op.RepoDir() }

// Start starts the stack; Close stops all of it.
func Start(o Options) (_ *Stack, err error) {
	if o.Addr == "" {
		o.Addr = "127.0.0.1:0"
	}
	if o.Mode == "" {
		o.Mode = bff.ModeTokenMediating
	}
	if o.StaticDir == "" {
		o.StaticDir = filepath.Join(RepoDir(), "sdk-js", "demo", "dist")
	}
	if o.Logs == nil {
		o.Logs = io.Discard
	}
	if _, err := os.Stat(filepath.Join(o.StaticDir, "index.html")); err != nil {
		return nil, fmt.Errorf("the demo SPA is not built (%s has no index.html): run `make demo` or `npm --prefix sdk-js run build:demo`", o.StaticDir)
	}
	s := &Stack{}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	ln, err := net.Listen("tcp", o.Addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", o.Addr, err)
	}
	s.URL = "http://" + ln.Addr().String()
	if o.Host != "" {
		s.URL = "http://" + net.JoinHostPort(o.Host, strconv.Itoa(ln.Addr().(*net.TCPAddr).Port))
	}
	s.done = append(s.done, func() { ln.Close() })

	s.OP, err = op.Start(op.Options{
		RedirectURIs:           []string{s.URL + "/oauth/callback"},
		PostLogoutRedirectURIs: []string{s.URL + "/logout/callback"},
		BackchannelLogoutURI:   s.URL + "/backchannel-logout",
		AccessTokenTTL:         o.AccessTokenTTL,
		Stderr:                 o.Logs,
	})
	if err != nil {
		return nil, err
	}
	s.done = append(s.done, func() { s.OP.Close() })

	apiLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s.API = "http://" + apiLn.Addr().String()
	s.api = &http.Server{Handler: op.EchoAPI(func() *op.Server { return s.OP }), ReadHeaderTimeout: 5 * time.Second}
	go s.api.Serve(apiLn)
	s.done = append(s.done, func() { s.api.Close() })

	cfg := &serve.Config{
		BFF: bff.Config{
			Issuer: s.OP.Issuer, ClientID: s.OP.ClientID, ClientSecret: s.OP.ClientSecret,
			RedirectURL:           s.URL + "/oauth/callback",
			PostLogoutRedirectURL: s.URL + "/logout/callback",
			CookieKeys:            []string{randomKey()},
			Mode:                  o.Mode,
			IdentityHeaders: []bff.IdentityHeader{
				{Header: "X-User", Claim: "sub"}, {Header: "X-User-Email", Claim: "email"},
			},
			Store:      o.Store,
			HTTPClient: o.HTTPClient,
			Logger:     slog.New(slog.NewTextHandler(o.Logs, nil)),
		},
		Routes: []serve.Route{
			{Path: "/api/", Upstream: s.API},
			{Path: "/direct/", Upstream: s.API, Public: true},
		},
		StaticDir: o.StaticDir,
	}
	p, err := serve.New(cfg)
	if err != nil {
		return nil, err
	}
	s.srv = &http.Server{Handler: p.Handler, ReadHeaderTimeout: 5 * time.Second}
	go s.srv.Serve(ln)
	return s, nil
}

// Close stops everything Start started.
func (s *Stack) Close() {
	if s.srv != nil {
		s.srv.Close()
	}
	for i := len(s.done) - 1; i >= 0; i-- {
		s.done[i]()
	}
	s.done = nil
}

// randomKey makes a fresh login-cookie key per run.
func randomKey() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return base64.StdEncoding.EncodeToString(b[:])
}
