package configfile

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoad(t *testing.T) {
	type route struct {
		Path     string `json:"path"`
		Upstream string `json:"upstream"`
	}
	type cfg struct {
		Listen string `json:"listen"`
		BFF    struct {
			HTTPTimeout int `json:"http_timeout"`
		} `json:"bff"`
		Routes []route `json:"routes"`
	}
	dir := t.TempDir()
	for _, tt := range []struct{ name, body, wantErr string }{
		{"ok", `{"listen":"127.0.0.1:1"}`, ""},
		{"unknown field", `{"lisen":"x"}`, ":1:2: lisen: unknown field"},
		{"unknown nested field", "{\n  \"routes\": [\n    {\"path\": \"/\", \"upstrem\": \"x\"}]}", ":3:19: routes[0].upstrem: unknown field"},
		{"two values", `{} {}`, ":1:4: more than one JSON value"},
		{"syntax", `{"listen":}`, ":1:11: listen: invalid character '}'"},
		{"syntax on a later line", "{\n  \"bff\": {\n    \"http_timeout\": 10,\n  }\n}", ":4:3: bff.http_timeout: invalid character '}'"},
		{"missing comma", "{\n  \"listen\": \"x\"\n  \"bff\": {}\n}", ":3:3: listen: invalid character '\"' after object key:value pair"},
		{"type", "{\"bff\": {\"http_timeout\": \"10\"}}", ":1:10: bff.http_timeout: is a string, want a number"},
		{"type in a list", "{\"routes\": [{\"path\": \"/\"}, {\"path\": 1}]}", ":1:29: routes[1].path: is a number, want a string"},
		{"truncated", "{\"routes\": [", ":1:13: the file ends before its JSON does"},
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
			if err == nil || !strings.Contains(err.Error(), f+tt.wantErr) {
				t.Fatalf("Load error = %v, want %q after the file name", err, tt.wantErr)
			}
		})
	}
}
