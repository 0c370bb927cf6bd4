// Package op starts and drives a real OpenID Provider for tests: the npm
// package oidc-provider (pinned in tests/op/package.json), run by
// tests/op/server.js on 127.0.0.1.
//
// The Node dependencies must be installed first (`make test-deps`, or
// `npm ci --prefix tests/op`); Start never runs npm itself, because several
// test packages start OPs at the same time.
//
// The OP has one confidential client (client_secret_basic or
// client_secret_post), the code flow with PKCE (S256) required, rotated
// refresh tokens on every code exchange, RFC 9207 `iss` in authorization
// responses, RP-initiated and back-channel logout, introspection, revocation
// and RFC 8693 token exchange. Two users exist: alice / alice-password and
// bob / bob-password.
//
// This package uses the standard library only.
package op

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The demo accounts of the test OP.
const (
	AliceUser     = "alice"
	AlicePassword = "alice-password"
	BobUser       = "bob"
	BobPassword   = "bob-password"
	// The one-time codes that make a login two-factor (LoginWith's OTP).
	AliceOTP = "111111"
	BobOTP   = "222222"
)

// The authentication context classes (acr) the test OP knows: a password
// login, and one with the account's one-time code too. An authorization
// request whose acr_values do not include the OP session's acr prompts
// for a new login (step-up).
const (
	ACRPassword = "urn:bffgate:acr:pwd"
	ACRMFA      = "urn:bffgate:acr:mfa"
)

// LoginOptions are what LoginWith sends beside user and password.
type LoginOptions struct {
	// OTP, when set, is posted with the login form: the account's code
	// (AliceOTP, BobOTP) makes the login's acr ACRMFA; a wrong one fails
	// it. Without it the acr is ACRPassword.
	OTP string
	// AuthAge back-dates the login by this much (whole seconds, up to a
	// day): the ID token's auth_time is that long ago.
	AuthAge time.Duration
}

// Grant types as counted by Stats.
const (
	GrantAuthorizationCode = "authorization_code"
	GrantRefreshToken      = "refresh_token"
	GrantTokenExchange     = "urn:ietf:params:oauth:grant-type:token-exchange"
)

const (
	startTimeout = 30 * time.Second
	closeTimeout = 5 * time.Second
	maxBody      = 1 << 20
	maxSteps     = 20
)

// Options configure the test OP. Zero values mean the defaults.
type Options struct {
	ClientID, ClientSecret string // defaults "bffgate", "bffgate-secret"

	// RedirectURIs and PostLogoutRedirectURIs are registered on the client.
	// Login and ConfirmLogout stop at any URL starting with one of them.
	RedirectURIs, PostLogoutRedirectURIs []string

	// BackchannelLogoutURI, when set, is registered on the client with
	// backchannel_logout_session_required, so ID tokens carry `sid` and the
	// OP POSTs a logout_token there when the OP session ends.
	BackchannelLogoutURI string

	// Token lifetimes, sent as whole seconds (at least one second).
	// Defaults: 60s, 1h, 24h.
	AccessTokenTTL, IDTokenTTL, RefreshTokenTTL time.Duration

	// Port to listen on, on 127.0.0.1; 0 picks a free port.
	Port int

	// Stderr receives the Node process's stderr (and any stray stdout);
	// nil means os.Stderr.
	Stderr io.Writer

	// ClientAuthMethod is the client's token_endpoint_auth_method:
	// "client_secret_basic" (the default), "client_secret_post",
	// "private_key_jwt" (with ClientJWKS) or "tls_client_auth" (with MTLS).
	ClientAuthMethod string
	// ClientJWKS is the client's public JWK Set (JSON), for private_key_jwt.
	ClientJWKS json.RawMessage
	// MTLS serves the OP over HTTPS on 127.0.0.1 with a CA made for this
	// run, asks for client certificates, and turns on RFC 8705 (mutual-TLS
	// client authentication and certificate-bound access tokens). The
	// Server's TLS field has the CA and a client certificate.
	MTLS bool
	// DPoPBound makes the client get DPoP-bound tokens only (a token
	// request without a proof fails); DPoPNonce makes the OP require its
	// DPoP-Nonce in proofs (RFC 9449 §8).
	DPoPBound, DPoPNonce bool
	// NoDPoP turns the OP's DPoP off: it ignores proofs and issues bearer
	// tokens only, as a provider without DPoP does.
	NoDPoP bool
	// RequestObjects makes the client send signed request objects (JAR,
	// RFC 9101) with ES256, verified with ClientJWKS.
	RequestObjects bool
	// Resources are the resource indicators (RFC 8707) the OP issues
	// access tokens for, each with itself as aud.
	Resources []string
}

