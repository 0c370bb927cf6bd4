package tykhost_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bffgate/bffgate/tyk-plugin/tykhost"
)

// readmeDefinition returns the first JSON block after the line heading in
// tyk-plugin/README.md, with its upstream pointed at target.
func readmeDefinition(t *testing.T, heading, target string) []byte {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(moduleRoot, "tyk-plugin", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(raw), "\n"+heading+"\n")
	if !ok {
		t.Fatalf("README.md has no %q", heading)
	}
	_, after, ok = strings.Cut(after, "```json\n")
	block, _, ok2 := strings.Cut(after, "```")
	if !ok || !ok2 {
		t.Fatalf("README.md has no JSON block after %q", heading)
	}
	return []byte(strings.ReplaceAll(block, "http://orders.internal:8080/", target+"/"))
}

// TestAPIDefinitions installs the README's API definitions in an app_path
// as an operator would, loads it as Tyk's file-based loader does, and sends
// /app/session through: the hook answers it (401 JSON) when the API is
// installed, and nothing serves /app/ when it is not (404).
func TestAPIDefinitions(t *testing.T) {
	upSrv := httptest.NewServer(up)
	defer upSrv.Close()
	// The definitions name the path the README installs the plugin at.
	const installed = "/opt/tyk-gateway/middleware/bffgate.so"
	load := func(path, symbol string) (tykhost.Hook, error) {
		if path != installed {
			return nil, fmt.Errorf("the definition names plugin %s, want %s", path, installed)
		}
		return tykhost.Load(soPath, symbol)
	}
	classic := readmeDefinition(t, "### Tyk classic API definition", upSrv.URL)
	oas := readmeDefinition(t, "### Tyk OAS API definition", upSrv.URL)

	for _, tt := range []struct {
		name    string
		install func(t *testing.T, dir string)
		want    int
	}{
		{"classic definition in app_path", func(t *testing.T, dir string) {
			write(t, filepath.Join(dir, "app.json"), classic)
		}, http.StatusUnauthorized},
		{"OAS definition through POST /tyk/apis/oas", func(t *testing.T, dir string) {
			id, err := tykhost.InstallOAS(dir, oas)
			if err != nil {
				t.Fatal(err)
			}
			// What Tyk writes: <id>.json, a classic definition marked
			// is_oas with the listen path and hook, and <id>-oas.json.
			var d tykhost.Definition
			if err := json.Unmarshal(read(t, filepath.Join(dir, id+".json")), &d); err != nil {
				t.Fatal(err)
			}
			if !d.IsOAS || d.APIID != id || d.Proxy.ListenPath != "/app/" || !d.UseKeyless ||
				len(d.CustomMiddleware.Pre) != 1 || d.CustomMiddleware.Pre[0].Name != "BFFGate" || d.CustomMiddleware.Driver != "goplugin" {
				t.Fatalf("%s.json = %+v, want the README's API as a keyless classic definition with is_oas", id, d)
			}
			var doc struct {
				Tyk struct {
					Info struct {
						ID string `json:"id"`
					} `json:"info"`
				} `json:"x-tyk-api-gateway"`
				OpenAPI string `json:"openapi"`
			}
			if err := json.Unmarshal(read(t, filepath.Join(dir, id+"-oas.json")), &doc); err != nil || doc.Tyk.Info.ID != id || doc.OpenAPI == "" {
				t.Fatalf("%s-oas.json: %+v, %v; want the OAS document with info.id %s", id, doc, err, id)
			}
		}, http.StatusUnauthorized},
		{"OAS definition dropped into app_path", func(t *testing.T, dir string) {
			write(t, filepath.Join(dir, "app.json"), oas)
		}, http.StatusNotFound},
		{"OAS definition dropped in as -oas.json", func(t *testing.T, dir string) {
			write(t, filepath.Join(dir, "app-oas.json"), oas)
		}, http.StatusNotFound},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			tt.install(t, dir)
			apis, err := tykhost.LoadAppPath(dir, load)
			if err != nil {
				t.Fatal(err)
			}
			before := up.Count()
			rec := httptest.NewRecorder()
			tykhost.New(apis...).ServeHTTP(rec, httptest.NewRequest("GET", gw.URL+"/app/session", nil))
			if rec.Code != tt.want {
				t.Fatalf("GET /app/session: %d %s, want %d", rec.Code, rec.Body, tt.want)
			}
			if tt.want == http.StatusUnauthorized && !strings.Contains(rec.Body.String(), `"authenticated":false`) {
				t.Fatalf("GET /app/session: %s, want the hook's answer", rec.Body)
			}
			if up.Count() != before {
				t.Fatal("the request reached the upstream")
			}
		})
	}
}

func write(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func read(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
