package tykhost_test

import (
	"context"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/bffgate/bffgate/tyk-plugin/tykhost"
)

func TestHookHasTykType(t *testing.T) {
	h, err := tykhost.Load(soPath, "BFFGate")
	if err != nil {
		t.Fatal(err)
	}
	want := reflect.TypeOf(func(http.ResponseWriter, *http.Request) {})
	if got := reflect.TypeOf(h); got != want {
		t.Fatalf("BFFGate is a %v, want Tyk's hook type %v", got, want)
	}
	if _, err := tykhost.Load(soPath, "NoSuchHook"); err == nil {
		t.Fatal("looking up a missing symbol succeeded")
	}
}

// TestFlow: login → provider → callback → /session → API with the bearer
// → the access token nears expiry → refresh → logout → API refused.
func TestFlow(t *testing.T) {
	c := browser()
	if got := login(t, c, "/app"); got != "/app/home" {
		t.Fatalf("after login the browser goes to %q, want /app/home", got)
	}
	sessionID := cookie(c, "__Host-app")
	if len(sessionID) != 43 {
		t.Fatalf("session cookie %q is not a 256-bit ID", sessionID)
	}

	r := do(t, c, "GET", "/app/session")
	if r.Status != http.StatusOK {
		t.Fatalf("/app/session status = %d (body %s)", r.Status, r.Body)
	}
	if info := r.JSON(t); info["authenticated"] != true {
		t.Fatalf("/app/session = %s", r.Body)
	}

	// The API request goes through the hook and the proxy: the upstream
	// sees the bearer and the real identity header, never the session
	// cookie or the forged identity header, and the listen path stripped.
	u, _ := url.Parse(gw.URL)
	c.Jar.SetCookies(u, []*http.Cookie{{Name: "theme", Value: "dark"}})
	before := up.Count()
	r = do(t, c, "POST", "/app/api/orders?page=2", "X-CSRF", "1", "X-User", "admin")
	if r.Status != http.StatusOK || string(r.Body) != `{"upstream":true}` {
		t.Fatalf("API = %d %s, want the upstream's answer", r.Status, r.Body)
	}
	if up.Count() != before+1 {
		t.Fatal("the API request did not reach the upstream once")
	}
	got := up.Last(t)
	bearer := got.Header.Get("Authorization")
	if !strings.HasPrefix(bearer, "Bearer ") || len(bearer) < 20 {
		t.Fatalf("upstream Authorization = %q, want a bearer token", bearer)
	}
	if ck := got.Header.Get("Cookie"); strings.Contains(ck, "__Host-app") || strings.Contains(ck, sessionID) || !strings.Contains(ck, "theme=dark") {
		t.Fatalf("upstream Cookie = %q, want theme=dark without the session cookie", ck)
	}
	if v := got.Header.Values("X-User"); len(v) != 1 || v[0] != "alice" {
		t.Fatalf("upstream X-User = %q, want [alice]", v)
	}
	if got.Method != "POST" || got.URL.Path != "/api/orders" || got.URL.RawQuery != "page=2" {
		t.Fatalf("upstream got %s %s, want POST /api/orders?page=2", got.Method, got.URL)
	}
	if strings.Contains(string(r.Body), strings.TrimPrefix(bearer, "Bearer ")) {
		t.Fatal("the access token reached the browser")
	}

	// The provider's tokens live 20 s and refresh_skew is 17 s: from 3 s
	// after login on, an API request refreshes first. Wait for the new
	// bearer upstream (at most 15 s).
	deadline := time.Now().Add(15 * time.Second)
	refreshed := ""
	for refreshed == "" {
		if time.Now().After(deadline) {
			t.Fatal("the upstream never saw a refreshed access token")
		}
		time.Sleep(500 * time.Millisecond)
		r = do(t, c, "GET", "/app/api/orders", "X-CSRF", "1")
		if r.Status != http.StatusOK {
			t.Fatalf("API during refresh = %d (body %s)", r.Status, r.Body)
		}
		if b := up.Last(t).Header.Get("Authorization"); b != bearer {
			refreshed = b
		}
	}
	if !strings.HasPrefix(refreshed, "Bearer ") {
		t.Fatalf("refreshed Authorization = %q", refreshed)
	}
	if cookie(c, "__Host-app") != sessionID {
		t.Fatal("refresh changed the session cookie")
	}

	// Logout needs the CSRF header; then the session is over.
	do(t, c, "POST", "/app/logout").WantError(t, http.StatusForbidden, "csrf_header_missing")
	r = do(t, c, "POST", "/app/logout", "X-CSRF", "1")
	if r.Status != http.StatusOK {
		t.Fatalf("/app/logout status = %d (body %s)", r.Status, r.Body)
	}
	lu, _ := url.Parse(r.JSON(t)["logoutUrl"].(string))
	if !strings.HasPrefix(lu.String(), opSrv.Issuer) || lu.Query().Get("post_logout_redirect_uri") != gw.URL+"/app/logout/callback" {
		t.Fatalf("logoutUrl = %s", lu)
	}
	if sc := strings.Join(r.Header.Values("Set-Cookie"), "\n"); !strings.Contains(sc, "__Host-app=") || !strings.Contains(sc, "Max-Age=0") {
		t.Fatalf("logout did not clear the session cookie: %q", sc)
	}
	before = up.Count()
	do(t, c, "GET", "/app/api/orders", "X-CSRF", "1").WantError(t, http.StatusUnauthorized, "unauthenticated")
	if up.Count() != before {
		t.Fatal("a request after logout reached the upstream")
	}
	back, err := opSrv.ConfirmLogout(context.Background(), c, lu.String())
	if err != nil {
		t.Fatal(err)
	}
	r = do(t, c, "GET", back.String())
	if r.Status != http.StatusFound || r.Header.Get("Location") != "/" {
		t.Fatalf("logout callback = %d %q, want 302 to /", r.Status, r.Header.Get("Location"))
	}
}

