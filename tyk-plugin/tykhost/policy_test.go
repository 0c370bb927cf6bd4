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
		if r.status != http.StatusFound {
			t.Fatalf("/adm/login: %d %s", r.status, r.body)
		}
		cb, err := opSrv.LoginWith(context.Background(), c, r.header.Get("Location"), user, password, opts)
		if err != nil {
			t.Fatal(err)
		}
		if r := do(t, c, "GET", cb.String()); r.status != http.StatusFound {
			t.Fatalf("callback: %d %s", r.status, r.body)
		}
	}
	alice := browser()
	loginAs(alice, "", op.AliceUser, op.AlicePassword, op.LoginOptions{})
	before := up.count()
	r := do(t, alice, "GET", "/adm/api/users", "X-CSRF", "1")
	wantError(t, r, http.StatusUnauthorized, "insufficient_user_authentication")
	if r.json(t)["acr_values"] != op.ACRMFA || up.count() != before {
		t.Fatalf("step-up answer %s; upstream %d → %d", r.body, before, up.count())
	}
	loginAs(alice, "?acr_values="+url.QueryEscape(op.ACRMFA), op.AliceUser, op.AlicePassword, op.LoginOptions{OTP: op.AliceOTP})
	if r := do(t, alice, "GET", "/adm/api/users", "X-CSRF", "1"); r.status != http.StatusOK || up.count() != before+1 {
		t.Fatalf("after step-up: %d %s, upstream %d → %d", r.status, r.body, before, up.count())
	}

	bob := browser()
	loginAs(bob, "", op.BobUser, op.BobPassword, op.LoginOptions{OTP: op.BobOTP})
	before = up.count()
	wantError(t, do(t, bob, "GET", "/adm/api/users", "X-CSRF", "1"), http.StatusForbidden, "insufficient_scope")
	if up.count() != before {
		t.Fatal("bob's refused request reached the upstream")
	}
}