// Server is a running test OP.
type Server struct {
	// Issuer is the OP's issuer and base URL, http://127.0.0.1:<port>, no
	// trailing slash.
	Issuer string
	// ClientID and ClientSecret are the credentials of the OP's one client.
	ClientID, ClientSecret string

	// TLS, with Options.MTLS, holds the run's CA and client certificate.
	TLS *TLSFiles

	redirectURIs []string // where Login and ConfirmLogout stop
	endpoints    discovery
	secretAuth   bool         // the client authenticates with its secret
	http         *http.Client // for the OP's own calls (trusts TLS's CA)

	cmd   *exec.Cmd
	stdin io.Closer
	done  chan struct{} // closed when the process has exited
	tail  *tailBuffer

	waitErr   error // valid after done is closed
	closeOnce sync.Once
	closeErr  error
}

type discovery struct {
	Issuer                string `json:"issuer"`
	TokenEndpoint         string `json:"token_endpoint"`
	IntrospectionEndpoint string `json:"introspection_endpoint"`
	EndSessionEndpoint    string `json:"end_session_endpoint"`
}

// opConfig is the OP_CONFIG document read by server.js.
type opConfig struct {
	Port                   int      `json:"port"`
	ClientID               string   `json:"clientId"`
	ClientSecret           string   `json:"clientSecret"`
	RedirectURIs           []string `json:"redirectUris"`
	PostLogoutRedirectURIs []string `json:"postLogoutRedirectUris"`
	BackchannelLogoutURI   string   `json:"backchannelLogoutUri"`
	AccessTokenTTL         int      `json:"accessTokenTTL"`
	IDTokenTTL             int      `json:"idTokenTTL"`
	RefreshTokenTTL        int      `json:"refreshTokenTTL"`
	// ExitOnStdinClose makes the OP exit when its stdin closes, so it never
	// outlives a test binary that dies without calling Close.
	ExitOnStdinClose bool `json:"exitOnStdinClose"`

	ClientAuthMethod string          `json:"clientAuthMethod,omitempty"`
	ClientJWKS       json.RawMessage `json:"clientJwks,omitempty"`
	TLS              *opTLS          `json:"tls,omitempty"`
	TLSClientSanDNS  string          `json:"tlsClientSanDns,omitempty"`
	DPoPBound        bool            `json:"dpopBound,omitempty"`
	DPoPNonce        bool            `json:"dpopNonce,omitempty"`
	NoDPoP           bool            `json:"noDpop,omitempty"`
	RequestObjects   bool            `json:"requestObjects,omitempty"`
	Resources        []string        `json:"resources,omitempty"`
}

type opTLS struct {
	Cert string `json:"cert"`
	Key  string `json:"key"`
	CA   string `json:"ca"`
}

// Dir returns the directory holding server.js and package.json, found from
// this source file's location (so it works from any package's tests).
func Dir() string {
	_, file, _, ok := runtime.Caller(0)
	if ok && filepath.IsAbs(file) {
		return filepath.Dir(file)
	}
	// Built with -trimpath (the Tyk plugin's tests must be), the file name
	// is module-relative: find the module's root above the working
	// directory instead.
	if root, err := moduleRoot(); err == nil {
		return filepath.Join(root, "tests", "op")
	}
	return "tests/op"
}

