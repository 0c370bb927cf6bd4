package tykhost_test

import (
	"context"
	"net/http"
	"net/url"
	"testing"

	"github.com/bffgate/bffgate/tests/op"
)

// TestTykAPIPolicy: the /adm/ API's config has a policy (groups admin, a
// two-factor acr). Through the real bffgate.so in the Tyk-contract host,
// against the real OP: a session that lacks it is answered by the hook and
// the request never reaches the upstream; a step-up opens it.
func TestTykAPIPolicy(t *testing.T) {
	loginAs := func(c *http.Client, query, user, password string, opts op.LoginOptions) {
		t.Helper()
		r := do(t, c, "GET", "/adm/login"+query)
		if r.Status != http.StatusFound {
			t.Fatalf("/adm/login: %d %s", r.Status, r.Body)
		}
		cb, err := opSrv.LoginWith(context.Background(), c, r.Header.Get("Location"), user, password, opts)
		if err != nil {
			t.Fatal(err)
		}
		if r := do(t, c, "GET", cb.String()); r.Status != http.StatusFound {
			t.Fatalf("callback: %d %s", r.Status, r.Body)
		}
	}
	alice := browser()
	loginAs(alice, "", op.AliceUser, op.AlicePassword, op.LoginOptions{})
	before := up.Count()
	r := do(t, alice, "GET", "/adm/api/users", "X-CSRF", "1")
	r.WantError(t, http.StatusUnauthorized, "insufficient_user_authentication")
	if r.JSON(t)["acr_values"] != op.ACRMFA || up.Count() != before {
		t.Fatalf("step-up answer %s; upstream %d → %d", r.Body, before, up.Count())
	}
	loginAs(alice, "?acr_values="+url.QueryEscape(op.ACRMFA), op.AliceUser, op.AlicePassword, op.LoginOptions{OTP: op.AliceOTP})
	if r := do(t, alice, "GET", "/adm/api/users", "X-CSRF", "1"); r.Status != http.StatusOK || up.Count() != before+1 {
		t.Fatalf("after step-up: %d %s, upstream %d → %d", r.Status, r.Body, before, up.Count())
	}

	bob := browser()
	loginAs(bob, "", op.BobUser, op.BobPassword, op.LoginOptions{OTP: op.BobOTP})
	before = up.Count()
	do(t, bob, "GET", "/adm/api/users", "X-CSRF", "1").WantError(t, http.StatusForbidden, "insufficient_scope")
	if up.Count() != before {
		t.Fatal("bob's refused request reached the upstream")
	}
}
