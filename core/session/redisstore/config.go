package redisstore

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/bffgate/bffgate/core/internal/envsecret"
	"github.com/redis/go-redis/v9"
)

// DefaultKeyPrefix is put before every key the store writes when
// Config.KeyPrefix is empty.
const DefaultKeyPrefix = "bffgate:"

// maxCacheTTL bounds Config.CacheTTLMS: a longer cache would serve a
// session deleted on another node (logout) for too long.
const maxCacheTTL = 1000

// Config says how to reach Redis and how to keep sessions there. The zero
// value of every optional field means its default, given in the field's
// comment; New fills defaults in and validates. Durations are whole
// milliseconds in int fields, because the same struct becomes a Kong plugin
// schema and go-pdk drops int64 and time.Duration fields.
//
// Which client is built follows go-redis's NewUniversalClient:
// MasterName set means Sentinel (Addrs are the Sentinels); otherwise two
// or more Addrs, or Cluster, mean Redis Cluster; otherwise one standalone
// server. Reads and writes always go to masters, never to replicas.
//
// Password and SentinelPassword (and URL, which may carry a password) may
// be written as "env:NAME" to read them from the environment variable NAME
// when New runs.
type Config struct {
	// URL is one standalone server as redis://[user:password@]host[:port][/db]
	// or rediss://... for TLS; the port defaults to 6379. It is an
	// alternative to Addrs (give one of them), takes no query parameters,
	// and may be "env:NAME". Username, Password and DB fill in what the URL
	// leaves out and must not contradict it.
	URL string `json:"url"`
	// Addrs are host:port addresses: one standalone server; the seed nodes
	// of a Cluster (two or more, or one with Cluster set); or, with
	// MasterName, the Sentinels.
	Addrs []string `json:"addrs"`
	// MasterName is the name under which the Sentinels in Addrs monitor the
	// master, e.g. "mymaster". Setting it selects Sentinel.
	MasterName string `json:"master_name"`
	// Cluster treats a single address in Addrs as the seed of a Redis
	// Cluster, e.g. a managed service's configuration endpoint. Two or more
	// Addrs without MasterName mean Cluster anyway. Defaults to false.
	Cluster bool `json:"cluster"`

	// Username and Password authenticate to Redis (ACL user, or only a
	// password for requirepass). Password may be "env:NAME".
	Username string `json:"username"`
	Password string `json:"password"`
	// SentinelUsername and SentinelPassword authenticate to the Sentinels
	// when they need it. SentinelPassword may be "env:NAME".
	SentinelUsername string `json:"sentinel_username"`
	SentinelPassword string `json:"sentinel_password"`
	// DB is the database number, on a standalone server and with Sentinel.
	// A Cluster has only database 0. Defaults to 0.
	DB int `json:"db"`

	// TLS connects with TLS (at least 1.2), checking each server's
	// certificate against the system roots and the host it was dialled by.
	// A rediss:// URL sets it. Defaults to false.
	TLS bool `json:"tls"`
	// TLSInsecureSkipVerify accepts any server certificate. It is for tests
	// against self-signed servers only: with it, anyone on the path can
	// read the sessions. Defaults to false.
	TLSInsecureSkipVerify bool `json:"tls_insecure_skip_verify"`

	// KeyPrefix is put before every key, so several deployments can share
	// one Redis. Defaults to "bffgate:".
	KeyPrefix string `json:"key_prefix"`

	// PoolSize is the most connections kept to each server. Defaults to
	// go-redis's 10 per CPU.
	PoolSize int `json:"pool_size"`
	// DialTimeoutMS bounds connecting to a server, in milliseconds.
	// Defaults to 500.
	DialTimeoutMS int `json:"dial_timeout_ms"`
	// ReadTimeoutMS bounds waiting for a reply, and for a free connection
	// from the pool, in milliseconds. Defaults to 500.
	ReadTimeoutMS int `json:"read_timeout_ms"`
	// WriteTimeoutMS bounds sending a command, in milliseconds. Defaults
	// to 500.
	WriteTimeoutMS int `json:"write_timeout_ms"`
	// MaxRetries is how many times a failed command is sent again. Defaults
	// to 0 (none): with the default timeouts an unreachable Redis then
	// fails an operation within about a second, and the gateway answers
	// 503 instead of hanging.
	MaxRetries int `json:"max_retries"`

	// CacheTTLMS turns on a small in-process cache of sliding reads (Get
	// with a ttl, what every API request does) and keeps an entry at most
	// this many milliseconds, 1000 at most. Defaults to 0: off.
	//
	// The trade-off: a session deleted through another node (logout,
	// back-channel logout) can still be served by this node for up to
	// CacheTTLMS. A read served from the cache does not slide the session's
	// expiry in Redis; only the read that misses does, once per period, so
	// an idle timeout may end up to CacheTTLMS early. Reads without a ttl
	// (a re-read under the refresh lock, logout) always go to Redis, and
	// writes through this node drop their keys from its cache at once.
	CacheTTLMS int `json:"cache_ttl_ms"`
	// CacheMaxEntries bounds the cache's size. Defaults to 10000.
	CacheMaxEntries int `json:"cache_max_entries"`
}