// moduleRoot finds this repository's root: the nearest directory above
// the working directory whose go.mod declares the bffgate module.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil &&
			strings.HasPrefix(strings.TrimSpace(string(b))+"\n", "module github.com/bffgate/bffgate\n") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("op: no bffgate go.mod above the working directory")
		}
		dir = parent
	}
}

// RepoDir is the repository's root directory.
func RepoDir() string { return filepath.Dir(filepath.Dir(Dir())) }

func seconds(d, def time.Duration) int {
	if d <= 0 {
		d = def
	}
	s := int(d / time.Second)
	if s < 1 {
		s = 1
	}
	return s
}

// Start runs `node server.js` and waits (at most 30 s) until the OP accepts
// connections. Close it when done (StartT does that for you).
func Start(opts Options) (*Server, error) {
	return start(Dir(), opts)
}

func start(dir string, opts Options) (*Server, error) {
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "oidc-provider", "package.json")); err != nil {
		return nil, fmt.Errorf("op: the test OP's Node dependencies are not installed in %s: run `make test-deps` (or `npm ci --prefix tests/op`)", dir)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		return nil, fmt.Errorf("op: the test OP needs Node.js (`node` on PATH): %w", err)
	}

	cfg := opConfig{
		Port:                   opts.Port,
		ClientID:               opts.ClientID,
		ClientSecret:           opts.ClientSecret,
		RedirectURIs:           append([]string{}, opts.RedirectURIs...),
		PostLogoutRedirectURIs: append([]string{}, opts.PostLogoutRedirectURIs...),
		BackchannelLogoutURI:   opts.BackchannelLogoutURI,
		AccessTokenTTL:         seconds(opts.AccessTokenTTL, 60*time.Second),
		IDTokenTTL:             seconds(opts.IDTokenTTL, time.Hour),
		RefreshTokenTTL:        seconds(opts.RefreshTokenTTL, 24*time.Hour),
		ExitOnStdinClose:       true,
	}
	if cfg.ClientID == "" {
		cfg.ClientID = "bffgate"
	}
	if cfg.ClientSecret == "" {
		cfg.ClientSecret = "bffgate-secret"
	}
	cfg.ClientAuthMethod, cfg.ClientJWKS, cfg.DPoPBound, cfg.DPoPNonce = opts.ClientAuthMethod, opts.ClientJWKS, opts.DPoPBound, opts.DPoPNonce
	cfg.Resources, cfg.NoDPoP, cfg.RequestObjects = opts.Resources, opts.NoDPoP, opts.RequestObjects
	var files *TLSFiles
	if opts.MTLS {
		if files, err = newTLSFiles(); err != nil {
			return nil, err
		}
		cfg.TLS = &opTLS{Cert: files.serverCert, Key: files.serverKey, CA: files.CAFile}
		cfg.TLSClientSanDNS = ClientCertDNSName
	}
	cfgJSON, err := json.Marshal(cfg)
	if err != nil {
		return nil, fmt.Errorf("op: encode OP_CONFIG: %w", err)
	}

	stderr := opts.Stderr
	if stderr == nil {
		stderr = os.Stderr
	}
	tail := &tailBuffer{max: 4096}
	errOut := io.MultiWriter(stderr, tail)

	cmd := exec.Command(node, "server.js")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "OP_CONFIG="+string(cfgJSON))
	cmd.Stderr = errOut
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("op: %w", err)
	}
	// The OP exits when this pipe closes: on Close, or when this process dies.
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, fmt.Errorf("op: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("op: start node server.js: %w", err)
	}

	s := &Server{
		TLS:          files,
		secretAuth:   cfg.ClientAuthMethod == "" || strings.HasPrefix(cfg.ClientAuthMethod, "client_secret_"),
		http:         files.client(),
		ClientID:     cfg.ClientID,
		ClientSecret: cfg.ClientSecret,
		redirectURIs: append(append([]string{}, cfg.RedirectURIs...), cfg.PostLogoutRedirectURIs...),
		cmd:          cmd,
		stdin:        stdin,
		done:         make(chan struct{}),
		tail:         tail,
	}

	ready := make(chan string, 1)
	stdoutDone := make(chan struct{})
	go func() {
		defer close(stdoutDone)
		sc := bufio.NewScanner(stdout)
		sent := false
		for sc.Scan() {
			line := sc.Text()
			if !sent && strings.HasPrefix(line, "READY ") {
				ready <- strings.TrimSpace(strings.TrimPrefix(line, "READY "))
				sent = true
				continue
			}
			fmt.Fprintln(errOut, line)
		}
	}()
	go func() {
		<-stdoutDone // Wait closes the pipe; read it all first.
		s.waitErr = cmd.Wait()
		close(s.done)
	}()

	timer := time.NewTimer(startTimeout)
	defer timer.Stop()
	select {
	case issuer := <-ready:
		s.Issuer = issuer
	case <-s.done:
		return nil, fmt.Errorf("op: node server.js exited before it was ready (%v): %s", s.waitErr, strings.TrimSpace(tail.String()))
	case <-timer.C:
		_ = s.Close()
		return nil, fmt.Errorf("op: node server.js not ready after %v: %s", startTimeout, strings.TrimSpace(tail.String()))
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.getJSON(ctx, s.Issuer+"/.well-known/openid-configuration", &s.endpoints); err != nil {
		_ = s.Close()
		return nil, fmt.Errorf("op: discovery: %w", err)
	}
	if s.endpoints.Issuer != s.Issuer {
		_ = s.Close()
		return nil, fmt.Errorf("op: discovery says issuer %q, READY said %q", s.endpoints.Issuer, s.Issuer)
	}
	return s, nil
}

