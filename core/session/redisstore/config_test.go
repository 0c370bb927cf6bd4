package redisstore

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

func TestConfigErrors(t *testing.T) {
	t.Setenv("REDISSTORE_TEST_UNSET", "")
	tests := []struct {
		name      string
		cfg       Config
		wantField string // "" = valid
	}{
		{"one server", Config{Addrs: []string{"redis:6379"}}, ""},
		{"url", Config{URL: "redis://redis:6379/2"}, ""},
		{"url and password field", Config{URL: "redis://redis/2", Password: "pw"}, ""},
		{"cluster", Config{Addrs: []string{"a:6379", "b:6379"}}, ""},
		{"sentinel with db", Config{Addrs: []string{"s1:26379", "s2:26379"}, MasterName: "m", DB: 3}, ""},
		{"no address", Config{}, "addrs"},
		{"url and addrs", Config{URL: "redis://a", Addrs: []string{"b:6379"}}, "url"},
		{"addr without port", Config{Addrs: []string{"a:6379", "b"}}, "addrs[1]"},
		{"addr without host", Config{Addrs: []string{":6379"}}, "addrs[0]"},
		{"addr with bad port", Config{Addrs: []string{"a:99999"}}, "addrs[0]"},
		{"url scheme", Config{URL: "http://a:6379"}, "url"},
		{"unix url", Config{URL: "unix:///tmp/redis.sock"}, "url"},
		{"url query", Config{URL: "redis://a:6379/0?dial_timeout=3"}, "url"},
		{"url path", Config{URL: "redis://a:6379/zero"}, "url"},
		{"url without host", Config{URL: "redis:///0"}, "url"},
		{"url and master_name", Config{URL: "redis://a", MasterName: "m"}, "master_name"},
		{"url and cluster", Config{URL: "redis://a", Cluster: true}, "cluster"},
		{"url db differs", Config{URL: "redis://a/1", DB: 2}, "db"},
		{"url password differs", Config{URL: "redis://:one@a", Password: "two"}, "password"},
		{"negative db", Config{Addrs: []string{"a:6379"}, DB: -1}, "db"},
		{"cluster with db", Config{Addrs: []string{"a:6379", "b:6379"}, DB: 1}, "db"},
		{"single-seed cluster with db", Config{Addrs: []string{"a:6379"}, Cluster: true, DB: 1}, "db"},
		{"sentinel and cluster", Config{Addrs: []string{"a:26379"}, MasterName: "m", Cluster: true}, "cluster"},
		{"sentinel password without master", Config{Addrs: []string{"a:6379"}, SentinelPassword: "pw"}, "sentinel_password"},
		{"sentinel user without master", Config{Addrs: []string{"a:6379"}, SentinelUsername: "u"}, "sentinel_username"},
		{"skip verify without tls", Config{Addrs: []string{"a:6379"}, TLSInsecureSkipVerify: true}, "tls_insecure_skip_verify"},
		{"skip verify with rediss", Config{URL: "rediss://a", TLSInsecureSkipVerify: true}, ""},
		{"password env unset", Config{Addrs: []string{"a:6379"}, Password: "env:REDISSTORE_TEST_UNSET"}, "password"},
		{"sentinel password env unset", Config{Addrs: []string{"a:6379"}, MasterName: "m", SentinelPassword: "env:REDISSTORE_TEST_UNSET"}, "sentinel_password"},
		{"url env unset", Config{URL: "env:REDISSTORE_TEST_UNSET"}, "url"},
		{"negative timeout", Config{Addrs: []string{"a:6379"}, ReadTimeoutMS: -1}, "read_timeout_ms"},
		{"negative pool", Config{Addrs: []string{"a:6379"}, PoolSize: -1}, "pool_size"},
		{"negative retries", Config{Addrs: []string{"a:6379"}, MaxRetries: -1}, "max_retries"},
		{"cache too long", Config{Addrs: []string{"a:6379"}, CacheTTLMS: 1001}, "cache_ttl_ms"},
		{"cache at most", Config{Addrs: []string{"a:6379"}, CacheTTLMS: 1000}, ""},
		{"negative cache size", Config{Addrs: []string{"a:6379"}, CacheMaxEntries: -5}, "cache_max_entries"},
		{"prefix with space", Config{Addrs: []string{"a:6379"}, KeyPrefix: "my app:"}, "key_prefix"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := New(tt.cfg)
			if err == nil {
				defer s.Close()
			}
			var ce *ConfigError
			switch {
			case tt.wantField == "" && err != nil:
				t.Fatalf("New: %v; want no error", err)
			case tt.wantField != "" && !errors.As(err, &ce):
				t.Fatalf("New: %v; want a *ConfigError for %s", err, tt.wantField)
			case tt.wantField != "" && ce.Field != tt.wantField:
				t.Fatalf("New: error for field %q (%v); want %q", ce.Field, err, tt.wantField)
			case err != nil && !strings.HasPrefix(err.Error(), "redisstore: config: "+tt.wantField+": "):
				t.Fatalf("New: %q; want it to start with %q", err, "redisstore: config: "+tt.wantField+": ")
			}
		})
	}
}

