package bff_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bffgate/bffgate/core/bff"
	"github.com/bffgate/bffgate/core/session/redisstore"
	"github.com/bffgate/bffgate/core/session/redisstore/redistest"
	"github.com/bffgate/bffgate/tests/flowtest"
	"github.com/bffgate/bffgate/tests/op"
)

// The user's list of sessions (issue #16 item 4), against the real
// provider, on the memory store and on real Redis.

const (
	firefoxLinux  = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
	chromeAndroid = "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Mobile Safari/537.36"
	safariMac     = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15"
)

// loginAs logs a new browser in as user, its callback sent with the
// User-Agent ua.
func (e *env) loginAs(user, password, ua string) *http.Client {
	e.t.Helper()
	c := e.browser()
	r := e.do(c, "GET", e.authorize(c, e.startLogin(c, ""), user, password), "User-Agent", ua)
	if r.Status != http.StatusFound {
		e.t.Fatalf("callback status = %d (body %s)", r.Status, r.Body)
	}
	return c
}

type listed struct {
	ID       string    `json:"id"`
	Current  bool      `json:"current"`
	Device   string    `json:"device"`
	Created  time.Time `json:"createdAt"`
	LastSeen time.Time `json:"lastSeenAt"`
	Ends     time.Time `json:"endsAt"`
}

// list GETs the browser's list of sessions.
func (e *env) list(c *http.Client) ([]listed, *flowtest.Response) {
	e.t.Helper()
	r := e.do(c, "GET", "/sessions", "X-CSRF", "1")
	if r.Status != http.StatusOK {
		e.t.Fatalf("GET /sessions = %d (body %s)", r.Status, r.Body)
	}
	var body struct{ Sessions []listed }
	decodeJSON(e.t, r.Body, &body)
	return body.Sessions, r
}

func TestSessionList(t *testing.T) {
	for _, store := range []string{"memory", "redis", "observed", "token-mediating"} {
		t.Run(store, func(t *testing.T) {
			var e *env
			var mu sync.Mutex
			var ended []string
			edit := func(c *bff.Config) {
				c.SessionEnded = func(keys []string) { mu.Lock(); ended = append(ended, keys...); mu.Unlock() }
			}
			switch store {
			case "redis":
				e = redisEnv(t, redisstore.Config{URL: redistest.URL(t)}, edit)
			case "observed": // the store wrapped for an Observer still lists
				obs := &recorder{counts: map[string]int{}}
				e = newEnv(t, func(c *bff.Config) { edit(c); c.Observer = obs })
				defer func() {
					if obs.get("store members true") == 0 {
						t.Error("the Observer saw no members call")
					}
				}()
			case "token-mediating":
				e = newEnv(t, func(c *bff.Config) { edit(c); c.Mode = bff.ModeTokenMediating })
			default:
				e = newEnv(t, edit)
			}
			testSessionList(t, e, func() int { mu.Lock(); defer mu.Unlock(); return len(ended) })
		})
	}
}

func testSessionList(t *testing.T, e *env, endedCount func() int) {
	laptop := e.loginAs(op.AliceUser, op.AlicePassword, firefoxLinux)
	phone := e.loginAs(op.AliceUser, op.AlicePassword, chromeAndroid)
	bob := e.loginAs(op.BobUser, op.BobPassword, safariMac)
	e.apiOK(laptop)
	token := strings.TrimPrefix(e.up.Last(t).Header.Get("Authorization"), "Bearer ")

	got, r := e.list(laptop)
	if len(got) != 2 {
		t.Fatalf("alice's list has %d sessions, want her 2 (body %s)", len(got), r.Body)
	}
	byDevice := map[string]listed{}
	for _, l := range got {
		byDevice[l.Device] = l
	}
	mine, other := byDevice["Firefox on Linux"], byDevice["Chrome on Android"]
	if !mine.Current || other.Current || other.ID == "" || mine.ID == other.ID {
		t.Fatalf("list = %+v: want the laptop's (current) and the phone's", got)
	}
	if mine.Created.IsZero() || mine.LastSeen.Before(mine.Created) || !mine.Ends.After(mine.Created) {
		t.Fatalf("laptop's times = %+v", mine)
	}
	for _, secret := range []string{token, e.cookieOf(laptop), e.cookieOf(phone), e.cookieOf(bob), "Safari", "bob"} {
		if secret != "" && bytes.Contains(r.Body, []byte(secret)) {
			t.Fatalf("the list shows %q (a token, a cookie, or another user's session): %s", secret, r.Body)
		}
	}
	bobs, _ := e.list(bob)
	if len(bobs) != 1 || !bobs[0].Current || bobs[0].Device != "Safari on macOS" {
		t.Fatalf("bob's list = %+v, want his one session", bobs)
	}

	// Refused: no CSRF header, a foreign Origin, no session, a POST.
	e.do(laptop, "GET", "/sessions").WantError(t, http.StatusForbidden, "csrf_header_missing")
	e.do(laptop, "DELETE", "/sessions/"+other.ID).WantError(t, http.StatusForbidden, "csrf_header_missing")
	e.do(laptop, "DELETE", "/sessions/"+other.ID, "X-CSRF", "1", "Origin", "https://evil.example").WantError(t, http.StatusForbidden, "origin_not_allowed")
	e.do(e.browser(), "GET", "/sessions", "X-CSRF", "1").WantError(t, http.StatusUnauthorized, "unauthenticated")
	e.do(laptop, "POST", "/sessions", "X-CSRF", "1").WantError(t, http.StatusMethodNotAllowed, "method_not_allowed")

	// Another user's session ID is not found, exactly as an unknown one:
	// no oracle; bob's session lives on.
	foreign := e.do(laptop, "DELETE", "/sessions/"+bobs[0].ID, "X-CSRF", "1")
	unknown := e.do(laptop, "DELETE", "/sessions/AAAAAAAAAAAAAAAAAAAAAA", "X-CSRF", "1")
	foreign.WantError(t, http.StatusNotFound, "not_found")
	if !bytes.Equal(foreign.Body, unknown.Body) {
		t.Fatalf("another user's ID answers %s, an unknown one %s: they must not differ", foreign.Body, unknown.Body)
	}
	e.apiOK(bob)

	// Ending the phone's session from the laptop.
	before := endedCount()
	if r := e.do(laptop, "DELETE", "/sessions/"+other.ID, "X-CSRF", "1"); r.Status != http.StatusNoContent {
		t.Fatalf("DELETE the phone's session = %d (body %s)", r.Status, r.Body)
	}
	e.do(phone, "GET", "/api/x", "X-CSRF", "1").WantError(t, http.StatusUnauthorized, "invalid_session")
	e.apiOK(laptop)
	if endedCount() != before+1 {
		t.Fatalf("SessionEnded was called %d times for one ended session", endedCount()-before)
	}
	if got, _ := e.list(laptop); len(got) != 1 || !got[0].Current {
		t.Fatalf("list after ending the phone's = %+v", got)
	}
	// Ending one's own: the cookie goes too.
	r = e.do(laptop, "DELETE", "/sessions/"+mine.ID, "X-CSRF", "1")
	if r.Status != http.StatusNoContent || !strings.Contains(strings.Join(r.Header.Values("Set-Cookie"), "\n"), "__Host-bffgate=;") {
		t.Fatalf("DELETE own session = %d, Set-Cookie %q", r.Status, r.Header.Values("Set-Cookie"))
	}
	e.do(laptop, "GET", "/api/x", "X-CSRF", "1").WantError(t, http.StatusUnauthorized, "unauthenticated")
}

