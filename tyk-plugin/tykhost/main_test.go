package tykhost_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bffgate/bffgate/tests/flowtest"
	"github.com/bffgate/bffgate/tests/op"
	"github.com/bffgate/bffgate/tyk-plugin/tykhost"
)

// These tests build the real bffgate.so, load it with Go's plugin loader
// into this test binary (built, like Tyk, with cgo, -trimpath and the
// goplugin tag) and run its BFFGate hook with Tyk's contract (package
// tykhost) in front of an httptest upstream, against the real OpenID
// Provider of tests/op. A real Tyk gateway is no part of the tests (its
// module cannot be downloaded, and none of its code is kept here), so this
// host stands in for it.
//
// A Go plugin loads once per process and the plugin reads BFFGATE_CONFIG
// on its first request, so TestMain writes one config file for every API
// the tests use before the first request. Cases needing another config run
// in child processes of this test binary (see runChild).

const (
	cookieKey    = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
	accessTTL    = 20 * time.Second
	refreshSkew  = 17                      // seconds: tokens are refreshed 3 s after they are issued
	childEnv     = "BFFGATE_TYKHOST_CHILD" // set in child processes: which child
	pluginEnv    = "BFFGATE_TYKHOST_SO"    // the parent's bffgate.so, for children
	secretEnv    = "BFFGATE_TEST_CLIENT_SECRET"
	cookieKeyEnv = "BFFGATE_TEST_COOKIE_KEY"
)

var (
	moduleRoot string       // the bffgate checkout
	soPath     string       // the bffgate.so every test loads
	hook       tykhost.Hook // its BFFGate
	gw         *httptest.Server
	up         = &flowtest.Upstream{Body: `{"upstream":true}`}
	opSrv      *op.Server
)

func TestMain(m *testing.M) { os.Exit(run(m)) }