func TestConfigErrorsKeepSecrets(t *testing.T) {
	for _, cfg := range []Config{
		{URL: "redis://user:s3cret-pw@a:6379/0?x=1"},
		{URL: "redis://user:s3cret-pw@a:6379/zero"},
		{URL: "redis://user:s3cret-pw@a:6379/0", Password: "other"},
		{URL: "redis://user:s3cret-pw@a:bad/0"},
		{URL: "redis://user:s3cret-pw@a:6379/0", Addrs: []string{"b:1"}},
	} {
		_, err := New(cfg)
		if err == nil || strings.Contains(err.Error(), "s3cret") {
			t.Errorf("New(url with a password) error = %v; want an error without the password", err)
		}
	}
}

func TestConfigOptions(t *testing.T) {
	t.Setenv("REDISSTORE_TEST_PW", "from-env")
	t.Setenv("REDISSTORE_TEST_URL", "rediss://u:urlpw@cache.example:6380/4")
	tests := []struct {
		name  string
		cfg   Config
		check func(t *testing.T, o *redis.UniversalOptions)
	}{
		{"defaults fail fast", Config{Addrs: []string{"a:6379"}}, func(t *testing.T, o *redis.UniversalOptions) {
			want := 500 * time.Millisecond
			if o.DialTimeout != want || o.ReadTimeout != want || o.WriteTimeout != want || o.PoolTimeout != want {
				t.Errorf("timeouts dial %v read %v write %v pool %v; want %v each", o.DialTimeout, o.ReadTimeout, o.WriteTimeout, o.PoolTimeout, want)
			}
			if o.MaxRetries != -1 || o.DialerRetries != 1 {
				t.Errorf("MaxRetries %d, DialerRetries %d; want -1 (none) and 1", o.MaxRetries, o.DialerRetries)
			}
			if !o.ContextTimeoutEnabled {
				t.Error("ContextTimeoutEnabled is off; want a caller's deadline honoured")
			}
			if o.TLSConfig != nil {
				t.Error("TLS on; want off")
			}
		}},
		{"never replicas", Config{Addrs: []string{"a:6379", "b:6379"}}, func(t *testing.T, o *redis.UniversalOptions) {
			if o.ReadOnly || o.RouteByLatency || o.RouteRandomly {
				t.Errorf("ReadOnly %v RouteByLatency %v RouteRandomly %v; want all off", o.ReadOnly, o.RouteByLatency, o.RouteRandomly)
			}
		}},
		{"retries and timeouts given", Config{Addrs: []string{"a:6379"}, MaxRetries: 2, DialTimeoutMS: 100, ReadTimeoutMS: 200, WriteTimeoutMS: 300, PoolSize: 7},
			func(t *testing.T, o *redis.UniversalOptions) {
				if o.MaxRetries != 2 || o.DialTimeout != 100*time.Millisecond || o.ReadTimeout != 200*time.Millisecond ||
					o.WriteTimeout != 300*time.Millisecond || o.PoolSize != 7 {
					t.Errorf("got retries %d dial %v read %v write %v pool %d", o.MaxRetries, o.DialTimeout, o.ReadTimeout, o.WriteTimeout, o.PoolSize)
				}
			}},
		{"sentinel keeps db and credentials", Config{Addrs: []string{"s:26379"}, MasterName: "m", DB: 3,
			Username: "app", Password: "env:REDISSTORE_TEST_PW", SentinelUsername: "sen", SentinelPassword: "env:REDISSTORE_TEST_PW"},
			func(t *testing.T, o *redis.UniversalOptions) {
				if o.MasterName != "m" || o.DB != 3 || o.Failover().DB != 3 {
					t.Errorf("MasterName %q DB %d failover DB %d; want m and 3", o.MasterName, o.DB, o.Failover().DB)
				}
				if o.Username != "app" || o.Password != "from-env" || o.SentinelUsername != "sen" || o.SentinelPassword != "from-env" {
					t.Errorf("credentials %q/%q sentinel %q/%q", o.Username, o.Password, o.SentinelUsername, o.SentinelPassword)
				}
			}},
		{"url from env with tls", Config{URL: "env:REDISSTORE_TEST_URL"}, func(t *testing.T, o *redis.UniversalOptions) {
			if !slices.Equal(o.Addrs, []string{"cache.example:6380"}) || o.Username != "u" || o.Password != "urlpw" || o.DB != 4 {
				t.Errorf("addrs %q user %q password %q db %d", o.Addrs, o.Username, o.Password, o.DB)
			}
			if o.TLSConfig == nil || o.TLSConfig.InsecureSkipVerify {
				t.Errorf("TLS %+v; want on, verifying", o.TLSConfig)
			}
		}},
		{"url default port, fields fill in", Config{URL: "redis://cache.example", DB: 2, Password: "pw"}, func(t *testing.T, o *redis.UniversalOptions) {
			if !slices.Equal(o.Addrs, []string{"cache.example:6379"}) || o.DB != 2 || o.Password != "pw" {
				t.Errorf("addrs %q db %d password %q", o.Addrs, o.DB, o.Password)
			}
		}},
		{"tls skip verify", Config{Addrs: []string{"a:6379"}, TLS: true, TLSInsecureSkipVerify: true}, func(t *testing.T, o *redis.UniversalOptions) {
			if o.TLSConfig == nil || !o.TLSConfig.InsecureSkipVerify || o.TLSConfig.ServerName != "" {
				t.Errorf("TLS %+v; want on, not verifying, no fixed ServerName", o.TLSConfig)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := tt.cfg.withDefaults().options()
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, o)
		})
	}
}

