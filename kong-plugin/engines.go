package main

import (
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bffgate/bffgate/core/bff"
)

// Kong starts a plugin instance per configured plugin in each of its
// worker processes, and a new one whenever the configuration is saved
// again; go-pdk gives each instance a fresh *Config. All of them talk to
// this one process, so the engine — and the in-memory session store with
// it — is shared by every instance with the same configuration, and a
// changed configuration gets a new engine.
var engines = registry{byKey: map[string]*engine{}}

// Bounds on what the registry remembers. go-pdk does not tell a plugin
// when Kong closes an instance, so instances and superseded configurations
// would otherwise pile up over a long-running process's reconfigurations.
const (
	maxInstances = 4096 // instance → engine shortcuts; dropped all at once past this
	maxEngines   = 64   // distinct configurations; the least recently attached goes
)

// registry maps plugin instances and configurations to engines.
type registry struct {
	instances sync.Map     // *Config → *engine, the shortcut for every request after an instance's first
	ninst     atomic.Int64 // entries in instances, about

	mu    sync.Mutex // guards byKey, clock and every engine's attached
	byKey map[string]*engine
	clock uint64
}

// engine is one bff.Engine, built on first use.
type engine struct {
	cfg      bff.Config
	deadline time.Duration // bounds the engine's work on one request
	ready    atomic.Pointer[bff.Engine]
	mu       sync.Mutex // guards err; held while building
	err      error      // a *bff.ConfigError: the config will not get better
	logged   atomic.Bool
	attached uint64 // registry.clock when an instance last attached
}

// forConfig returns the engine of a plugin instance's configuration.
func (r *registry) forConfig(c *Config) *engine {
	if e, ok := r.instances.Load(c); ok {
		return e.(*engine)
	}
	key := configKey(c)
	r.mu.Lock()
	r.clock++
	e := r.byKey[key]
	if e == nil {
		cfg := bff.Config(*c)
		cfg.Policy, cfg.Route = bff.Policy{}, bff.Route{} // per instance: see serve
		e = &engine{cfg: cfg, deadline: requestDeadline(cfg)}
		r.byKey[key] = e
	}
	e.attached = r.clock
	if len(r.byKey) > maxEngines {
		r.evictLocked()
	}
	r.mu.Unlock()
	if r.ninst.Add(1) > maxInstances {
		r.instances.Clear()
		r.ninst.Store(1)
	}
	r.instances.Store(c, e)
	return e
}

// evictLocked forgets the engine attached least recently, and the
// instances attached to it: their next request attaches again, to a new
// engine. The evicted engine is closed (its Redis connections) once the
// requests that may still use it are over.
func (r *registry) evictLocked() {
	var oldest string
	for k, e := range r.byKey {
		if oldest == "" || e.attached < r.byKey[oldest].attached {
			oldest = k
		}
	}
	gone := r.byKey[oldest]
	delete(r.byKey, oldest)
	r.instances.Range(func(c, e any) bool {
		if e == gone {
			r.instances.Delete(c)
		}
		return true
	})
	time.AfterFunc(evictGrace, func() {
		if b := gone.ready.Load(); b != nil {
			b.Close()
		}
	})
}

// evictGrace is how long an evicted engine stays open for requests that
// took it before it was evicted: longer than any request's deadline.
var evictGrace = 2 * time.Minute

// configKey identifies a configuration by its JSON, which holds every
// field Kong can set. A config with Go-only hooks set (tests) is keyed by
// its identity as well: functions and clients cannot be compared.
//
// The policy and the route (resource, dpop_url) are not part of the key:
// they are the Kong route's, passed with each request (bff.Request.Policy,
// Engine.HandleRoute), so the plugins of routes that differ only in them
// share one engine and its in-memory sessions, and a login on one route
// is a session on the others (with a token per resource).
func configKey(c *Config) string {
	cfg := bff.Config(*c)
	cfg.Policy, cfg.Route = bff.Policy{}, bff.Route{}
	b, _ := json.Marshal(cfg) // only strings, numbers, bools, slices and structs
	sum := sha256.Sum256(b)
	key := fmt.Sprintf("%x", sum)
	if c.Store != nil || c.HTTPClient != nil || c.Now != nil || c.Logger != nil {
		key += fmt.Sprintf("/%p", c)
	}
	return key
}

// requestDeadline bounds the engine's work on one request: the provider's
// discovery and a refresh wait (http_timeout each) and the store.
func requestDeadline(c bff.Config) time.Duration {
	return 2*time.Duration(c.WithDefaults().HTTPTimeout)*time.Second + time.Second
}

// get returns the engine, building it on first use. A config error is
// kept; any other error is returned and the next request tries again.
func (e *engine) get() (*bff.Engine, error) {
	if b := e.ready.Load(); b != nil {
		return b, nil
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if b := e.ready.Load(); b != nil {
		return b, nil
	}
	if e.err != nil {
		return nil, e.err
	}
	cfg := e.cfg
	if cfg.Logger == nil {
		cfg.Logger = engineLog
	}
	b, err := bff.New(cfg)
	if err != nil {
		if errors.As(err, new(*bff.ConfigError)) {
			e.err = err
		}
		return nil, err
	}
	e.ready.Store(b)
	return b, nil
}
