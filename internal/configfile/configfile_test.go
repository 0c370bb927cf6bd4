package configfile

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoad(t *testing.T) {
	type cfg struct {
		Listen string `json:"listen"`
	}
	dir := t.TempDir()
	for _, tt := range []struct{ name, body, wantErr string }{
		{"ok", `{"listen":"127.0.0.1:1"}`, ""},
		{"unknown field", `{"lisen":"x"}`, "lisen"},
		{"two values", `{} {}`, "more than one JSON value"},
		{"syntax", `{"listen":}`, "invalid character"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := filepath.Join(dir, tt.name+".json")
			os.WriteFile(f, []byte(tt.body), 0o600)
			var c cfg
			err := Load(f, &c)
			if tt.wantErr == "" {
				if err != nil || c.Listen != "127.0.0.1:1" {
					t.Fatalf("Load = %+v, %v", c, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), f) {
				t.Fatalf("Load error = %v, want one naming %q and the file", err, tt.wantErr)
			}
		})
	}
}