// StartT starts an OP for the test and closes it when the test ends. It
// fails the test if the OP cannot start.
func StartT(t testing.TB, opts Options) *Server {
	t.Helper()
	s, err := Start(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("op: close: %v", err)
		}
	})
	return s
}

// Close stops the OP: SIGTERM, then SIGKILL if it has not exited after 5 s.
// It is safe to call more than once.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		defer s.TLS.remove()
		select {
		case <-s.done:
			// It had already exited on its own.
			s.closeErr = fmt.Errorf("op: the test OP had exited by itself (%v): %s", s.waitErr, strings.TrimSpace(s.tail.String()))
			_ = s.stdin.Close()
			return
		default:
		}
		if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			_ = s.cmd.Process.Kill()
		}
		timer := time.NewTimer(closeTimeout)
		defer timer.Stop()
		select {
		case <-s.done:
		case <-timer.C:
			_ = s.cmd.Process.Kill()
			<-s.done
			s.closeErr = fmt.Errorf("op: the test OP did not exit within %v of SIGTERM; killed", closeTimeout)
		}
		_ = s.stdin.Close()
	})
	return s.closeErr
}

// AuthorizationError is an error response the OP sent to the client's
// redirect URI (RFC 6749 section 4.1.2.1), e.g. invalid_request when PKCE is
// missing or access_denied when the user denied consent.
type AuthorizationError struct {
	Code        string // the `error` parameter
	Description string // the `error_description` parameter
}

func (e *AuthorizationError) Error() string {
	if e.Description == "" {
		return "op: authorization error: " + e.Code
	}
	return "op: authorization error: " + e.Code + ": " + e.Description
}

// Login drives the OP's login and consent pages as a user would: it requests
// authURL with client's cookie jar, follows the OP's redirects, posts user
// and password to the login form and accepts the consent form, and returns
// the URL the OP finally redirects to (the client's redirect_uri with code,
// state and iss) WITHOUT requesting it. The jar may be shared across calls:
// a second login in the same jar reuses the OP session and skips the forms.
//
// client must have a cookie jar; its CheckRedirect is not used (Login walks
// redirects itself and stops at a registered redirect URI, or at any URL off
// the OP's origin). If the OP redirects back with an `error` parameter,
// Login returns that URL and an *AuthorizationError. A rejected password is
// an error that says so.
func (s *Server) Login(ctx context.Context, client *http.Client, authURL, user, password string) (*url.URL, error) {
	return s.LoginWith(ctx, client, authURL, user, password, LoginOptions{})
}