// TestLoginResponse: the hook's own answers reach the client as written,
// with several Set-Cookie headers, and end the chain.
func TestLoginResponse(t *testing.T) {
	c := browser()
	// Two logins in flight: two login cookies.
	do(t, c, "GET", "/app/login")
	before := up.Count()
	r := do(t, c, "GET", "/app/login?returnTo=%2Fapp%2Fx")
	if r.Status != http.StatusFound || !strings.HasPrefix(r.Header.Get("Location"), opSrv.Issuer) {
		t.Fatalf("/app/login = %d to %q, want 302 to the provider", r.Status, r.Header.Get("Location"))
	}
	if sc := r.Header.Values("Set-Cookie"); len(sc) < 1 || !strings.Contains(sc[0], "HttpOnly") {
		t.Fatalf("/app/login Set-Cookie = %q", sc)
	}
	u, _ := url.Parse(gw.URL)
	n := 0
	for _, ck := range c.Jar.Cookies(u) {
		if strings.HasPrefix(ck.Name, "__Host-app-login-") {
			n++
		}
	}
	if n != 2 {
		t.Fatalf("the browser holds %d login cookies, want 2", n)
	}
	if up.Count() != before {
		t.Fatal("a request the hook answered reached the upstream")
	}
}

func TestTokenMediating(t *testing.T) {
	c := browser()
	login(t, c, "/tm")
	do(t, c, "GET", "/tm/token").WantError(t, http.StatusForbidden, "csrf_header_missing")
	r := do(t, c, "GET", "/tm/token", "X-CSRF", "1")
	if r.Status != http.StatusOK {
		t.Fatalf("/tm/token status = %d (body %s)", r.Status, r.Body)
	}
	tok := r.JSON(t)
	at, _ := tok["access_token"].(string)
	if at == "" || tok["token_type"] != "Bearer" {
		t.Fatalf("/tm/token = %s", r.Body)
	}
	if _, has := tok["refresh_token"]; has {
		t.Fatal("/tm/token revealed a refresh token")
	}
	if exp, _ := tok["expires_in"].(float64); exp <= 0 || exp > accessTTL.Seconds() {
		t.Fatalf("expires_in = %v, want within the token's %v", tok["expires_in"], accessTTL)
	}
	intro, err := opSrv.Introspect(context.Background(), at)
	if err != nil {
		t.Fatal(err)
	}
	if intro["active"] != true || intro["sub"] != "alice" {
		t.Fatalf("introspection of the handed-out token = %v", intro)
	}
	// The bff-mode API has no token endpoint, and /tm's session is not
	// /app's.
	do(t, c, "GET", "/app/token", "X-CSRF", "1").WantError(t, http.StatusNotFound, "not_found")
	do(t, c, "GET", "/app/api/x", "X-CSRF", "1").WantError(t, http.StatusUnauthorized, "unauthenticated")
	if r := do(t, c, "GET", "/tm/api/x", "X-CSRF", "1"); r.Status != http.StatusOK {
		t.Fatalf("/tm API status = %d (body %s)", r.Status, r.Body)
	}
}

