package main

import (
	"strings"
	"testing"

	"github.com/bffgate/bffgate/internal/loadtest"
)

// TestStack is the smoke test of `make bench-nginx` that make test runs:
// the same stack (real nginx, bffgate extauthz, the test OpenID Provider),
// each target answered once with 200, the authenticated one with the
// bearer at the API and the plain one without; no wrk, no timing.
func TestStack(t *testing.T) {
	st, err := start()
	if err != nil {
		t.Fatal(err)
	}
	defer st.close()
	if len(st.targets) != 2 {
		t.Fatalf("%d targets", len(st.targets))
	}
	if err := loadtest.Check(st.targets[0]); err != nil {
		t.Fatalf("%s: %v", st.targets[0].Name, err)
	}
	if st.plain.Load() != 1 || st.bearers.Load() != 0 {
		t.Fatalf("without auth: the API got %d plain and %d bearer requests, want 1 and 0", st.plain.Load(), st.bearers.Load())
	}
	if err := loadtest.Check(st.targets[1]); err != nil {
		t.Fatalf("%s: %v", st.targets[1].Name, err)
	}
	if st.bearers.Load() != 1 {
		t.Fatalf("with bffgate: the API got %d bearer requests, want 1", st.bearers.Load())
	}
	// Without the session, nothing reaches the API.
	noSession := st.targets[1]
	noSession.Header = []string{"X-CSRF: 1"}
	if err := loadtest.Check(noSession); err == nil {
		t.Fatal("a request without a session got 200")
	}
	if st.plain.Load()+st.bearers.Load() != 2 {
		t.Fatal("a request without a session reached the API")
	}
	if s := section(st.targets, []loadtest.Result{{RPS: 2, P50: "1ms", P99: "2ms"}, {RPS: 1, P50: "2ms", P99: "4ms"}}, 1, 1, ""); !strings.Contains(s, "| 0.50 |") || !strings.Contains(s, "| 2.00× |") {
		t.Fatalf("the section does not show the ratios:\n%s", s)
	}
}
