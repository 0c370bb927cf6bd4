package serve

import (
	"context"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/bffgate/bffgate/core/session"
)

// otlpReceiver is a stand-in for an OpenTelemetry Collector's OTLP/HTTP
// traces endpoint (no Collector runs here): it decodes what the real
// exporter sends.
type otlpReceiver struct {
	mu    sync.Mutex
	spans []*tracepb.Span
	raw   []byte
}

func (o *otlpReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	var req coltracepb.ExportTraceServiceRequest
	if r.URL.Path != "/v1/traces" || proto.Unmarshal(body, &req) != nil {
		http.Error(w, "bad export", http.StatusBadRequest)
		return
	}
	o.mu.Lock()
	o.raw = append(o.raw, body...)
	for _, rs := range req.ResourceSpans {
		for _, ss := range rs.ScopeSpans {
			o.spans = append(o.spans, ss.Spans...)
		}
	}
	o.mu.Unlock()
	b, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
	w.Header().Set("Content-Type", "application/x-protobuf")
	w.Write(b)
}

// TestTracing: with tracing on, a request that comes with a traceparent
// joins its trace; the upstream and the provider get a traceparent of a
// child span; the upstream call, the provider call and the store call are
// spans of the request's trace, exported over OTLP/HTTP; no span holds the
// query or the cookie.
func TestTracing(t *testing.T) {
	recv := &otlpReceiver{}
	collector := httptest.NewServer(recv)
	defer collector.Close()
	var mu sync.Mutex
	seen := map[string]string{} // who -> the traceparent it got
	record := func(who string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			seen[who] = r.Header.Get("Traceparent")
			mu.Unlock()
			if who == "provider" {
				http.NotFound(w, r) // discovery fails: only the header matters here
				return
			}
			io.WriteString(w, "up")
		}
	}
	up := httptest.NewServer(record("upstream"))
	defer up.Close()
	idp := httptest.NewServer(record("provider"))
	defer idp.Close()

	c := testConfig(t, up.URL)
	c.BFF.Issuer = idp.URL
	c.Tracing = &Tracing{Endpoint: collector.URL + "/v1/traces"}
	p, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(p.Handler)
	defer srv.Close()

	const traceID, parent = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	id, _ := session.NewID()
	for _, tt := range []struct{ path, traceparent string }{
		{"/direct/x?code=secret-code", "00-" + traceID + "-" + parent + "-01"},
		{"/login", "00-" + traceID + "-" + parent + "-01"},
		{"/api/x", "00-" + traceID + "-" + parent + "-01"},
	} {
		req, _ := http.NewRequest("GET", srv.URL+tt.path, nil)
		req.Header.Set("Traceparent", tt.traceparent)
		req.Header.Set("X-CSRF", "1")
		req.AddCookie(&http.Cookie{Name: "__Host-bffgate", Value: id.String()})
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	for _, who := range []string{"upstream", "provider"} {
		got := seen[who]
		if !strings.HasPrefix(got, "00-"+traceID+"-") || strings.Contains(got, parent) {
			t.Errorf("the %s got traceparent %q, want one in trace %s of a span other than the caller's", who, got, traceID)
		}
	}
	if err := p.tracer.tp.ForceFlush(context.Background()); err != nil {
		t.Fatal(err)
	}
	recv.mu.Lock()
	defer recv.mu.Unlock()
	names := map[string]int{}
	for _, s := range recv.spans {
		if hex.EncodeToString(s.TraceId) != traceID {
			t.Errorf("span %q in trace %x, want %s", s.Name, s.TraceId, traceID)
		}
		if s.Kind == tracepb.Span_SPAN_KIND_SERVER && hex.EncodeToString(s.ParentSpanId) != parent {
			t.Errorf("server span %q has parent %x, want the caller's %s", s.Name, s.ParentSpanId, parent)
		}
		names[s.Name]++
	}
	for _, want := range []string{"GET", "upstream GET", "provider GET", "store get"} {
		if names[want] == 0 {
			t.Errorf("no %q span; spans: %v", want, names)
		}
	}
	for _, secret := range []string{"secret-code", id.String()} {
		if strings.Contains(string(recv.raw), secret) {
			t.Errorf("the exported spans hold %q", secret)
		}
	}
}

func TestTracingConfig(t *testing.T) {
	for _, tt := range []struct {
		tr   Tracing
		want string
	}{
		{Tracing{}, "tracing.endpoint: set"},
		{Tracing{Endpoint: "http://127.0.0.1:4318/v1/traces", SampleRatio: 2}, "tracing.sample_ratio"},
	} {
		c := testConfig(t, "http://127.0.0.1:1")
		c.Tracing = &tt.tr
		if _, err := New(c); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("tracing %+v: %v, want %q", tt.tr, err, tt.want)
		}
	}
}