// TestSessionCap: past session_max_per_user, a login ends the user's
// oldest sessions; other users' are untouched.
func TestSessionCap(t *testing.T) {
	e := redisEnv(t, redisstore.Config{URL: redistest.URL(t)}, func(c *bff.Config) { c.SessionMaxPerUser = 2 })
	bob := e.loginAs(op.BobUser, op.BobPassword, safariMac)
	first := e.loginAs(op.AliceUser, op.AlicePassword, firefoxLinux)
	e.clock.Advance(time.Second) // creation times apart by the engine's clock
	second := e.loginAs(op.AliceUser, op.AlicePassword, chromeAndroid)
	e.clock.Advance(time.Second)
	e.apiOK(first)
	e.apiOK(second)
	third := e.loginAs(op.AliceUser, op.AlicePassword, safariMac)
	e.do(first, "GET", "/api/x", "X-CSRF", "1").WantError(t, http.StatusUnauthorized, "invalid_session")
	e.apiOK(second)
	e.apiOK(third)
	e.apiOK(bob)
	if got, _ := e.list(third); len(got) != 2 {
		t.Fatalf("alice has %d sessions, want the cap, 2", len(got))
	}
}

// TestSessionExpiryFields: /session says when the session idles out and
// when it ends.
func TestSessionExpiryFields(t *testing.T) {
	e := newEnv(t, func(c *bff.Config) { c.SessionIdleTimeout = 600; c.SessionMaxLifetime = 3600 })
	c := e.loginAs(op.AliceUser, op.AlicePassword, firefoxLinux)
	var info struct {
		ExpiresAt, IdleExpiresAt, AbsoluteExpiresAt time.Time
	}
	decodeJSON(t, e.do(c, "GET", "/session").Body, &info)
	now := e.clock.Now()
	if d := info.IdleExpiresAt.Sub(now); d < 598*time.Second || d > 600*time.Second {
		t.Fatalf("idleExpiresAt is %v from now, want 600 s", d)
	}
	if d := info.AbsoluteExpiresAt.Sub(now); d < 3590*time.Second || d > 3600*time.Second {
		t.Fatalf("absoluteExpiresAt is %v from now, want 3600 s", d)
	}
	if !info.ExpiresAt.Equal(info.IdleExpiresAt) {
		t.Fatalf("expiresAt %v, want the earlier, idleExpiresAt %v", info.ExpiresAt, info.IdleExpiresAt)
	}
	for range 6 { // used every 500 s, so it does not idle out
		e.clock.Advance(500 * time.Second)
		if r := e.do(c, "GET", "/session"); r.Status != http.StatusOK {
			t.Fatalf("/session = %d", r.Status)
		}
	}
	e.clock.Advance(100 * time.Second)
	r := e.do(c, "GET", "/session")
	if r.Status != http.StatusOK {
		t.Fatalf("/session = %d", r.Status)
	}
	decodeJSON(t, r.Body, &info)
	if !info.ExpiresAt.Equal(info.AbsoluteExpiresAt) {
		t.Fatalf("near the end, expiresAt %v, want absoluteExpiresAt %v", info.ExpiresAt, info.AbsoluteExpiresAt)
	}
}

func decodeJSON(t *testing.T, body []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(body, v); err != nil {
		t.Fatalf("body %q: %v", body, err)
	}
}

// cookieOf is the browser's session cookie value.
func (e *env) cookieOf(c *http.Client) string { return e.sessionCookie(c) }