func run(m *testing.M) int {
	if err := tykhost.CheckFlags(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if os.Getenv(childEnv) != "" {
		soPath = os.Getenv(pluginEnv)
		return m.Run()
	}
	dir, err := os.MkdirTemp("", "bffgate-tykhost-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	if moduleRoot, err = tykhost.ModuleRoot(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	soPath = filepath.Join(dir, "bffgate.so")
	if err := tykhost.BuildPlugin(moduleRoot, soPath); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	// The host and the plugin share one toolchain (BuildPlugin makes the go
	// command use this binary's), as Tyk and its plugins must.
	if err := tykhost.CheckPlugin(soPath); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}

	upSrv := httptest.NewServer(up)
	defer upSrv.Close()
	var handler http.Handler = http.NotFoundHandler()
	gw = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { handler.ServeHTTP(w, r) }))
	defer gw.Close()

	opSrv, err = op.Start(op.Options{
		RedirectURIs: []string{gw.URL + "/app/oauth/callback", gw.URL + "/tm/oauth/callback", gw.URL + "/adm/oauth/callback",
			gw.URL + "/ra/oauth/callback", gw.URL + "/rb/oauth/callback", gw.URL + "/dp/oauth/callback"},
		Resources:              []string{resourceA, resourceB}, // fapi_test.go
		PostLogoutRedirectURIs: []string{gw.URL + "/app/logout/callback", gw.URL + "/tm/logout/callback"},
		BackchannelLogoutURI:   gw.URL + "/app/backchannel-logout",
		AccessTokenTTL:         accessTTL,
		Stderr:                 io.Discard,
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer opSrv.Close()

	// Secrets reach the engine as env:NAME, resolved by the core.
	os.Setenv(secretEnv, opSrv.ClientSecret)
	os.Setenv(cookieKeyEnv, cookieKey)
	cfgPath := filepath.Join(dir, "bffgate.json")
	if err := os.WriteFile(cfgPath, configFile(gw.URL, opSrv), 0o600); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	os.Setenv("BFFGATE_CONFIG", cfgPath)

	if hook, err = tykhost.Load(soPath, "BFFGate"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	publicHook, err := tykhost.Load(soPath, "BFFGatePublic")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	target, _ := url.Parse(upSrv.URL)
	handler = tykhost.New(
		tykhost.API{ListenPath: "/app/", StripListenPath: true, Target: target, Pre: []tykhost.Hook{hook}},
		// A public API on the BFF's host (the SPA's files): the public hook.
		tykhost.API{ListenPath: "/app/public/", StripListenPath: false, Target: target, Pre: []tykhost.Hook{publicHook}},
		tykhost.API{ListenPath: "/tm/", StripListenPath: true, Target: target, Pre: []tykhost.Hook{hook}},
		// An API with a policy: admins with a two-factor login.
		tykhost.API{ListenPath: "/adm/", StripListenPath: true, Target: target, Pre: []tykhost.Hook{hook}},
		// APIs whose config names a resource, and one with DPoP proofs
		// (fapi_test.go).
		tykhost.API{ListenPath: "/ra/", StripListenPath: true, Target: target, Pre: []tykhost.Hook{hook}},
		tykhost.API{ListenPath: "/rb/", StripListenPath: true, Target: target, Pre: []tykhost.Hook{hook}},
		tykhost.API{ListenPath: "/dp/", StripListenPath: true, Target: target, Pre: []tykhost.Hook{hook}},
		// The hook on an API the config file does not name.
		tykhost.API{ListenPath: "/elsewhere/", StripListenPath: true, Target: target, Pre: []tykhost.Hook{hook}},
		// No hook: the host itself proxies.
		tykhost.API{ListenPath: "/open/", StripListenPath: true, Target: target},
	)
	return m.Run()
}

// configFile is the BFFGATE_CONFIG file: /app/ in bff mode, /tm/ in
// token-mediating mode, /adm/ in bff mode with a policy, each with its own
// cookie name (they share a host).
// path_prefix is left to default from the listen path.
func configFile(base string, o *op.Server) []byte {
	api := func(listen, mode, cookie string) map[string]any {
		prefix := strings.TrimSuffix(listen, "/")
		return map[string]any{
			"listen_path": listen,
			"config": map[string]any{
				"issuer":                   o.Issuer,
				"client_id":                o.ClientID,
				"client_secret":            "env:" + secretEnv,
				"redirect_url":             base + prefix + "/oauth/callback",
				"post_logout_redirect_url": base + prefix + "/logout/callback",
				"cookie_name":              cookie,
				"cookie_keys":              []string{"env:" + cookieKeyEnv},
				"mode":                     mode,
				"refresh_skew":             refreshSkew,
				"default_return_to":        prefix + "/",
				"identity_headers":         []map[string]string{{"header": "X-User", "claim": "sub"}},
				"allowed_origins":          []string{spaOrigin},
			},
		}
	}
	adm := api("/adm/", "bff", "__Host-adm")
	adm["config"].(map[string]any)["policy"] = map[string]any{
		"claims":     []map[string]any{{"claim": "groups", "values": []string{"admin"}}},
		"acr_values": []string{op.ACRMFA},
	}
	tm := api("/tm/", "token-mediating", "__Host-tm")
	tm["config"].(map[string]any)["dbsc"] = map[string]any{"enabled": true} // dbsc_test.go
	// fapi_test.go: config.route per API.
	withRoute := func(listen, cookie string, route map[string]any, dpop bool) map[string]any {
		a := api(listen, "bff", cookie)
		c := a["config"].(map[string]any)
		c["resources"], c["route"], c["dpop"] = []string{resourceA, resourceB}, route, dpop
		return a
	}
	b, _ := json.MarshalIndent(map[string]any{"apis": []any{
		api("/app/", "bff", "__Host-app"),
		tm,
		adm,
		withRoute("/ra/", "__Host-ra", map[string]any{"resource": resourceA}, false),
		withRoute("/rb/", "__Host-rb", map[string]any{"resource": resourceB}, false),
		withRoute("/dp/", "__Host-dp", map[string]any{"dpop_url": dpopURL}, true),
	}}, "", "  ")
	return b
}

// spaOrigin is a cross-origin SPA allowed to call the APIs.
const spaOrigin = "https://spa.example"

// browser is a cookie jar (keeping Secure cookies on http://127.0.0.1)
// that does not follow redirects.
func browser() *http.Client { return op.Browser() }

// do sends a request through the gateway; header holds name, value pairs.
func do(t *testing.T, c *http.Client, method, target string, header ...string) *flowtest.Response {
	t.Helper()
	return flowtest.Do(t, c, method, flowtest.Resolve(gw.URL, target), header...)
}

// login runs the code flow for alice through the API at prefix and returns
// where the callback sent the browser.
func login(t *testing.T, c *http.Client, prefix string) string {
	t.Helper()
	r := do(t, c, "GET", prefix+"/login?returnTo="+url.QueryEscape(prefix+"/home"))
	if r.Status != http.StatusFound {
		t.Fatalf("%s/login status = %d, want 302 (body %s)", prefix, r.Status, r.Body)
	}
	cb := flowtest.Authorize(t, opSrv, c, r.Header.Get("Location"), op.AliceUser, op.AlicePassword)
	if !strings.HasPrefix(cb, gw.URL+prefix+"/oauth/callback?") {
		t.Fatalf("the provider sent the browser to %s", cb)
	}
	r = do(t, c, "GET", cb)
	if r.Status != http.StatusFound {
		t.Fatalf("callback status = %d, want 302 (body %s)", r.Status, r.Body)
	}
	return r.Header.Get("Location")
}

func cookie(c *http.Client, name string) string { return flowtest.Cookie(c, gw.URL, name) }
