package bff

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

const testKey = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=" // 32 bytes

func validConfig() Config {
	return Config{
		Issuer: "https://op.example", ClientID: "bff", ClientSecret: "secret",
		RedirectURL: "https://app.example/oauth/callback", CookieKeys: []string{testKey},
	}
}

func TestNewValidates(t *testing.T) {
	t.Setenv("BFF_TEST_SECRET", "from-env")
	tests := []struct {
		name      string
		edit      func(c *Config)
		wantField string // "" = valid
	}{
		{"valid", func(c *Config) {}, ""},
		{"secret from env", func(c *Config) { c.ClientSecret = "env:BFF_TEST_SECRET" }, ""},
		{"cookie key from env", func(c *Config) { c.CookieKeys = []string{"env:BFF_TEST_KEY_UNSET"} }, "cookie_keys[0]"},
		{"no issuer", func(c *Config) { c.Issuer = "" }, "issuer"},
		{"relative issuer", func(c *Config) { c.Issuer = "op.example" }, "issuer"},
		{"no client id", func(c *Config) { c.ClientID = "" }, "client_id"},
		{"no secret", func(c *Config) { c.ClientSecret = "" }, "client_secret"},
		{"secret env unset", func(c *Config) { c.ClientSecret = "env:BFF_TEST_UNSET_VAR" }, "client_secret"},
		{"no redirect url", func(c *Config) { c.RedirectURL = "" }, "redirect_url"},
		{"relative redirect url", func(c *Config) { c.RedirectURL = "/oauth/callback" }, "redirect_url"},
		{"bad post logout url", func(c *Config) { c.PostLogoutRedirectURL = "javascript:alert(1)" }, "post_logout_redirect_url"},
		{"no openid scope", func(c *Config) { c.Scopes = []string{"profile"} }, "scopes"},
		{"bad mode", func(c *Config) { c.Mode = "tokens" }, "mode"},
		{"prefix without slash", func(c *Config) { c.PathPrefix = "app" }, "path_prefix"},
		{"prefix with trailing slash", func(c *Config) { c.PathPrefix = "/app/" }, "path_prefix"},
		{"duplicate paths", func(c *Config) { c.Paths.Token = "/session" }, "paths.token"},
		{"path with query", func(c *Config) { c.Paths.Login = "/login?x" }, "paths.login"},
		{"bad cookie name", func(c *Config) { c.CookieName = "a b" }, "cookie_name"},
		{"bad same site", func(c *Config) { c.CookieSameSite = "none" }, "cookie_same_site"},
		{"no cookie keys", func(c *Config) { c.CookieKeys = nil }, "cookie_keys"},
		{"short cookie key", func(c *Config) { c.CookieKeys = []string{"c2hvcnQ="} }, "cookie_keys[0]"},
		{"negative timeout", func(c *Config) { c.SessionIdleTimeout = -1 }, "session_idle_timeout"},
		{"idle over max", func(c *Config) { c.SessionIdleTimeout, c.SessionMaxLifetime = 100, 10 }, "session_idle_timeout"},
		{"bad csrf header", func(c *Config) { c.CSRFHeader = "X CSRF" }, "csrf_header"},
		{"origin with path", func(c *Config) { c.AllowedOrigins = []string{"https://spa.example/app"} }, "allowed_origins[0]"},
		{"origin without scheme", func(c *Config) { c.AllowedOrigins = []string{"spa.example"} }, "allowed_origins[0]"},
		{"absolute default return", func(c *Config) { c.DefaultReturnTo = "https://evil.example/" }, "default_return_to"},
		{"identity header without claim", func(c *Config) { c.IdentityHeaders = []IdentityHeader{{Header: "X-User"}} }, "identity_headers[0]"},
		{"identity header authorization", func(c *Config) {
			c.IdentityHeaders = []IdentityHeader{{Header: "authorization", Claim: "sub"}}
		}, "identity_headers[0].header"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := validConfig()
			tt.edit(&c)
			_, err := New(c)
			if tt.wantField == "" {
				if err != nil {
					t.Fatalf("New: %v", err)
				}
				return
			}
			var ce *ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("New error = %v, want a *ConfigError for %s", err, tt.wantField)
			}
			if ce.Field != tt.wantField {
				t.Fatalf("error names field %q, want %q (%v)", ce.Field, tt.wantField, err)
			}
			if strings.Contains(err.Error(), "from-env") || strings.Contains(err.Error(), "secret\"") {
				t.Fatalf("error reveals a secret: %v", err)
			}
		})
	}
}

func TestDefaults(t *testing.T) {
	b, err := New(validConfig())
	if err != nil {
		t.Fatal(err)
	}
	c := b.cfg
	for _, tt := range []struct{ name, got, want string }{
		{"mode", c.Mode, ModeBFF},
		{"cookie_name", c.CookieName, "__Host-bffgate"},
		{"csrf_header", c.CSRFHeader, "X-CSRF"},
		{"paths.callback", c.Paths.Callback, "/oauth/callback"},
		{"scopes", strings.Join(c.Scopes, " "), "openid profile email offline_access"},
	} {
		if tt.got != tt.want {
			t.Errorf("%s = %q, want %q", tt.name, tt.got, tt.want)
		}
	}
	if c.SessionIdleTimeout != 28800 || c.SessionMaxLifetime != 86400 || c.RefreshSkew != 30 {
		t.Errorf("timeouts = %d/%d/%d, want 28800/86400/30", c.SessionIdleTimeout, c.SessionMaxLifetime, c.RefreshSkew)
	}
}

// FuzzConfigJSON: no JSON document makes decoding plus New panic, and
// whatever New accepts is internally consistent.
func FuzzConfigJSON(f *testing.F) {
	good, _ := json.Marshal(validConfig())
	f.Add(good)
	f.Add([]byte(`{"issuer":"http://x","client_id":"a","client_secret":"env:","redirect_url":"http://x/cb","cookie_keys":["` + testKey + `"],"paths":{"login":"/"}}`))
	f.Add([]byte(`{"session_idle_timeout":-5,"mode":"token-mediating"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var c Config
		if json.Unmarshal(data, &c) != nil {
			return
		}
		b, err := New(c)
		if err != nil {
			var ce *ConfigError
			if !errors.As(err, &ce) || ce.Field == "" {
				t.Fatalf("error %v is not a ConfigError naming a field", err)
			}
			return
		}
		if len(b.keys) == 0 || b.idle <= 0 || b.idle > b.max || len(b.routes) != 8 {
			t.Fatalf("accepted an inconsistent config: %+v", b.cfg)
		}
	})
}
