package serve

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/bffgate/bffgate/core/bff"
	"github.com/bffgate/bffgate/core/session"
	"github.com/bffgate/bffgate/core/session/redisstore"
)

// Finding is one thing `bffgate check` says of a config that New accepts.
type Finding struct {
	Field string
	Msg   string
	// Warning findings may be intended (a plain-http issuer on a private
	// network); the others break something and fail the check.
	Warning bool
}

func (f Finding) String() string {
	kind := "error"
	if f.Warning {
		kind = "warning"
	}
	return fmt.Sprintf("%s: %s: %s", kind, f.Field, f.Msg)
}

// Lint finds what New accepts but is likely a mistake: a redirect_url
// that does not name the callback path, plain-http provider and site
// URLs off loopback, listeners without a host, and timeouts no one means
// (durations are seconds, not milliseconds).
func Lint(c *Config) []Finding {
	var out []Finding
	warn := func(field, format string, a ...any) {
		out = append(out, Finding{Field: field, Msg: fmt.Sprintf(format, a...), Warning: true})
	}
	d := c.BFF.WithDefaults()
	if u, err := url.Parse(d.RedirectURL); err == nil {
		if want := d.PathPrefix + d.Paths.Callback; u.Path != want {
			out = append(out, Finding{Field: "bff.redirect_url", Msg: fmt.Sprintf(
				"its path %q is not the callback path %q (path_prefix + paths.callback): the provider would send the browser where bffgate does not finish the login", u.Path, want)})
		}
	}
	for _, f := range []struct{ field, v string }{
		{"bff.issuer", d.Issuer}, {"bff.redirect_url", d.RedirectURL}, {"bff.post_logout_redirect_url", d.PostLogoutRedirectURL},
	} {
		if u, err := url.Parse(f.v); err == nil && u.Scheme == "http" && !loopback(u.Hostname()) {
			warn(f.field, "%q is plain http off loopback: tokens and codes cross the network readable; use https", f.v)
		}
	}
	for _, f := range []struct{ field, v string }{{"listen", c.Listen}, {"admin_listen", c.AdminListen}} {
		if host, _, err := net.SplitHostPort(f.v); err == nil && host == "" {
			warn(f.field, "%q has no host, so it listens on every interface; write 127.0.0.1%s for this machine only, or 0.0.0.0%s to mean every interface", f.v, f.v, f.v)
		}
	}
	const minute, hour, day = 60, 3600, 86400
	for _, t := range []struct {
		field    string
		v        int
		min, max int
	}{
		{"bff.http_timeout", c.BFF.HTTPTimeout, 1, 5 * minute},
		{"bff.refresh_skew", c.BFF.RefreshSkew, 1, hour},
		{"bff.session_idle_timeout", c.BFF.SessionIdleTimeout, minute, 30 * day},
		{"bff.session_max_lifetime", c.BFF.SessionMaxLifetime, minute, 400 * day},
		{"limits.read_header_timeout", c.Limits.ReadHeaderTimeout, 1, 5 * minute},
		{"limits.idle_timeout", c.Limits.IdleTimeout, 1, day},
		{"limits.body_timeout", c.Limits.BodyTimeout, 1, day},
		{"limits.write_timeout", c.Limits.WriteTimeout, 1, day},
		{"limits.upstream_timeout", c.Limits.UpstreamTimeout, 1, day},
	} {
		switch {
		case t.v <= 0: // the default
		case t.v > t.max:
			warn(t.field, "is %d seconds (%s): durations are in seconds, not milliseconds", t.v, time.Duration(t.v)*time.Second)
		case t.v < t.min:
			warn(t.field, "is %d seconds: that is too short to be meant", t.v)
		}
	}
	return out
}

// loopback reports whether host is this machine for sure.
func loopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Probe is one result of CheckOnline: what was tried, and its error (nil:
// it works).
type Probe struct {
	What string
	Err  error
}

// CheckOnline is `bffgate check -online`: it contacts the provider
// (discovery, then the client's credentials at the token endpoint, see
// bff.Engine.ProbeClient) and the Redis store when one is configured, and
// says what works. Nothing is kept: no session, no token.
func CheckOnline(ctx context.Context, c *Config, p *Proxy) []Probe {
	var out []Probe
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	discovery := "provider discovery at " + c.BFF.Issuer
	if err := p.Engine.ProbeClient(ctx); errors.Is(err, bff.ErrDiscoveryFailed) {
		out = append(out, Probe{discovery, err})
	} else {
		out = append(out, Probe{discovery, nil}, Probe{"the client's credentials at the token endpoint", err})
	}
	if r := c.BFF.Redis; r.URL != "" || len(r.Addrs) > 0 {
		out = append(out, Probe{"the Redis session store", probeRedis(ctx, r)})
	}
	return out
}

func probeRedis(ctx context.Context, cfg redisstore.Config) error {
	st, err := redisstore.New(cfg)
	if err != nil {
		return err
	}
	defer st.Close()
	if _, err := st.Get(ctx, "bffgate-check-probe", 0); err != nil && !errors.Is(err, session.ErrNotFound) {
		return err
	}
	return nil
}
