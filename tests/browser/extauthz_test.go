package browser

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bffgate/bffgate/core/bff"
	"github.com/bffgate/bffgate/internal/extauthz"
	"github.com/bffgate/bffgate/internal/extauthz/extauthztest"
	"github.com/bffgate/bffgate/tests/browser/browsertest"
	"github.com/bffgate/bffgate/tests/flowtest"
	"github.com/bffgate/bffgate/tests/op"
)

// TestExtauthzInChromium runs login.mjs — headless Chromium through a
// real login at the test OpenID Provider, API calls and logout — through
// a REAL nginx (auth_request) and a REAL Caddy (forward_auth spelled out),
// each started on loopback with docs/extauthz.md's configuration (plus
// the SPA's files served by the proxy itself), in front of the echo API,
// with bffgate extauthz deciding. It searches everything the browser got
// for the session's tokens (checkRecording, as for bffgate serve), and
// checks what reached the upstream: the bearer and the identity headers,
// never the session cookie; nothing without a session.
func TestExtauthzInChromium(t *testing.T) {
	chromium := browsertest.Prerequisites(t)
	artifacts := browsertest.Artifacts(t)
	for _, proxy := range []string{"nginx", "caddy"} {
		t.Run(proxy, func(t *testing.T) {
			const secret = "browser-test-shared-secret-0123"
			port := extauthztest.FreePort(t)
			st := &stack{URL: fmt.Sprintf("http://127.0.0.1:%d", port), Store: newRecordingStore(), Tokens: &tokenRecorder{}, Logs: &flowtest.SyncBuffer{}}
			st.OP = op.StartT(t, op.Options{
				RedirectURIs:           []string{st.URL + "/oauth/callback"},
				PostLogoutRedirectURIs: []string{st.URL + "/logout/callback"},
				Stderr:                 st.Logs,
			})
			api := extauthztest.StartAPI(t, func() *op.Server { return st.OP })
			srv, err := extauthz.New(&extauthz.Config{Secret: secret, Apps: []extauthz.App{{BFF: bff.Config{
				Issuer: st.OP.Issuer, ClientID: st.OP.ClientID, ClientSecret: st.OP.ClientSecret,
				RedirectURL:           st.URL + "/oauth/callback",
				PostLogoutRedirectURL: st.URL + "/logout/callback",
				CookieKeys:            []string{"MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="},
				Mode:                  bff.ModeBFF,
				IdentityHeaders:       []bff.IdentityHeader{{Header: "X-User", Claim: "sub"}, {Header: "X-User-Email", Claim: "email"}},
				Store:                 st.Store,
				HTTPClient:            &http.Client{Timeout: 10 * time.Second, Transport: &browsertest.TokenTap{Seen: st.Tokens.seen}},
				Logger:                slog.New(slog.NewTextHandler(st.Logs, nil)),
			}}}})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { srv.Close() })
			authz := httptest.NewServer(srv)
			t.Cleanup(authz.Close)
			extauthztest.Start(t, proxy, port, extauthztest.Vars{
				Authz: extauthztest.HostOf(authz.URL), API: extauthztest.HostOf(api.URL), Secret: secret,
				Identity: []string{"X-User", "X-User-Email"}, Static: browsertest.SPADir(),
			})

			apiCall := func(t *testing.T, cookie, code string) {
				t.Helper()
				req, _ := http.NewRequest("GET", st.URL+"/api/whoami", nil)
				req.Header.Set("X-CSRF", "1")
				if cookie != "" {
					req.Header.Set("Cookie", browsertest.SessionCookie+"="+cookie)
				}
				before := api.Count()
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(string(body), `"error":"`+code+`"`) {
					t.Errorf("GET /api/whoami without a live session: %d %s, want 401 %s", resp.StatusCode, body, code)
				}
				if api.Count() != before {
					t.Error("the upstream was reached without a session")
				}
			}
			t.Run("no session: nothing reaches the upstream", func(t *testing.T) { apiCall(t, "", "unauthenticated") })

			dir := filepath.Join(artifacts, "extauthz-"+proxy)
			rec := browsertest.Run(t, browsertest.Script{URL: st.URL, Mode: bff.ModeBFF, Chromium: chromium, Artifacts: dir, Logs: st.Logs.String})
			if rec == nil {
				return
			}
			checkRecording(t, st, bff.ModeBFF, rec)

			// What reached the upstream, ever: the SPA's API calls, each
			// with the bearer and the session's identity, none with a
			// BFF cookie or the shared secret.
			reqs := api.Requests()
			if len(reqs) == 0 {
				t.Fatal("the upstream was never reached")
			}
			for _, r := range reqs {
				if !strings.HasPrefix(r.Header.Get("Authorization"), "Bearer ") {
					t.Errorf("the upstream got %s %s without a bearer", r.Method, r.URL)
				}
				if strings.Contains(r.Header.Get("Cookie"), "__Host-") {
					t.Errorf("the upstream got a BFF cookie on %s %s", r.Method, r.URL)
				}
				if r.Header.Get(extauthz.DefaultSecretHeader) != "" {
					t.Errorf("the upstream got the shared secret on %s %s", r.Method, r.URL)
				}
				if r.Header.Get("X-User") != op.AliceUser || !strings.Contains(r.Header.Get("X-User-Email"), "@") {
					t.Errorf("the upstream got X-User %q, X-User-Email %q", r.Header.Get("X-User"), r.Header.Get("X-User-Email"))
				}
			}
			// The session the browser held is gone: its cookie, replayed,
			// reaches nothing.
			for _, id := range rec.SessionCookies {
				t.Run("logged-out session: nothing reaches the upstream", func(t *testing.T) { apiCall(t, id, "invalid_session") })
			}
		})
	}
}
