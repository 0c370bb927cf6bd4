package hostlog

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func TestLine(t *testing.T) {
	got := Line("bffgate: internal error", "error", errors.New(`bad "thing"`), "api", "/app/")
	if want := `msg="bffgate: internal error" error="bad \"thing\"" api=/app/`; got != want {
		t.Fatalf("Line = %s, want %s", got, want)
	}
}

func TestNew(t *testing.T) {
	var b bytes.Buffer
	New(&b).Warn("bffgate: x", "k", "v w")
	if s := b.String(); !strings.HasPrefix(s, "time=") || !strings.HasSuffix(s, ` level=WARN msg="bffgate: x" k="v w"`+"\n") {
		t.Fatalf("New's line %q is not serve's shape", s)
	}
}
