package extauthz

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"

	"github.com/bffgate/bffgate/core/bff"
	"github.com/bffgate/bffgate/internal/configfile"
)

// Config is the file `bffgate extauthz -config FILE` reads.
type Config struct {
	// Listen is the address to listen on. Defaults to "127.0.0.1:9191".
	// Without a Secret it must be a loopback address.
	Listen string `json:"listen"`
	// Secret, when set, is the value the proxy sends in SecretHeader on
	// every request to bffgate; requests without it are refused. At least
	// 16 characters; "env:NAME" reads it from the environment. When empty,
	// only requests from a loopback address are trusted.
	Secret string `json:"secret"`
	// SecretHeader names the header that carries Secret. Defaults to
	// "X-Bffgate-Secret".
	SecretHeader string `json:"secret_header"`
	// Apps are the BFFs this process serves, chosen per request by host
	// and path prefix. At least one.
	Apps []App `json:"apps"`
	// AccessLog is "on" (one line per request to bffgate, naming the
	// original request's method and path, the app, the status bffgate
	// answered, never a query, header or cookie) or "off". Defaults to
	// "on".
	AccessLog string `json:"access_log"`
	// AdminListen, when set, is the address of the admin listener:
	// /healthz, /readyz (every app's store and provider) and /metrics
	// (Prometheus), e.g. "0.0.0.0:9090". Defaults to none.
	AdminListen string `json:"admin_listen"`
}

// App is one browser app: its own client, cookie and routes.
type App struct {
	// Name names the app in errors and logs. Defaults to "apps[i]".
	Name string `json:"name"`
	// Hosts are the hosts (with or without port) this app serves; empty
	// means any host. An app that names the host wins over one that
	// does not.
	Hosts []string `json:"hosts"`
	// PathPrefix is the path prefix this app serves; the longest prefix
	// wins. Defaults to "/". It chooses the app only: the BFF's own paths
	// are bff.path_prefix + bff.paths.
	PathPrefix string `json:"path_prefix"`
	// BFF is the engine's configuration (see the config reference).
	BFF bff.Config `json:"bff"`
	// Routes give path prefixes of this app a policy (claims, scopes,
	// acr, a recent login) on top of bff.policy, and a resource's token
	// or DPoP proofs; the longest prefix wins. Defaults to none.
	Routes []Route `json:"routes"`
}

// Route is a path prefix of an app with its policy and how its requests
// are forwarded (bff.Route).
type Route struct {
	// Path is a path prefix as the request has it, e.g. "/api/admin/".
	Path string `json:"path"`
	// Policy is what requests below Path need of the session.
	Policy bff.Policy `json:"policy"`
	// Resource (RFC 8707) sends requests below Path a token for this
	// resource only, one of bff.resources. A route that sets none of
	// Resource, DPoPURL and StripPrefix is forwarded as bff.route says.
	Resource string `json:"resource"`
	// DPoPURL sends them the DPoP-bound token (bff.dpop) with a proof for
	// this upstream URL joined with the request's path (less
	// StripPrefix): the URL the proxy calls. Defaults to none.
	DPoPURL string `json:"dpop_url"`
	// StripPrefix is the start of the path the proxy strips before it
	// calls the upstream (Envoy's prefix_rewrite to "/"). Defaults to "".
	StripPrefix string `json:"strip_prefix"`
}

// route is the bff.Route of r.
func (r *Route) route() bff.Route {
	return bff.Route{Resource: r.Resource, DPoPURL: r.DPoPURL, StripPrefix: r.StripPrefix}
}

// Defaults.
const (
	DefaultListen       = "127.0.0.1:9191"
	DefaultSecretHeader = "X-Bffgate-Secret"
	minSecret           = 16
)

// Load reads a config file strictly: unknown fields are errors, so a typo
// does not silently fall back to a default.
func Load(file string) (*Config, error) {
	var c Config
	if err := configfile.Load(file, &c); err != nil {
		return nil, err
	}
	return &c, nil
}

// secret returns the configured secret, read from the environment for
// "env:NAME". It never puts the value in an error.
func (c *Config) secret() (string, error) {
	s := c.Secret
	if name, ok := strings.CutPrefix(s, "env:"); ok {
		v, ok := os.LookupEnv(name)
		if !ok || v == "" {
			return "", fmt.Errorf("bffgate extauthz: config: secret: the environment variable %s is not set", name)
		}
		s = v
	}
	if s != "" && len(s) < minSecret {
		return "", fmt.Errorf("bffgate extauthz: config: secret: use at least %d characters (e.g. `openssl rand -base64 32`)", minSecret)
	}
	return s, nil
}

// listen returns the address to listen on, refusing a non-loopback one
// when no secret is set: then the listener is what makes the forwarded
// request line trustworthy.
func (c *Config) listen(override string, secret bool) (string, error) {
	addr := c.Listen
	if override != "" {
		addr = override
	}
	if addr == "" {
		addr = DefaultListen
	}
	if secret {
		return addr, nil
	}
	if err := loopbackOnly(addr); err != nil {
		return "", fmt.Errorf("bffgate extauthz: config: listen: %w", err)
	}
	return addr, nil
}

func loopbackOnly(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q is not host:port", addr)
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("%q is not a loopback address; listen on 127.0.0.1, or set \"secret\" and have the proxy send it", addr)
	}
	return nil
}

func (c *Config) secretHeader() (string, error) {
	h := c.SecretHeader
	if h == "" {
		return DefaultSecretHeader, nil
	}
	if !validToken(h) {
		return "", errors.New("bffgate extauthz: config: secret_header: not a valid header name")
	}
	return http.CanonicalHeaderKey(h), nil
}
