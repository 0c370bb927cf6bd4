package serve

import (
	"strings"
	"testing"
)

func TestLint(t *testing.T) {
	for _, tt := range []struct {
		name  string
		edit  func(c *Config)
		want  string // "" for no finding
		error bool
	}{
		{"clean", func(c *Config) {}, "", false},
		{"redirect path", func(c *Config) { c.BFF.RedirectURL = "http://127.0.0.1:8080/callback" }, `bff.redirect_url: its path "/callback" is not the callback path "/oauth/callback"`, true},
		{"redirect path with prefix", func(c *Config) {
			c.BFF.PathPrefix = "/app"
			c.BFF.RedirectURL = "http://127.0.0.1:8080/app/oauth/callback"
		}, "", false},
		{"plain issuer", func(c *Config) { c.BFF.Issuer = "http://idp.example.com" }, `bff.issuer: "http://idp.example.com" is plain http off loopback`, false},
		{"plain redirect", func(c *Config) { c.BFF.RedirectURL = "http://app.example.com/oauth/callback" }, "bff.redirect_url: \"http://app.example.com/oauth/callback\" is plain http", false},
		{"localhost is fine", func(c *Config) { c.BFF.Issuer = "http://localhost:9000" }, "", false},
		{"listen without host", func(c *Config) { c.Listen = ":8080" }, `listen: ":8080" has no host`, false},
		{"admin without host", func(c *Config) { c.AdminListen = ":9090" }, `admin_listen: ":9090" has no host`, false},
		{"milliseconds", func(c *Config) { c.BFF.HTTPTimeout = 5000 }, "bff.http_timeout: is 5000 seconds (1h23m20s): durations are in seconds", false},
		{"upstream ms", func(c *Config) { c.Limits.UpstreamTimeout = 300000 }, "limits.upstream_timeout: is 300000 seconds", false},
		{"idle seconds", func(c *Config) {
			c.BFF.SessionIdleTimeout = 5
			c.BFF.SessionMaxLifetime = 3600
		}, "bff.session_idle_timeout: is 5 seconds: that is too short", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := testConfig(t, "http://127.0.0.1:9000")
			tt.edit(c)
			got := Lint(c)
			if tt.want == "" {
				if len(got) != 0 {
					t.Fatalf("Lint = %v, want nothing", got)
				}
				return
			}
			if len(got) != 1 || !strings.Contains(got[0].String(), tt.want) || got[0].Warning == tt.error {
				t.Fatalf("Lint = %v, want one %s with %q", got, map[bool]string{true: "error", false: "warning"}[tt.error], tt.want)
			}
		})
	}
}

func TestStaticDirMissing(t *testing.T) {
	c := testConfig(t, "http://127.0.0.1:9000")
	c.StaticDir += "/nope"
	if _, err := New(c); err == nil || !strings.Contains(err.Error(), "static_dir") || !strings.Contains(err.Error(), "does not exist") {
		t.Fatalf("a missing static_dir: %v", err)
	}
	c = testConfig(t, "http://127.0.0.1:9000")
	c.StaticDir += "/index.html"
	if _, err := New(c); err == nil || !strings.Contains(err.Error(), "is a file, not a folder") {
		t.Fatalf("a file as static_dir: %v", err)
	}
}
