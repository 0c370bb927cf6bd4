package serve

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.37.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/bffgate/bffgate/core/session"
	"github.com/bffgate/bffgate/internal/version"
)

// Tracing sends OpenTelemetry traces over OTLP/HTTP: a span per request,
// child spans for the upstream call, the calls to the provider and the
// session store, with the W3C traceparent sent to the upstream and the
// provider. A request that comes with a traceparent joins that trace.
// Spans carry methods, paths without their query, status codes and error
// codes: never a header, cookie or token.
type Tracing struct {
	// Endpoint is the OTLP/HTTP traces URL, e.g.
	// "http://127.0.0.1:4318/v1/traces" (an OpenTelemetry Collector).
	// Required with tracing.
	Endpoint string `json:"endpoint"`
	// ServiceName is the traces' service.name. Defaults to "bffgate".
	ServiceName string `json:"service_name"`
	// SampleRatio is the share of new traces recorded, from 0 to 1; a
	// request whose caller sampled its trace is always recorded, one whose
	// caller did not never is. Defaults to 1 (every trace).
	SampleRatio float64 `json:"sample_ratio"`
}

// tracer is the tracing of a Proxy: nil without tracing.
type tracer struct {
	tp   *sdktrace.TracerProvider
	t    trace.Tracer
	prop propagation.TextMapPropagator
}

func newTracer(c *Tracing) (*tracer, error) {
	if c.Endpoint == "" {
		return nil, fmt.Errorf("bffgate serve: config: tracing.endpoint: set the OTLP/HTTP traces URL, e.g. \"http://127.0.0.1:4318/v1/traces\"")
	}
	if c.SampleRatio < 0 || c.SampleRatio > 1 {
		return nil, fmt.Errorf("bffgate serve: config: tracing.sample_ratio: %v is not between 0 and 1", c.SampleRatio)
	}
	exp, err := otlptracehttp.New(context.Background(), otlptracehttp.WithEndpointURL(c.Endpoint))
	if err != nil {
		return nil, fmt.Errorf("bffgate serve: config: tracing.endpoint: %w", err)
	}
	name, ratio := c.ServiceName, c.SampleRatio
	if name == "" {
		name = "bffgate"
	}
	if ratio == 0 {
		ratio = 1
	}
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp),
		sdktrace.WithResource(resource.NewSchemaless(semconv.ServiceName(name), semconv.ServiceVersion(version.Version))),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(ratio))),
	)
	return &tracer{tp: tp, t: tp.Tracer("github.com/bffgate/bffgate/internal/serve"), prop: propagation.TraceContext{}}, nil
}

// shutdown sends the spans not yet sent, within 5 seconds.
func (t *tracer) shutdown() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = t.tp.Shutdown(ctx)
}

// handler starts a server span per request, in the caller's trace when
// the request has a traceparent.
func (t *tracer) handler(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r, x := withExchange(r)
		n := &x.note
		ctx := t.prop.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
		ctx, span := t.t.Start(ctx, r.Method, trace.WithSpanKind(trace.SpanKindServer),
			trace.WithAttributes(semconv.HTTPRequestMethodKey.String(r.Method), semconv.URLPath(r.URL.EscapedPath())))
		defer span.End()
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		h.ServeHTTP(sw, r.WithContext(ctx))
		span.SetAttributes(semconv.HTTPResponseStatusCode(sw.status), attribute.String("bffgate.kind", n.kind))
		if n.code != "" {
			span.SetAttributes(attribute.String("bffgate.error_code", string(n.code)))
		}
		if sw.status >= 500 {
			span.SetStatus(codes.Error, string(n.code))
		}
	})
}

// transport makes a client span of each call and sends its traceparent.
func (t *tracer) transport(next http.RoundTripper, peer string) http.RoundTripper {
	return &tracedTransport{next: next, t: t, peer: peer}
}

type tracedTransport struct {
	next http.RoundTripper
	t    *tracer
	peer string // "upstream" or "provider"
}

func (tt *tracedTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	ctx, span := tt.t.t.Start(r.Context(), tt.peer+" "+r.Method, trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(semconv.HTTPRequestMethodKey.String(r.Method), semconv.ServerAddress(r.URL.Hostname()), semconv.URLPath(r.URL.EscapedPath())))
	defer span.End()
	r = r.Clone(ctx) // a RoundTripper must not change its request; the body is shared
	tt.t.prop.Inject(ctx, propagation.HeaderCarrier(r.Header))
	resp, err := tt.next.RoundTrip(r)
	if err != nil {
		span.SetStatus(codes.Error, causeOf(err).Error())
		return nil, err
	}
	span.SetAttributes(semconv.HTTPResponseStatusCode(resp.StatusCode))
	if resp.StatusCode >= 500 {
		span.SetStatus(codes.Error, resp.Status)
	}
	return resp, nil
}

// store makes a span of each session store call.
func (t *tracer) store(s session.Store) session.Store {
	ts := tracedStore{Store: s, t: t}
	if l, ok := s.(session.Locker); ok {
		return &tracedLockingStore{tracedStore: ts, Locker: l}
	}
	return &ts
}

type tracedStore struct {
	session.Store
	t *tracer
}

type tracedLockingStore struct {
	tracedStore
	session.Locker
}

func (s *tracedStore) span(ctx context.Context, op string) (context.Context, trace.Span) {
	return s.t.t.Start(ctx, "store "+op, trace.WithSpanKind(trace.SpanKindClient))
}

func end(span trace.Span, err error) {
	if err != nil {
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}

func (s *tracedStore) Get(ctx context.Context, key string, ttl time.Duration) ([]byte, error) {
	ctx, span := s.span(ctx, "get")
	v, err := s.Store.Get(ctx, key, ttl)
	if err == session.ErrNotFound {
		end(span, nil)
	} else {
		end(span, err)
	}
	return v, err
}

func (s *tracedStore) Set(ctx context.Context, key string, v []byte, ttl time.Duration, idx ...string) error {
	ctx, span := s.span(ctx, "set")
	err := s.Store.Set(ctx, key, v, ttl, idx...)
	end(span, err)
	return err
}

func (s *tracedStore) Delete(ctx context.Context, keys ...string) error {
	ctx, span := s.span(ctx, "delete")
	err := s.Store.Delete(ctx, keys...)
	end(span, err)
	return err
}

func (s *tracedStore) TakeIndex(ctx context.Context, index string) ([]string, error) {
	ctx, span := s.span(ctx, "take_index")
	keys, err := s.Store.TakeIndex(ctx, index)
	end(span, err)
	return keys, err
}

func (s *tracedLockingStore) TryLock(ctx context.Context, key string, ttl time.Duration) (func(), bool, error) {
	ctx, span := s.span(ctx, "lock")
	release, ok, err := s.Locker.TryLock(ctx, key, ttl)
	span.SetAttributes(attribute.Bool("bffgate.lock_taken", ok))
	end(span, err)
	return release, ok, err
}