// TestBackchannelLogout: the provider POSTs a logout token to the hook,
// which reads the body from Tyk's request.
func TestBackchannelLogout(t *testing.T) {
	a := browser()
	login(t, a, "/app")
	// A second BFF session sharing the provider session (its cookies
	// copied, not the BFF's).
	b := browser()
	opURL, _ := url.Parse(opSrv.Issuer)
	var shared []*http.Cookie
	for _, ck := range a.Jar.Cookies(opURL) {
		if !strings.HasPrefix(ck.Name, "__Host-") {
			shared = append(shared, ck)
		}
	}
	b.Jar.SetCookies(opURL, shared)
	login(t, b, "/app")
	if r := do(t, b, "GET", "/app/api/x", "X-CSRF", "1"); r.Status != http.StatusOK {
		t.Fatalf("second session API status = %d", r.Status)
	}
	r := do(t, a, "POST", "/app/logout", "X-CSRF", "1")
	before, _ := opSrv.Stats(context.Background())
	if _, err := opSrv.ConfirmLogout(context.Background(), a, r.JSON(t)["logoutUrl"].(string)); err != nil {
		t.Fatal(err)
	}
	after, _ := opSrv.Stats(context.Background())
	if after.Backchannel <= before.Backchannel {
		t.Fatal("the provider sent no back-channel logout")
	}
	do(t, b, "GET", "/app/api/x", "X-CSRF", "1").WantError(t, http.StatusUnauthorized, "invalid_session")
}

func TestRefusals(t *testing.T) {
	c := browser()
	login(t, c, "/app")
	good := cookie(c, "__Host-app")
	forged := browser()
	u, _ := url.Parse(gw.URL)
	forged.Jar.SetCookies(u, []*http.Cookie{{Name: "__Host-app", Value: strings.Repeat("A", 43)}})

	for _, tt := range []struct {
		name   string
		c      *http.Client
		method string
		path   string
		header []string
		status int
		code   string
	}{
		{"no CSRF header", c, "GET", "/app/api/x", nil, 403, "csrf_header_missing"},
		{"wrong CSRF value", c, "POST", "/app/api/x", []string{"X-CSRF", "0"}, 403, "csrf_header_missing"},
		{"foreign Origin", c, "POST", "/app/api/x", []string{"X-CSRF", "1", "Origin", "https://evil.example"}, 403, "origin_not_allowed"},
		{"forged cookie", forged, "GET", "/app/api/x", []string{"X-CSRF", "1"}, 401, "invalid_session"},
		{"no session, XHR", browser(), "GET", "/app/api/x", []string{"X-CSRF", "1", "Accept", "application/json"}, 401, "unauthenticated"},
		{"no session, page load", browser(), "GET", "/app/page", []string{"X-CSRF", "1", "Accept", "text/html"}, 401, "unauthenticated"},
		{"open redirect", browser(), "GET", "/app/login?returnTo=%2F%2Fevil.example", nil, 400, "invalid_return_to"},
		{"open redirect, absolute", browser(), "GET", "/app/login?returnTo=https%3A%2F%2Fevil.example%2F", nil, 400, "invalid_return_to"},
		{"callback without login", browser(), "GET", "/app/oauth/callback?code=x&state=y", nil, 400, "invalid_state"},
		{"path outside every API", c, "GET", "/elsewhere/x", []string{"X-CSRF", "1"}, 500, "bffgate_no_api"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			before := up.Count()
			r := do(t, tt.c, tt.method, tt.path, tt.header...)
			r.WantError(t, tt.status, tt.code)
			if loc := r.Header.Get("Location"); loc != "" {
				t.Fatalf("a refusal redirects to %q", loc)
			}
			if up.Count() != before {
				t.Fatal("a refused request reached the upstream")
			}
		})
	}
	// The refusals left the good session alone.
	if r := do(t, c, "GET", "/app/api/x", "X-CSRF", "1"); r.Status != http.StatusOK || cookie(c, "__Host-app") != good {
		t.Fatalf("the session did not survive the refusals: %d", r.Status)
	}
}

// TestHostProxiesWithoutHook checks the host itself: an API without the
// hook is proxied untouched.
func TestHostProxiesWithoutHook(t *testing.T) {
	c := browser()
	r := do(t, c, "GET", "/open/x?y=1", "Authorization", "Bearer client")
	if r.Status != http.StatusOK {
		t.Fatalf("status = %d", r.Status)
	}
	if got := up.Last(t); got.URL.Path != "/x" || got.Header.Get("Authorization") != "Bearer client" {
		t.Fatalf("upstream got %s with Authorization %q", got.URL, got.Header.Get("Authorization"))
	}
	if r := do(t, c, "GET", "/nowhere"); r.Status != http.StatusNotFound {
		t.Fatalf("no API: status = %d, want 404", r.Status)
	}
}