// LoginWith is Login with a one-time code or a back-dated login (opts).
func (s *Server) LoginWith(ctx context.Context, client *http.Client, authURL, user, password string, opts LoginOptions) (*url.URL, error) {
	w, err := s.newWalker(client, "login")
	if err != nil {
		return nil, err
	}
	w.user, w.password, w.opts = user, password, opts
	u, err := w.walk(ctx, authURL)
	if err != nil {
		return nil, err
	}
	q := u.Query()
	if code := q.Get("error"); code != "" {
		return u, &AuthorizationError{Code: code, Description: q.Get("error_description")}
	}
	return u, nil
}

// ConfirmLogout follows an end-session URL (RP-initiated logout) with
// client's cookie jar, confirms the logout form (ending the whole OP session)
// and returns the URL the OP redirects to -- the post_logout_redirect_uri,
// with state if one was given -- without requesting it. When the request has
// no post_logout_redirect_uri, it returns the URL of the OP's "signed out"
// page. The OP sends back-channel logout tokens to the clients of that
// session before it answers, so they have arrived when this returns.
func (s *Server) ConfirmLogout(ctx context.Context, client *http.Client, endSessionURL string) (*url.URL, error) {
	w, err := s.newWalker(client, "logout")
	if err != nil {
		return nil, err
	}
	return w.walk(ctx, endSessionURL)
}

// Stats are the OP's test counters.
type Stats struct {
	// Grants counts successful token-endpoint requests by grant_type.
	Grants map[string]int `json:"grants"`
	// GrantErrors counts failed token-endpoint requests by grant_type.
	GrantErrors map[string]int `json:"grantErrors"`
	// Backchannel counts back-channel logout POSTs answered with 200/204.
	Backchannel int `json:"backchannel"`
}

// Stats fetches the OP's counters (GET /__stats).
func (s *Server) Stats(ctx context.Context) (Stats, error) {
	var st Stats
	if err := s.getJSON(ctx, s.Issuer+"/__stats", &st); err != nil {
		return Stats{}, fmt.Errorf("op: stats: %w", err)
	}
	return st, nil
}

// Introspect calls the introspection endpoint (RFC 7662) with the client's
// credentials and returns the JSON fields: active, and for an active token
// sub, scope, aud, client_id, exp, iat, iss, token_type, ... (numbers are
// float64).
func (s *Server) Introspect(ctx context.Context, token string) (map[string]any, error) {
	form := url.Values{"token": {token}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.endpoints.IntrospectionEndpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, fmt.Errorf("op: introspect: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	// RFC 6749 2.3.1: form-encode the credentials before Basic. A client
	// without a secret has the introspector introspect for it.
	id, secret := s.ClientID, s.ClientSecret
	if !s.secretAuth {
		id, secret = "introspector", "introspector-secret"
	}
	req.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(secret))
	resp, err := s.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("op: introspect: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return nil, fmt.Errorf("op: introspect: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("op: introspect: HTTP %d: %s", resp.StatusCode, snippet(body))
	}
	var out map[string]any
	if err := json.Unmarshal(body, &out); err != nil {
		return nil, fmt.Errorf("op: introspect: %w: %s", err, snippet(body))
	}
	return out, nil
}

func (s *Server) getJSON(ctx context.Context, u string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := s.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: HTTP %d: %s", u, resp.StatusCode, snippet(body))
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("GET %s: %w: %s", u, err, snippet(body))
	}
	return nil
}

// ---------------------------------------------------------------------------
// Walking the OP's pages.

type walker struct {
	s      *Server
	c      *http.Client
	mode   string // "login" or "logout"
	origin string // scheme://host of the OP

	user, password string
	opts           LoginOptions
	loginPosted    bool // the login form was posted once
	posted         bool // any form was posted
}

