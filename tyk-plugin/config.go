package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/bffgate/bffgate/core/bff"
)

// configEnv names the environment variable holding the config file's path.
const configEnv = "BFFGATE_CONFIG"

// File is the config file: JSON only (YAML would need a dependency that
// every Tyk gateway would then have to share).
//
//	{"apis": [{"listen_path": "/app/", "config": {"issuer": "...", ...}}]}
type File struct {
	APIs []API `json:"apis"`
}

// API configures the BFF of one Tyk API.
type API struct {
	// ListenPath is the Tyk API's listen path, e.g. "/app/". A request
	// belongs to the API with the longest listen path that is the request
	// path or a prefix of it ending at a "/". Required.
	ListenPath string `json:"listen_path"`
	// Host, when set, is the Tyk API's custom domain: the API only takes
	// requests for this host (with or without the request's port, which
	// must match when Host has one). At the same listen path an API with
	// a matching Host goes before one without.
	Host string `json:"host"`
	// Config is the engine's configuration. Its path_prefix defaults to
	// the listen path without its trailing "/": Tyk's hook sees the listen
	// path on the request path, so the BFF's endpoints are below it. Its
	// route (resource, dpop_url) is this API's; route.strip_prefix
	// defaults to the listen path too, so dpop_url is the URL the listen
	// path goes to.
	Config bff.Config `json:"config"`
}

// apis are the engines, in the order they are tried.
type apis []api

type api struct {
	prefix string // listen path without its trailing "/"
	host   string // lower case; "" takes every host
	engine *bff.Engine
}

// loadFile reads the file named by the environment variable env and builds
// one engine per API. Errors name the file, the API and the field, never a
// secret: the gateway answers them to clients.
func loadFile(env string) (*apis, error) {
	path := os.Getenv(env)
	if path == "" {
		return nil, fmt.Errorf("%s is not set: set it on the gateway to the path of bffgate's JSON config file", env)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", env, err)
	}
	// The file's top level first, then each API on its own, so an error
	// inside an API (an unknown field, a wrong type) names the API.
	var top struct {
		APIs []json.RawMessage `json:"apis"`
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&top); err != nil {
		return nil, fmt.Errorf("%s %s: not a valid bffgate config (JSON; YAML is not read): %w", env, path, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%s %s: not a valid bffgate config: more than one JSON value", env, path)
	}
	f := File{APIs: make([]API, len(top.APIs))}
	for i, r := range top.APIs {
		dec := json.NewDecoder(bytes.NewReader(r))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&f.APIs[i]); err != nil {
			return nil, fmt.Errorf("%s %s: %s: not a valid API entry (its fields are listen_path, host and config; config's are in docs/config.md): %w", env, path, apiName(i, r), err)
		}
	}
	a, err := build(f)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", env, path, err)
	}
	return a, nil
}

// apiName names the API entry raw, the i-th of the file, as errors do:
// apis[1] (listen_path "/tm/"), or apis[1] when it has no listen path.
func apiName(i int, raw []byte) string {
	var a struct {
		ListenPath string `json:"listen_path"`
	}
	if json.Unmarshal(raw, &a) != nil || a.ListenPath == "" {
		return fmt.Sprintf("apis[%d]", i)
	}
	return fmt.Sprintf("apis[%d] (listen_path %q)", i, a.ListenPath)
}

// build validates f and builds its engines.
func build(f File) (*apis, error) {
	if len(f.APIs) == 0 {
		return nil, errors.New(`"apis" is empty: add one entry per Tyk API, e.g. {"listen_path": "/app/", "config": {...}}`)
	}
	var out apis
	// bff.New contacts neither the provider nor Redis, so its errors are
	// the file's; engines built before one are closed (Redis connections).
	fail := func(err error) (*apis, error) {
		for _, x := range out {
			x.engine.Close()
		}
		return nil, err
	}
	seen := map[string]int{}
	for i, a := range f.APIs {
		where := fmt.Sprintf("apis[%d]", i)
		if !strings.HasPrefix(a.ListenPath, "/") || strings.ContainsAny(a.ListenPath, "{}?#") {
			return fail(fmt.Errorf("%s.listen_path %q: give the Tyk API's listen path, a plain path starting with /, e.g. /app/", where, a.ListenPath))
		}
		prefix := strings.TrimSuffix(a.ListenPath, "/")
		host := strings.ToLower(a.Host)
		key := host + " " + prefix
		if j, dup := seen[key]; dup {
			return fail(fmt.Errorf("%s: apis[%d] has the same listen_path and host: merge them or tell them apart by host", where, j))
		}
		seen[key] = i
		cfg := a.Config
		if cfg.PathPrefix == "" {
			cfg.PathPrefix = prefix
		} else if cfg.PathPrefix != prefix && !strings.HasPrefix(cfg.PathPrefix, prefix+"/") {
			return fail(fmt.Errorf("%s.config.path_prefix %q is outside listen_path %q: Tyk's hook sees the listen path on every request path, so leave path_prefix empty (it defaults to %q) or put it below the listen path", where, cfg.PathPrefix, a.ListenPath, prefix))
		}
		if cfg.Route.DPoPURL != "" && cfg.Route.StripPrefix == "" {
			// Proofs are for the URL Tyk calls: config.route.dpop_url is
			// where the listen path goes (see README.md).
			cfg.Route.StripPrefix = prefix
		}
		if cfg.Logger == nil {
			cfg.Logger = logger
		}
		b, err := bff.New(cfg)
		if err != nil {
			return fail(fmt.Errorf("%s (listen_path %q): %w", where, a.ListenPath, err))
		}
		out = append(out, api{prefix: prefix, host: host, engine: b})
	}
	sort.SliceStable(out, func(i, j int) bool {
		if len(out[i].prefix) != len(out[j].prefix) {
			return len(out[i].prefix) > len(out[j].prefix)
		}
		return out[i].host != "" && out[j].host == ""
	})
	return &out, nil
}

// match returns the engine of the API a request belongs to, or nil.
func (a *apis) match(host, path string) *bff.Engine {
	for i := range *a {
		if x := &(*a)[i]; underPrefix(path, x.prefix) && x.matchHost(host) {
			return x.engine
		}
	}
	return nil
}

// underPrefix reports whether path is prefix or below it (prefix followed
// by "/"). It runs on every request for every API of the file, so it
// compares in place rather than building prefix+"/" each time (in a
// profile under wrk that concatenation took 4% of the hook's CPU time).
func underPrefix(path, prefix string) bool {
	return strings.HasPrefix(path, prefix) && (len(path) == len(prefix) || path[len(prefix)] == '/')
}

func (x *api) matchHost(host string) bool {
	if x.host == "" {
		return true
	}
	host = strings.ToLower(host)
	if host == x.host {
		return true
	}
	// A Host without a port matches the request's host name on any port.
	if i := portIndex(host); i >= 0 && portIndex(x.host) < 0 {
		return host[:i] == x.host
	}
	return false
}

// portIndex returns the index of the ":" before host's port, or -1.
func portIndex(host string) int {
	i := strings.LastIndexByte(host, ':')
	if i < 0 || i < strings.LastIndexByte(host, ']') {
		return -1
	}
	return i
}