// TestNewSelectsClient checks that New builds the client go-redis's rules
// give, without any network call.
func TestNewSelectsClient(t *testing.T) {
	tests := []struct {
		name        string
		cfg         Config
		wantCluster bool
	}{
		{"one address", Config{Addrs: []string{"127.0.0.1:1"}}, false},
		{"url", Config{URL: "redis://127.0.0.1:1"}, false},
		{"sentinel", Config{Addrs: []string{"127.0.0.1:1", "127.0.0.1:2"}, MasterName: "m"}, false},
		{"several addresses", Config{Addrs: []string{"127.0.0.1:1", "127.0.0.1:2"}}, true},
		{"one cluster seed", Config{Addrs: []string{"127.0.0.1:1"}, Cluster: true}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := New(tt.cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			_, isCluster := s.c.(*redis.ClusterClient)
			if isCluster != tt.wantCluster {
				t.Errorf("client %T; want cluster %v", s.c, tt.wantCluster)
			}
			if s.prefix != DefaultKeyPrefix || s.cache != nil {
				t.Errorf("prefix %q cache %v; want %q and no cache", s.prefix, s.cache, DefaultKeyPrefix)
			}
		})
	}
}

func TestNewFromClient(t *testing.T) {
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialerRetries: 1})
	defer c.Close()
	tests := []struct{ prefix, want string }{{"", DefaultKeyPrefix}, {"app:", "app:"}}
	for _, tt := range tests {
		s := NewFromClient(c, tt.prefix)
		if s.prefix != tt.want {
			t.Errorf("NewFromClient(c, %q) prefix = %q, want %q", tt.prefix, s.prefix, tt.want)
		}
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	}
	if err := c.Ping(t.Context()).Err(); err == nil || errors.Is(err, redis.ErrClosed) {
		t.Errorf("the caller's client after Store.Close: %v; want it still open (refused, not closed)", err)
	}
}