func (s *Server) newWalker(client *http.Client, mode string) (*walker, error) {
	if client == nil {
		return nil, fmt.Errorf("op: %s: nil *http.Client", mode)
	}
	if client.Jar == nil {
		return nil, fmt.Errorf("op: %s: the *http.Client has no cookie jar (use op.NewJar())", mode)
	}
	c := *client
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	if c.Transport == nil && s.TLS != nil {
		c.Transport = s.http.Transport
	}
	iss, err := url.Parse(s.Issuer)
	if err != nil {
		return nil, fmt.Errorf("op: issuer: %w", err)
	}
	return &walker{s: s, c: &c, mode: mode, origin: iss.Scheme + "://" + iss.Host}, nil
}

// final reports whether u is where the walk ends: a registered redirect or
// post-logout URI, or anything off the OP's origin.
func (w *walker) final(u *url.URL) bool {
	str := u.String()
	for _, r := range w.s.redirectURIs {
		if strings.HasPrefix(str, r) {
			return true
		}
	}
	return u.Scheme+"://"+u.Host != w.origin
}

func (w *walker) walk(ctx context.Context, start string) (*url.URL, error) {
	u, err := url.Parse(start)
	if err != nil {
		return nil, fmt.Errorf("op: %s: bad start URL: %w", w.mode, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("op: %s: %w", w.mode, err)
	}
	for step := 1; step <= maxSteps; step++ {
		what := req.Method + " " + redactURL(req.URL)
		resp, err := w.c.Do(req)
		if err != nil {
			return nil, fmt.Errorf("op: %s step %d (%s): %w", w.mode, step, what, err)
		}
		body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
		resp.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("op: %s step %d (%s): read body: %w", w.mode, step, what, err)
		}

		switch {
		case resp.StatusCode >= 300 && resp.StatusCode < 400:
			loc := resp.Header.Get("Location")
			if loc == "" {
				return nil, fmt.Errorf("op: %s step %d (%s): HTTP %d without Location", w.mode, step, what, resp.StatusCode)
			}
			next, err := req.URL.Parse(loc)
			if err != nil {
				return nil, fmt.Errorf("op: %s step %d (%s): bad Location: %w", w.mode, step, what, err)
			}
			if w.final(next) {
				return next, nil
			}
			req, err = http.NewRequestWithContext(ctx, http.MethodGet, next.String(), nil)
			if err != nil {
				return nil, fmt.Errorf("op: %s: %w", w.mode, err)
			}
			continue

		case resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusUnauthorized:
			forms := parseForms(string(body))
			f, isLogin := w.pick(forms)
			if isLogin && w.mode == "login" && w.loginPosted {
				return nil, fmt.Errorf("op: login step %d (%s): the OP rejected the login of %q: HTTP %d: %s", step, what, w.user, resp.StatusCode, snippet(body))
			}
			if isLogin && w.mode == "logout" {
				return nil, fmt.Errorf("op: logout step %d (%s): unexpected login page: HTTP %d: %s", step, what, resp.StatusCode, snippet(body))
			}
			if f == nil {
				if w.mode == "logout" && w.posted && resp.StatusCode == http.StatusOK {
					// The OP's own "signed out" page (no post_logout_redirect_uri).
					return req.URL, nil
				}
				return nil, fmt.Errorf("op: %s step %d (%s): unexpected page without a form: HTTP %d: %s", w.mode, step, what, resp.StatusCode, snippet(body))
			}
			if resp.StatusCode != http.StatusOK {
				return nil, fmt.Errorf("op: %s step %d (%s): HTTP %d: %s", w.mode, step, what, resp.StatusCode, snippet(body))
			}
			vals := f.values()
			if isLogin {
				vals.Set("login", w.user)
				if w.opts.OTP != "" {
					vals.Set("otp", w.opts.OTP)
				}
				if w.opts.AuthAge > 0 {
					vals.Set("auth_age", fmt.Sprint(int(w.opts.AuthAge/time.Second)))
				}
				vals.Set("password", w.password)
				w.loginPosted = true
			}
			action, err := req.URL.Parse(f.action)
			if err != nil {
				return nil, fmt.Errorf("op: %s step %d (%s): bad form action %q: %w", w.mode, step, what, f.action, err)
			}
			if f.method != "post" {
				action.RawQuery = vals.Encode()
				req, err = http.NewRequestWithContext(ctx, http.MethodGet, action.String(), nil)
			} else {
				req, err = http.NewRequestWithContext(ctx, http.MethodPost, action.String(), strings.NewReader(vals.Encode()))
				if err == nil {
					req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				}
			}
			if err != nil {
				return nil, fmt.Errorf("op: %s: %w", w.mode, err)
			}
			w.posted = true
			continue

		default:
			return nil, fmt.Errorf("op: %s step %d (%s): HTTP %d: %s", w.mode, step, what, resp.StatusCode, snippet(body))
		}
	}
	return nil, fmt.Errorf("op: %s: no end after %d steps", w.mode, maxSteps)
}

