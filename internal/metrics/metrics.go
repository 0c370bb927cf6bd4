// Package metrics turns the engine's bff.Observer calls into Prometheus
// series for bffgate serve (and the ext_authz service). It lives outside
// the core, so the Tyk plugin links no metrics library.
package metrics

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/bffgate/bffgate/core/bff"
)

// Metrics is a bff.Observer that keeps Prometheus series in its own
// registry, with the Go runtime's and the process's series beside them.
// Build it with New; it is safe for concurrent use.
type Metrics struct {
	reg *prometheus.Registry

	requests        *prometheus.CounterVec
	requestDuration *prometheus.HistogramVec
	refreshes       *prometheus.CounterVec
	providerCalls   *prometheus.HistogramVec
	providerErrors  *prometheus.CounterVec
	storeCalls      *prometheus.HistogramVec
	storeErrors     *prometheus.CounterVec
	sessionsStarted prometheus.Counter
	sessionsEnded   *prometheus.CounterVec
	upstreamCalls   *prometheus.HistogramVec
	upstreamErrors  *prometheus.CounterVec
}

var _ bff.Observer = (*Metrics)(nil)

// Latency buckets: the engine answers in microseconds, stores in
// milliseconds, providers in tens of milliseconds to seconds.
var (
	fastBuckets = []float64{.00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5}
	slowBuckets = []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}
)

// New returns Metrics with every series registered.
func New() *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
	f := func(c prometheus.Collector) { m.reg.MustRegister(c) }
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "bffgate_requests_total",
		Help: "Requests the engine decided on, by kind (api, public, login, callback, session, token, logout, logout_callback, backchannel_logout, sessions, dbsc_registration, dbsc_refresh, preflight) and outcome (forwarded, answered, or the error code)."},
		[]string{"kind", "outcome"})
	m.requestDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "bffgate_request_duration_seconds",
		Help: "Time the engine took to decide on a request (not the upstream's), by kind.", Buckets: fastBuckets},
		[]string{"kind"})
	m.refreshes = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "bffgate_refreshes_total",
		Help: "Requests that needed the access token refreshed, by outcome (refreshed, shared: waited for another request's refresh, failed) and error code when failed."},
		[]string{"outcome", "code"})
	m.providerCalls = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "bffgate_provider_request_duration_seconds",
		Help: "HTTP calls to the OpenID Provider, by endpoint (discovery, jwks, token, par, revocation, other).", Buckets: slowBuckets},
		[]string{"op"})
	m.providerErrors = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "bffgate_provider_errors_total",
		Help: "HTTP calls to the OpenID Provider that failed to get an answer (network errors, timeouts), by endpoint."},
		[]string{"op"})
	m.storeCalls = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "bffgate_store_request_duration_seconds",
		Help: "Calls to the session store, by operation (get, set, delete, take_index, members).", Buckets: fastBuckets},
		[]string{"op"})
	m.storeErrors = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "bffgate_store_errors_total",
		Help: "Calls to the session store that failed (unreachable, timed out), by operation."},
		[]string{"op"})
	m.sessionsStarted = prometheus.NewCounter(prometheus.CounterOpts{Name: "bffgate_sessions_started_total",
		Help: "Sessions started by a login."})
	m.sessionsEnded = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "bffgate_sessions_ended_total",
		Help: "Sessions ended, by reason (logout, backchannel_logout, refresh_rejected, expired, replaced, user, limit). Idle sessions expire in the store unseen."},
		[]string{"reason"})
	m.upstreamCalls = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "bffgate_upstream_request_duration_seconds",
		Help: "Time to the upstream's response headers, by route.", Buckets: slowBuckets},
		[]string{"route"})
	m.upstreamErrors = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "bffgate_upstream_errors_total",
		Help: "Upstream requests that got no response (unreachable, timed out), by route."},
		[]string{"route"})
	for _, c := range []prometheus.Collector{m.requests, m.requestDuration, m.refreshes, m.providerCalls, m.providerErrors,
		m.storeCalls, m.storeErrors, m.sessionsStarted, m.sessionsEnded, m.upstreamCalls, m.upstreamErrors,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})} {
		f(c)
	}
	return m
}

// Handler serves the series in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// Request implements bff.Observer.
func (m *Metrics) Request(kind string, status int, code bff.Code, d time.Duration) {
	outcome := string(code)
	switch {
	case status == 0:
		outcome = "forwarded"
	case code == "":
		outcome = "answered"
	}
	m.requests.WithLabelValues(kind, outcome).Inc()
	m.requestDuration.WithLabelValues(kind).Observe(d.Seconds())
}

// Refresh implements bff.Observer.
func (m *Metrics) Refresh(outcome string, code bff.Code) {
	m.refreshes.WithLabelValues(outcome, string(code)).Inc()
}

// ProviderCall implements bff.Observer.
func (m *Metrics) ProviderCall(op string, d time.Duration, err error) {
	m.providerCalls.WithLabelValues(op).Observe(d.Seconds())
	if err != nil {
		m.providerErrors.WithLabelValues(op).Inc()
	}
}

// StoreCall implements bff.Observer.
func (m *Metrics) StoreCall(op string, d time.Duration, err error) {
	m.storeCalls.WithLabelValues(op).Observe(d.Seconds())
	if err != nil {
		m.storeErrors.WithLabelValues(op).Inc()
	}
}

// Session implements bff.Observer.
func (m *Metrics) Session(event, reason string, n int) {
	if event == "started" {
		m.sessionsStarted.Add(float64(n))
		return
	}
	m.sessionsEnded.WithLabelValues(reason).Add(float64(n))
}

// Upstream records one upstream request of a route: the time to its
// response headers, or a failure to get any.
func (m *Metrics) Upstream(route string, d time.Duration, err error) {
	m.upstreamCalls.WithLabelValues(route).Observe(d.Seconds())
	if err != nil {
		m.upstreamErrors.WithLabelValues(route).Inc()
	}
}