// ConfigError is a configuration mistake: which field, what is wrong, and
// how to fix it.
type ConfigError struct {
	Field string
	Msg   string
}

func (e *ConfigError) Error() string { return "redisstore: config: " + e.Field + ": " + e.Msg }

func cfgErr(field, format string, args ...any) error {
	return &ConfigError{Field: field, Msg: fmt.Sprintf(format, args...)}
}

// withDefaults returns c with every zero optional field set to its
// default. It is the one place defaults live.
func (c Config) withDefaults() Config {
	defInt := func(n *int, v int) {
		if *n == 0 {
			*n = v
		}
	}
	if c.KeyPrefix == "" {
		c.KeyPrefix = DefaultKeyPrefix
	}
	defInt(&c.DialTimeoutMS, 500)
	defInt(&c.ReadTimeoutMS, 500)
	defInt(&c.WriteTimeoutMS, 500)
	defInt(&c.CacheMaxEntries, 10000)
	return c
}

// options validates c, which has its defaults, resolves its secrets, and
// maps it onto go-redis's options. Every error names the field and says
// how to fix it, and none contains a secret.
func (c Config) options() (*redis.UniversalOptions, error) {
	o := &redis.UniversalOptions{
		ClientName:            "bffgate",
		DB:                    c.DB,
		Username:              c.Username,
		SentinelUsername:      c.SentinelUsername,
		MasterName:            c.MasterName,
		IsClusterMode:         c.Cluster,
		PoolSize:              c.PoolSize,
		DialTimeout:           ms(c.DialTimeoutMS),
		ReadTimeout:           ms(c.ReadTimeoutMS),
		WriteTimeout:          ms(c.WriteTimeoutMS),
		PoolTimeout:           ms(c.ReadTimeoutMS),
		ContextTimeoutEnabled: true,
		// One dial per attempt: a server that did not answer within the
		// dial timeout is down, and go-redis's default of 5 dials would
		// hold the caller for 5 timeouts.
		DialerRetries:      1,
		DialerRetryTimeout: time.Millisecond,
		// Never replicas: a session written a moment ago must be read back,
		// and a replica refuses writes.
		ReadOnly:       false,
		RouteByLatency: false,
		RouteRandomly:  false,
	}
	// go-redis reads MaxRetries 0 as its default (3) and -1 as none.
	o.MaxRetries = c.MaxRetries
	if c.MaxRetries == 0 {
		o.MaxRetries = -1
	}

	var err error
	if o.Password, err = resolveSecret("password", c.Password); err != nil {
		return nil, err
	}
	if o.SentinelPassword, err = resolveSecret("sentinel_password", c.SentinelPassword); err != nil {
		return nil, err
	}
	rawURL, err := resolveSecret("url", c.URL)
	if err != nil {
		return nil, err
	}
	tlsOn := c.TLS

	switch {
	case rawURL != "" && len(c.Addrs) > 0:
		return nil, cfgErr("url", "set together with addrs: give one of them")
	case rawURL != "":
		if c.MasterName != "" {
			return nil, cfgErr("master_name", "set together with url, which names one standalone server: for Sentinel, list the Sentinels in addrs")
		}
		if c.Cluster {
			return nil, cfgErr("cluster", "set together with url, which names one standalone server: for Cluster, list the seed nodes in addrs")
		}
		u, err := parseURL(rawURL)
		if err != nil {
			return nil, err
		}
		o.Addrs = []string{u.addr}
		if o.Username, err = merge("username", u.username, o.Username); err != nil {
			return nil, err
		}
		if o.Password, err = merge("password", u.password, o.Password); err != nil {
			return nil, err
		}
		if u.hasDB {
			if c.DB != 0 && c.DB != u.db {
				return nil, cfgErr("db", "is %d but the url names database %d: drop one", c.DB, u.db)
			}
			o.DB = u.db
		}
		tlsOn = tlsOn || u.tls
	case len(c.Addrs) == 0:
		return nil, cfgErr("addrs", "is empty: list host:port addresses (one server, the Cluster's nodes, or with master_name the Sentinels), or set url")
	default:
		for i, a := range c.Addrs {
			if err := checkAddr(a); err != nil {
				return nil, cfgErr(fmt.Sprintf("addrs[%d]", i), "%q %v", a, err)
			}
		}
		o.Addrs = c.Addrs
	}

	cluster := c.MasterName == "" && (len(o.Addrs) > 1 || c.Cluster)
	switch {
	case c.MasterName != "" && c.Cluster:
		return nil, cfgErr("cluster", "set together with master_name: Sentinel and Cluster exclude each other; drop one")
	case c.MasterName == "" && c.SentinelUsername != "":
		return nil, cfgErr("sentinel_username", "set without master_name: set master_name to use Sentinel, or drop it")
	case c.MasterName == "" && c.SentinelPassword != "":
		return nil, cfgErr("sentinel_password", "set without master_name: set master_name to use Sentinel, or drop it")
	case c.DB < 0:
		return nil, cfgErr("db", "is %d: database numbers start at 0", c.DB)
	case cluster && o.DB != 0:
		return nil, cfgErr("db", "is %d but a Redis Cluster has only database 0: set it to 0, or use Sentinel or one server", o.DB)
	case c.TLSInsecureSkipVerify && !tlsOn:
		return nil, cfgErr("tls_insecure_skip_verify", "set without tls: set tls (or use a rediss:// url), or drop it")
	case strings.ContainsAny(c.KeyPrefix, " \r\n"):
		return nil, cfgErr("key_prefix", "%q contains white space: use letters, digits and punctuation, e.g. %q", c.KeyPrefix, DefaultKeyPrefix)
	}
	for _, f := range []struct {
		name string
		v    int
	}{
		{"pool_size", c.PoolSize},
		{"dial_timeout_ms", c.DialTimeoutMS},
		{"read_timeout_ms", c.ReadTimeoutMS},
		{"write_timeout_ms", c.WriteTimeoutMS},
		{"max_retries", c.MaxRetries},
		{"cache_ttl_ms", c.CacheTTLMS},
		{"cache_max_entries", c.CacheMaxEntries},
	} {
		if f.v < 0 {
			return nil, cfgErr(f.name, "is %d: it cannot be negative; 0 means the default", f.v)
		}
	}
	if c.CacheTTLMS > maxCacheTTL {
		return nil, cfgErr("cache_ttl_ms", "is %d, above the most of %d: a node would serve a logged-out session that long; lower it, or 0 for no cache", c.CacheTTLMS, maxCacheTTL)
	}
	if tlsOn {
		// No ServerName: crypto/tls takes it from each dialled address, so
		// every Cluster node and the master Sentinel names is checked
		// under its own name.
		o.TLSConfig = &tls.Config{
			MinVersion:         tls.VersionTLS12,
			InsecureSkipVerify: c.TLSInsecureSkipVerify, // documented as for tests only
		}
	}
	return o, nil
}

