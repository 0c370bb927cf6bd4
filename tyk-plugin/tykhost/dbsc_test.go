package tykhost_test

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/bffgate/bffgate/tests/flowtest"
	"github.com/bffgate/bffgate/tests/op"
)

// TestDBSC: the real bffgate.so answers DBSC's endpoints below the API's
// listen path (/tm/, which has dbsc on) in the host with Tyk's contract:
// the offer on the callback, the registration and its bound cookie, a
// registered session refused without it, the 403 challenge and the
// signed refresh. Not tested in a real Tyk gateway, which cannot run here.
func TestDBSC(t *testing.T) {
	c := browser()
	r := do(t, c, "GET", "/tm/login")
	r = do(t, c, "GET", flowtest.Authorize(t, opSrv, c, r.Header.Get("Location"), op.AliceUser, op.AlicePassword))
	m := regexp.MustCompile(`path="/tm/dbsc/register";challenge="([^"]+)";authorization="([^"]+)"`).FindStringSubmatch(r.Header.Get("Secure-Session-Registration"))
	if r.Status != http.StatusFound || m == nil {
		t.Fatalf("callback = %d, Secure-Session-Registration %q", r.Status, r.Header.Get("Secure-Session-Registration"))
	}
	key := flowtest.NewDeviceKey(t)
	r = do(t, c, "POST", "/tm/dbsc/register", "Secure-Session-Response", key.Proof(t, true, m[1], m[2]))
	if r.Status != http.StatusOK || cookie(c, "__Host-tm-bound") == "" {
		t.Fatalf("register = %d %s", r.Status, r.Body)
	}
	id, _ := r.JSON(t)["session_identifier"].(string)
	if r := do(t, c, "GET", "/tm/api/x", "X-CSRF", "1"); r.Status != http.StatusOK {
		t.Fatalf("API with the bound cookie = %d %s", r.Status, r.Body)
	}
	if ck := up.Last(t).Header.Get("Cookie"); strings.Contains(ck, "__Host-tm") {
		t.Fatalf("upstream Cookie = %q", ck)
	}
	u, _ := url.Parse(gw.URL)
	bare := browser()
	bare.Jar.SetCookies(u, []*http.Cookie{{Name: "__Host-tm", Value: cookie(c, "__Host-tm")}})
	do(t, bare, "GET", "/tm/api/x", "X-CSRF", "1").WantError(t, http.StatusUnauthorized, "dbsc_refresh_required")

	r = do(t, c, "POST", "/tm/dbsc/refresh", "Sec-Secure-Session-Id", id)
	ch := regexp.MustCompile(`^"([^"]+)";id="`).FindStringSubmatch(r.Header.Get("Secure-Session-Challenge"))
	if r.Status != http.StatusForbidden || ch == nil {
		t.Fatalf("refresh without proof = %d, Secure-Session-Challenge %q", r.Status, r.Header.Get("Secure-Session-Challenge"))
	}
	r = do(t, c, "POST", "/tm/dbsc/refresh", "Sec-Secure-Session-Id", id, "Secure-Session-Response", key.Proof(t, false, ch[1], ""))
	if r.Status != http.StatusOK || !strings.HasPrefix(r.Header.Get("Set-Cookie"), "__Host-tm-bound=") {
		t.Fatalf("signed refresh = %d %s", r.Status, r.Body)
	}
}
