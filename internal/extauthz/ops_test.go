package extauthz

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/bffgate/bffgate/tests/flowtest"
)

// TestAccessLog: one line per request to bffgate, naming the request the
// proxy asks about (its method and path, never the query), the app and
// bffgate's answer, and nothing of the session but a tag.
func TestAccessLog(t *testing.T) {
	var logs flowtest.SyncBuffer
	f := newFixture(t, func(c *Config) {
		c.Apps[0].Name = "shop"
		c.Apps[0].BFF.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	})
	sess := strings.TrimPrefix(f.cookie, "__Host-bffgate=")
	for _, tt := range []struct {
		name   string
		target string
		header []string
		want   []string
	}{
		{"nginx allow", PathNginx, []string{"X-Original-Method", "POST", "X-Original-Uri", "/api/orders?code=secret-code", "Cookie", f.cookie, "X-Csrf", "1"},
			[]string{"method=POST", "path=/api/orders", "status=200", "app=shop", "session="}},
		{"forward denial", PathForward, []string{"X-Forwarded-Method", "GET", "X-Forwarded-Uri", "/api/x?state=secret-state", "X-Forwarded-Host", "app.example", "X-Csrf", "1"},
			[]string{"method=GET", "path=/api/x", "status=401", "app=shop"}},
		{"envoy", PathEnvoy + "/api/e?x=1", []string{"Cookie", f.cookie, "X-Csrf", "1"},
			[]string{"method=GET", "path=/api/e", "status=200", "app=shop"}},
		{"malformed: bffgate's own path", PathNginx, []string{"X-Original-Method", "GET", "X-Original-Uri", "api"},
			[]string{"method=GET", "path=" + PathNginx, "status=400"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			before := len(logs.String())
			f.check("GET", tt.target, tt.header...)
			line := logs.String()[before:]
			if strings.Count(line, "\n") != 1 {
				t.Fatalf("want one line, got %q", line)
			}
			for _, w := range tt.want {
				if !strings.Contains(line, w) {
					t.Errorf("the line lacks %q: %s", w, line)
				}
			}
			for _, secret := range []string{sess, "access-token", "secret-code", "secret-state", "x=1"} {
				if strings.Contains(line, secret) {
					t.Errorf("the line holds %q: %s", secret, line)
				}
			}
		})
	}
	t.Run("off", func(t *testing.T) {
		var quiet flowtest.SyncBuffer
		f := newFixture(t, func(c *Config) {
			c.AccessLog = "off"
			c.Apps[0].BFF.Logger = slog.New(slog.NewTextHandler(&quiet, nil))
		})
		if w := f.check("GET", PathNginx, "X-Original-Method", "GET", "X-Original-Uri", "/api/orders", "Cookie", f.cookie, "X-Csrf", "1"); w.Code != 200 {
			t.Fatalf("status %d", w.Code)
		}
		if quiet.String() != "" {
			t.Fatalf("access_log off logged %q", quiet.String())
		}
	})
	if _, err := New(&Config{AccessLog: "yes", Apps: []App{{BFF: testBFF(nil)}}}); err == nil || !strings.Contains(err.Error(), "access_log") {
		t.Fatalf("access_log \"yes\": %v, want an error naming the field", err)
	}
}

// TestAdmin: with admin_listen, /healthz, /readyz (every app: the
// fixture's provider is unreachable, so not ready) and /metrics, which
// count the decisions; without it, no admin handler.
func TestAdmin(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.AdminListen = "127.0.0.1:0" })
	f.check("GET", PathNginx, "X-Original-Method", "GET", "X-Original-Uri", "/api/orders", "Cookie", f.cookie, "X-Csrf", "1")
	admin := httptest.NewServer(f.s.Admin())
	defer admin.Close()
	for _, tt := range []struct {
		path   string
		status int
		want   string
	}{
		{"/healthz", 200, `"ok"`},
		{"/readyz", 503, "apps[0]"},
		{"/metrics", 200, `bffgate_requests_total{kind="api",outcome="forwarded"} 1`},
	} {
		resp, err := http.Get(admin.URL + tt.path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tt.status || !strings.Contains(string(body), tt.want) {
			t.Errorf("GET %s = %d %.300s, want %d with %q", tt.path, resp.StatusCode, body, tt.status, tt.want)
		}
	}
	if g := newFixture(t, nil); g.s.Admin() != nil {
		t.Error("an admin handler without admin_listen")
	}
	stop, err := ServeAdmin("127.0.0.1:0", f.s.Admin())
	if err != nil {
		t.Fatal(err)
	}
	stop()
}