func ms(n int) time.Duration { return time.Duration(n) * time.Millisecond }

// resolveSecret reads an "env:NAME" value from the environment.
func resolveSecret(field, v string) (string, error) {
	s, err := envsecret.Resolve(v)
	if err != nil {
		return "", cfgErr(field, "%v", err)
	}
	return s, nil
}

// merge returns whichever of a value from the URL and one from its own
// field is set, and an error when both are set and differ.
func merge(field, fromURL, own string) (string, error) {
	if fromURL != "" && own != "" && fromURL != own {
		return "", cfgErr(field, "is set both in url and on its own, differently: drop one")
	}
	if fromURL != "" {
		return fromURL, nil
	}
	return own, nil
}

type redisURL struct {
	addr, username, password string
	db                       int
	hasDB, tls               bool
}

// parseURL reads a redis:// or rediss:// URL. Its errors never quote the
// URL, which may hold a password.
func parseURL(raw string) (redisURL, error) {
	var r redisURL
	u, err := url.Parse(raw)
	if err != nil {
		return r, cfgErr("url", "is not a URL: write redis://[user:password@]host[:port][/db] or rediss://... for TLS")
	}
	switch u.Scheme {
	case "redis":
	case "rediss":
		r.tls = true
	default:
		return r, cfgErr("url", "has scheme %q: use redis:// or rediss:// (TLS)", u.Scheme)
	}
	if u.Hostname() == "" {
		return r, cfgErr("url", "names no host: write redis://host:port/db")
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return r, cfgErr("url", "has query parameters or a fragment: drop them and use this config's fields (dial_timeout_ms, pool_size, ...)")
	}
	port := u.Port()
	if port == "" {
		port = "6379"
	}
	r.addr = net.JoinHostPort(u.Hostname(), port)
	if err := checkAddr(r.addr); err != nil {
		return r, cfgErr("url", "%v", err)
	}
	if u.User != nil {
		r.username = u.User.Username()
		r.password, _ = u.User.Password()
	}
	if p := strings.Trim(u.Path, "/"); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 {
			return r, cfgErr("url", "has path %q: the path is a database number, e.g. /0", u.Path)
		}
		r.db, r.hasDB = n, true
	}
	return r, nil
}

// checkAddr checks a host:port address.
func checkAddr(a string) error {
	host, port, err := net.SplitHostPort(a)
	if err != nil {
		return fmt.Errorf("is not host:port: write e.g. redis.internal:6379")
	}
	if host == "" {
		return fmt.Errorf("names no host: write e.g. redis.internal:6379")
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("has port %q: use a number from 1 to 65535", port)
	}
	return nil
}
