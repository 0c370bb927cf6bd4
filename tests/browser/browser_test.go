// Package browser runs the demo SPA in headless Chromium (login.mjs, with
// playwright-core and Debian's /usr/bin/chromium) through a real login at
// the test OpenID Provider, API calls and logout, in both BFF modes, and
// then searches everything the browser received and sent for the session's
// real tokens, which the test knows because it holds the session store.
//
// Prerequisites (the test fails, with the command to run, when one is
// missing; BFFGATE_SKIP_BROWSER=1 skips it instead):
//
//	apt-get install -y chromium
//	npm ci --prefix tests/op
//	npm ci --prefix sdk-js && npm --prefix sdk-js run build:demo
//	npm ci --prefix tests/browser
//
// Artifacts (screenshots, the browser's recording) go to tests/artifacts,
// or to $BFFGATE_ARTIFACTS.
//
// Running login.mjs and searching its recording are in package
// browsertest, which the same test behind the Tyk test host
// (tyk-plugin/tykhost) shares.
package browser

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/bffgate/bffgate/core/bff"
	"github.com/bffgate/bffgate/core/session"
	"github.com/bffgate/bffgate/tests/browser/browsertest"
)

func TestDemoInChromium(t *testing.T) {
	chromium := browsertest.Prerequisites(t)
	artifacts := browsertest.Artifacts(t)
	// One mode after the other: each run is a Chromium and two Node
	// processes, enough for a small machine.
	for _, mode := range []string{bff.ModeBFF, bff.ModeTokenMediating} {
		t.Run(mode, func(t *testing.T) {
			st := startStack(t, mode)
			rec := browsertest.Run(t, browsertest.Script{URL: st.URL, Mode: mode, Chromium: chromium, Artifacts: artifacts, Logs: st.Logs.String})
			if rec == nil {
				return
			}
			checkRecording(t, st, mode, rec)
			if t.Failed() {
				t.Logf("the browser's recording: %s", filepath.Join(artifacts, "recording-"+mode+".json"))
			}
		})
	}
}

// checkRecording searches what the browser received and sent for the
// tokens of every session the browser held, as the session store has them,
// and for every ID token the provider gave bffgate (browsertest.Check).
func checkRecording(t *testing.T, st *stack, mode string, rec *browsertest.Recording) {
	ps := browsertest.Places(rec)
	ids := browsertest.SessionCookies(rec, ps, st.URL)
	if len(ids) == 0 {
		t.Fatal("the browser never got a session cookie")
	}
	var secrets browsertest.Secrets
	keys := map[string]bool{}
	for _, id := range ids {
		versions, err := st.Store.versions(id)
		if err != nil {
			t.Fatal(err)
		}
		if len(versions) == 0 {
			t.Errorf("the session of cookie %.8s… was never stored", id)
		}
		for _, s := range versions {
			secrets.Add(browsertest.AccessToken, s.AccessToken)
			secrets.Add(browsertest.RefreshToken, s.RefreshToken)
			secrets.Add(browsertest.IDToken, s.IDToken)
		}
		pid, _ := session.ParseID(id)
		keys[pid.StoreKey()] = true
		// Logout deleted it.
		if _, err := st.Store.Get(context.Background(), pid.StoreKey(), 0); !errors.Is(err, session.ErrNotFound) {
			t.Errorf("after logout the session store still has the session (err %v)", err)
		}
	}
	// bffgate keeps no ID token in the session (logout_id_token_hint is
	// off): search for every one the provider gave it.
	for _, idt := range st.Tokens.IDTokens() {
		secrets.Add(browsertest.IDToken, idt)
	}
	for _, k := range st.Store.keys() {
		if !keys[k] {
			t.Errorf("the store holds a session (key %.8s…) whose cookie the browser never got: its tokens are not searched for", k)
		}
	}
	browsertest.Check(t, rec, ps, browsertest.Options{URL: st.URL, Mode: mode, Secrets: &secrets, Introspect: st.OP.Introspect})
}