// pick chooses the form to submit on a page: the login form (one with a
// password input) if there is one, else the first form (consent's "Allow",
// logout's confirmation, or an auto-submitting form_post page).
func (w *walker) pick(forms []*form) (f *form, isLogin bool) {
	for _, f := range forms {
		if f.hasPassword {
			return f, true
		}
	}
	if len(forms) > 0 {
		return forms[0], false
	}
	return nil, false
}

// redactURL shortens a URL for error messages and drops its query, which may
// carry codes or tokens (id_token_hint).
func redactURL(u *url.URL) string {
	c := *u
	if c.RawQuery != "" {
		c.RawQuery = "…"
	}
	return c.String()
}

// ---------------------------------------------------------------------------
// A minimal HTML form reader: enough for the OP's own pages.

type control struct {
	tag, typ, name, value string
	checked               bool
	form                  string // the form attribute (owner form's id)
	pos                   int
}

type form struct {
	id, action, method string
	start, end         int
	controls           []control
	hasPassword        bool
}

var (
	formRe    = regexp.MustCompile(`(?is)<form\b([^>]*)>(.*?)</form\s*>`)
	controlRe = regexp.MustCompile(`(?is)<(input|button)\b([^>]*)>`)
	attrRe    = regexp.MustCompile(`([^\s"'>/=]+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+)))?`)
	tagRe     = regexp.MustCompile(`(?s)<[^>]*>`)
	spaceRe   = regexp.MustCompile(`\s+`)
	scriptRe  = regexp.MustCompile(`(?is)<(script|style)\b.*?</(script|style)\s*>`)
)

func attrs(s string) map[string]string {
	m := map[string]string{}
	for _, a := range attrRe.FindAllStringSubmatch(s, -1) {
		name := strings.ToLower(a[1])
		if _, dup := m[name]; dup {
			continue
		}
		m[name] = html.UnescapeString(a[2] + a[3] + a[4])
	}
	return m
}

func parseForms(doc string) []*form {
	var forms []*form
	for _, loc := range formRe.FindAllStringSubmatchIndex(doc, -1) {
		a := attrs(doc[loc[2]:loc[3]])
		forms = append(forms, &form{
			id:     a["id"],
			action: a["action"],
			method: strings.ToLower(a["method"]),
			start:  loc[0],
			end:    loc[1],
		})
	}
	if len(forms) == 0 {
		return nil
	}
	for _, loc := range controlRe.FindAllStringSubmatchIndex(doc, -1) {
		a := attrs(doc[loc[4]:loc[5]])
		_, checked := a["checked"]
		c := control{
			tag:     strings.ToLower(doc[loc[2]:loc[3]]),
			typ:     strings.ToLower(a["type"]),
			name:    a["name"],
			value:   a["value"],
			checked: checked,
			form:    a["form"],
			pos:     loc[0],
		}
		if c.typ == "" {
			if c.tag == "button" {
				c.typ = "submit"
			} else {
				c.typ = "text"
			}
		}
		for _, f := range forms {
			if (c.form != "" && c.form == f.id) || (c.form == "" && c.pos > f.start && c.pos < f.end) {
				f.controls = append(f.controls, c)
				if c.typ == "password" {
					f.hasPassword = true
				}
				break
			}
		}
	}
	return forms
}

