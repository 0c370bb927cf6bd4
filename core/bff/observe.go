package bff

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/bffgate/bffgate/core/session"
)

// Observer receives what the engine does, for metrics: a gateway adapter
// turns the calls into its own (bffgate serve into Prometheus series). The
// core depends on no metrics library, so the Tyk plugin links none.
//
// Methods are called on the request path: they must be quick, must not
// block, and must be safe for concurrent use. Their string arguments are
// from small fixed sets named in each method's comment, so they suit
// metric labels.
type Observer interface {
	// Request is called once per Handle or HandlePublic call. kind is
	// "login", "callback", "session", "token", "logout",
	// "logout_callback", "backchannel_logout", "sessions", "dbsc_registration",
	// "dbsc_refresh", "api", "public" or "preflight"; code is "" for a forwarded request or a BFF answer that
	// is not an error, else the error code.
	Request(kind string, status int, code Code, d time.Duration)
	// Refresh is called once per request that needed a refresh, with
	// outcome "refreshed" (this request's refresh), "shared" (it waited for
	// another's) or "failed"; code says why it failed.
	Refresh(outcome string, code Code)
	// ProviderCall is called once per HTTP call to the provider; op is
	// "discovery", "jwks", "token", "par", "revocation" or "other".
	ProviderCall(op string, d time.Duration, err error)
	// StoreCall is called once per call to the session store; op is
	// "get", "set", "delete", "take_index" or "members".
	StoreCall(op string, d time.Duration, err error)
	// Session is called when sessions start or end: event is "started",
	// or "ended" with reason "logout", "backchannel_logout",
	// "refresh_rejected", "expired", "replaced", "user" (from the user's
	// list of sessions) or "limit" (session_max_per_user); n is how many.
	Session(event, reason string, n int)
}

// noObserver is the Observer when Config.Observer is nil.
type noObserver struct{}

func (noObserver) Request(string, int, Code, time.Duration)  {}
func (noObserver) Refresh(string, Code)                      {}
func (noObserver) ProviderCall(string, time.Duration, error) {}
func (noObserver) StoreCall(string, time.Duration, error)    {}
func (noObserver) Session(string, string, int)               {}

// observedStore reports every call of a session.Store to an Observer.
type observedStore struct {
	session.Store
	obs Observer
}

// observedLockingStore keeps the Locker of a store that has one.
type observedLockingStore struct {
	observedStore
	session.Locker
}

func observeStore(s session.Store, obs Observer) session.Store {
	o := observedStore{Store: s, obs: obs}
	if l, ok := s.(session.Locker); ok {
		return &observedLockingStore{observedStore: o, Locker: l}
	}
	return &o
}

func (s *observedStore) Get(ctx context.Context, key string, ttl time.Duration) ([]byte, error) {
	t := time.Now()
	v, err := s.Store.Get(ctx, key, ttl)
	failed := err
	if errors.Is(err, session.ErrNotFound) {
		failed = nil // an answer, not a failure
	}
	s.obs.StoreCall("get", time.Since(t), failed)
	return v, err
}

func (s *observedStore) Set(ctx context.Context, key string, v []byte, ttl time.Duration, idx ...string) error {
	t := time.Now()
	err := s.Store.Set(ctx, key, v, ttl, idx...)
	s.obs.StoreCall("set", time.Since(t), err)
	return err
}

func (s *observedStore) Delete(ctx context.Context, keys ...string) error {
	t := time.Now()
	err := s.Store.Delete(ctx, keys...)
	s.obs.StoreCall("delete", time.Since(t), err)
	return err
}

// Members keeps the Lister of a store that has one (ErrNoList
// otherwise), so that the user's list of sessions and the per-user cap
// work with an Observer too.
func (s *observedStore) Members(ctx context.Context, index string) ([]session.Member, error) {
	l, ok := s.Store.(session.Lister)
	if !ok {
		return nil, session.ErrNoList
	}
	t := time.Now()
	m, err := l.Members(ctx, index)
	s.obs.StoreCall("members", time.Since(t), err)
	return m, err
}

func (s *observedStore) TakeIndex(ctx context.Context, index string) ([]string, error) {
	t := time.Now()
	keys, err := s.Store.TakeIndex(ctx, index)
	s.obs.StoreCall("take_index", time.Since(t), err)
	return keys, err
}

// observedTransport reports every call to the provider.
type observedTransport struct {
	next http.RoundTripper
	obs  Observer
	b    *Engine
}

func (t *observedTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	start := time.Now()
	resp, err := t.next.RoundTrip(r)
	t.obs.ProviderCall(t.b.providerOp(r), time.Since(start), err)
	return resp, err
}

// providerOp names a call to the provider by the endpoint it goes to,
// compared whole: endpoints may be below one another (oidc-provider's
// revocation is <token>/revocation).
func (b *Engine) providerOp(r *http.Request) string {
	if strings.HasSuffix(r.URL.Path, "/.well-known/openid-configuration") {
		return "discovery"
	}
	p := b.prov.cached()
	if p == nil {
		return "other"
	}
	u := *r.URL
	u.RawQuery, u.Fragment = "", ""
	switch u.String() {
	case p.tokenURL:
		return "token"
	case p.parEndpoint:
		return "par"
	case p.revocation:
		return "revocation"
	case p.jwksURL:
		return "jwks"
	}
	return "other"
}
