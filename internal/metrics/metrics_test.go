package metrics

import (
	"errors"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/bffgate/bffgate/core/bff"
)

func TestSeries(t *testing.T) {
	m := New()
	m.Request("api", 0, "", time.Millisecond)
	m.Request("api", 401, bff.CodeUnauthenticated, time.Millisecond)
	m.Request("session", 200, "", time.Millisecond)
	m.Refresh("failed", bff.CodeIdPUnavailable)
	m.ProviderCall("token", 30*time.Millisecond, errors.New("refused"))
	m.StoreCall("get", time.Millisecond, nil)
	m.Session("started", "", 1)
	m.Session("ended", "backchannel_logout", 3)
	m.Upstream("/api/", 5*time.Millisecond, nil)
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	for _, want := range []string{
		`bffgate_requests_total{kind="api",outcome="forwarded"} 1`,
		`bffgate_requests_total{kind="api",outcome="unauthenticated"} 1`,
		`bffgate_requests_total{kind="session",outcome="answered"} 1`,
		`bffgate_refreshes_total{code="idp_unavailable",outcome="failed"} 1`,
		`bffgate_provider_errors_total{op="token"} 1`,
		`bffgate_provider_request_duration_seconds_count{op="token"} 1`,
		`bffgate_store_request_duration_seconds_count{op="get"} 1`,
		`bffgate_sessions_started_total 1`,
		`bffgate_sessions_ended_total{reason="backchannel_logout"} 3`,
		`bffgate_upstream_request_duration_seconds_count{route="/api/"} 1`,
		`go_goroutines `,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("the scrape lacks %s", want)
		}
	}
}