// values returns what a browser would submit: named inputs, checked boxes,
// and the first submit button (with its name and value, if named).
func (f *form) values() url.Values {
	v := url.Values{}
	submitted := false
	for _, c := range f.controls {
		switch c.typ {
		case "submit", "image":
			if !submitted {
				submitted = true
				if c.name != "" {
					v.Add(c.name, c.value)
				}
			}
		case "reset", "button", "file":
		case "checkbox", "radio":
			if c.checked && c.name != "" {
				val := c.value
				if val == "" {
					val = "on"
				}
				v.Add(c.name, val)
			}
		default:
			if c.name != "" {
				v.Add(c.name, c.value)
			}
		}
	}
	return v
}

// snippet turns a response body into a short, readable line for errors.
func snippet(body []byte) string {
	s := string(body)
	if bytes.Contains(body, []byte("<")) {
		s = scriptRe.ReplaceAllString(s, " ")
		s = tagRe.ReplaceAllString(s, " ")
		s = html.UnescapeString(s)
	}
	s = strings.TrimSpace(spaceRe.ReplaceAllString(s, " "))
	if r := []rune(s); len(r) > 300 {
		s = string(r[:300]) + "…"
	}
	if s == "" {
		return "(empty body)"
	}
	return s
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > t.max {
		t.buf = append([]byte{}, t.buf[len(t.buf)-t.max:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}

// ---------------------------------------------------------------------------
// Cookie jar

// Browser returns an HTTP client like a browser profile for tests: a
// cookie jar from NewJar, and redirects returned rather than followed, so
// a test sees every hop of a login.
func Browser() *http.Client {
	return &http.Client{
		Jar:           NewJar(),
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Timeout:       30 * time.Second,
	}
}

// NewJar returns a cookie jar that behaves like net/http/cookiejar, except
// that it treats http://127.0.0.1, http://[::1] and http://localhost (any
// port, any loopback name) as secure origins: it stores and sends `Secure`
// cookies -- such as bffgate's `__Host-` session cookie, which must be
// Secure -- over plain HTTP on loopback, where every test server listens.
//
// Why: browsers treat loopback as a secure context, but Go's cookiejar did
// not send Secure cookies over http:// before recent releases (Go 1.26 does
// for loopback hosts). Rewriting loopback URLs to https in both SetCookies
// and Cookies makes tests behave the same on every Go version. Like a
// browser's jar, cookies are per host, not per port: every 127.0.0.1 server
// sees every other one's cookies (the OP's _session and _interaction too).
//
// The jar uses no public suffix list, which is fine for loopback hosts.
func NewJar() http.CookieJar {
	j, err := cookiejar.New(nil)
	if err != nil {
		// cookiejar.New never fails with nil options.
		panic(err)
	}
	return &loopbackJar{jar: j}
}

type loopbackJar struct{ jar *cookiejar.Jar }

func (j *loopbackJar) SetCookies(u *url.URL, cookies []*http.Cookie) {
	j.jar.SetCookies(secureLoopback(u), cookies)
}

func (j *loopbackJar) Cookies(u *url.URL) []*http.Cookie {
	return j.jar.Cookies(secureLoopback(u))
}

func secureLoopback(u *url.URL) *url.URL {
	if u == nil || u.Scheme != "http" || !isLoopback(u.Hostname()) {
		return u
	}
	c := *u
	c.Scheme = "https"
	return &c
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") || strings.HasSuffix(strings.ToLower(host), ".localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// ---------------------------------------------------------------------------
// Small helpers for tests.

// DecodeJWTPayload returns the claims of a JWT without verifying it (tests
// only: never trust an unverified token).
func DecodeJWTPayload(jwt string) (map[string]any, error) {
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		return nil, errors.New("op: not a JWS compact serialization (want 3 parts)")
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return nil, fmt.Errorf("op: JWT payload: %w", err)
	}
	var claims map[string]any
	if err := json.Unmarshal(raw, &claims); err != nil {
		return nil, fmt.Errorf("op: JWT payload: %w", err)
	}
	return claims, nil
}
