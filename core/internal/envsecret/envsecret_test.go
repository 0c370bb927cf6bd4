package envsecret

import (
	"strings"
	"testing"
)

func TestResolve(t *testing.T) {
	t.Setenv("ENVSECRET_TEST", "s3cret")
	t.Setenv("ENVSECRET_EMPTY", "")
	for _, tt := range []struct{ in, want, wantErr string }{
		{"plain", "plain", ""},
		{"", "", ""},
		{"env:ENVSECRET_TEST", "s3cret", ""},
		{"env:ENVSECRET_EMPTY", "", "ENVSECRET_EMPTY is empty or not set"},
		{"env:ENVSECRET_NEVER_SET", "", "ENVSECRET_NEVER_SET is empty or not set"},
		{"ENV:X", "ENV:X", ""}, // the prefix is lower case, as documented
	} {
		got, err := Resolve(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Resolve(%q) error = %v, want %q", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("Resolve(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}
