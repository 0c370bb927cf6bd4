package tykhost

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
)

// Definition is the part of a Tyk classic API definition (Tyk's
// apidef.APIDefinition, JSON) that the host reads. It is also what Tyk
// writes as <id>.json for an OAS API, with IsOAS set.
type Definition struct {
	APIID            string `json:"api_id"`
	Name             string `json:"name"`
	Active           bool   `json:"active"`
	UseKeyless       bool   `json:"use_keyless"`
	IsOAS            bool   `json:"is_oas"`
	Proxy            Proxy  `json:"proxy"`
	CustomMiddleware struct {
		Driver string       `json:"driver"`
		Pre    []Middleware `json:"pre"`
	} `json:"custom_middleware"`
}

// Proxy is a classic definition's proxy section.
type Proxy struct {
	ListenPath      string `json:"listen_path"`
	TargetURL       string `json:"target_url"`
	StripListenPath bool   `json:"strip_listen_path"`
}

// Middleware is one custom_middleware hook of a classic definition.
type Middleware struct {
	Name     string `json:"name"`
	Path     string `json:"path"`
	Disabled bool   `json:"disabled"`
}

// LoadFunc opens the Go plugin at path and returns its hook named symbol,
// as Load does.
type LoadFunc func(path, symbol string) (Hook, error)

// LoadAppPath reads the API definitions in dir as Tyk v5.14.0's file-based
// loader reads its app_path (APIDefinitionLoader.FromDir in
// gateway/api_definition.go): every *.json file but the *-oas.json
// companions is a classic definition; one with "is_oas": true has its OAS
// document in <name>-oas.json beside it, which is how Tyk's
// POST /tyk/apis/oas stores an OAS API (see InstallOAS). A file that
// declares no api_id and listen path (an OAS document dropped in as it is)
// gives no API, so its paths answer 404, as in Tyk. Goplugin pre hooks are
// opened with load.
func LoadAppPath(dir string, load LoadFunc) ([]API, error) {
	paths, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		return nil, err
	}
	var apis []API
	for _, p := range paths {
		if strings.HasSuffix(p, "-oas.json") {
			continue
		}
		raw, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		var d Definition
		if err := json.Unmarshal(raw, &d); err != nil {
			return nil, fmt.Errorf("tykhost: %s: %w", p, err)
		}
		if d.IsOAS {
			if _, err := os.Stat(strings.TrimSuffix(p, ".json") + "-oas.json"); err != nil {
				return nil, fmt.Errorf("tykhost: %s is an OAS API without its OAS document: %w", p, err)
			}
		}
		if d.APIID == "" || d.Proxy.ListenPath == "" || !d.Active {
			continue
		}
		target, err := url.Parse(d.Proxy.TargetURL)
		if err != nil || target.Host == "" {
			return nil, fmt.Errorf("tykhost: %s: proxy.target_url %q is not a URL", p, d.Proxy.TargetURL)
		}
		api := API{ListenPath: d.Proxy.ListenPath, StripListenPath: d.Proxy.StripListenPath, Target: target}
		for _, m := range d.CustomMiddleware.Pre {
			if m.Disabled {
				continue
			}
			if d.CustomMiddleware.Driver != "goplugin" {
				return nil, fmt.Errorf("tykhost: %s: custom_middleware.driver %q, want goplugin", p, d.CustomMiddleware.Driver)
			}
			h, err := load(m.Path, m.Name)
			if err != nil {
				return nil, fmt.Errorf("tykhost: %s: %w", p, err)
			}
			api.Pre = append(api.Pre, h)
		}
		apis = append(apis, api)
	}
	return apis, nil
}

// oasDoc is the part of a Tyk OAS API definition (an OpenAPI document with
// the x-tyk-api-gateway extension) that InstallOAS reads.
type oasDoc struct {
	Tyk *struct {
		Info struct {
			ID    string `json:"id"`
			Name  string `json:"name"`
			State struct {
				Active bool `json:"active"`
			} `json:"state"`
		} `json:"info"`
		Upstream struct {
			URL string `json:"url"`
		} `json:"upstream"`
		Server struct {
			ListenPath struct {
				Value string `json:"value"`
				Strip bool   `json:"strip"`
			} `json:"listenPath"`
			Authentication *struct {
				Enabled bool `json:"enabled"`
			} `json:"authentication"`
		} `json:"server"`
		Middleware struct {
			Global struct {
				PluginConfig struct {
					Driver string `json:"driver"`
				} `json:"pluginConfig"`
				PrePlugins []struct {
					Enabled      bool   `json:"enabled"`
					FunctionName string `json:"functionName"`
					Path         string `json:"path"`
				} `json:"prePlugins"`
			} `json:"global"`
		} `json:"middleware"`
	} `json:"x-tyk-api-gateway"`
}

// InstallOAS stores the Tyk OAS API definition doc in the app_path dir as
// Tyk v5.14.0's POST /tyk/apis/oas does (handleAddApi and
// writeOASAndAPIDefToFile in gateway/api.go): the classic definition
// extracted from the document's x-tyk-api-gateway extension, with
// "is_oas": true, as <id>.json, and the document, its info.id set, as
// <id>-oas.json. id is x-tyk-api-gateway.info.id, or a new one when the
// document has none. It returns id.
func InstallOAS(dir string, doc []byte) (id string, err error) {
	var o oasDoc
	if err := json.Unmarshal(doc, &o); err != nil {
		return "", fmt.Errorf("tykhost: not an OAS API definition: %w", err)
	}
	if o.Tyk == nil {
		return "", errors.New("tykhost: the OAS document has no x-tyk-api-gateway extension")
	}
	t := o.Tyk
	d := Definition{
		APIID:      t.Info.ID,
		Name:       t.Info.Name,
		Active:     t.Info.State.Active,
		UseKeyless: t.Server.Authentication == nil || !t.Server.Authentication.Enabled,
		IsOAS:      true,
		Proxy:      Proxy{ListenPath: t.Server.ListenPath.Value, TargetURL: t.Upstream.URL, StripListenPath: t.Server.ListenPath.Strip},
	}
	d.CustomMiddleware.Driver = t.Middleware.Global.PluginConfig.Driver
	for _, p := range t.Middleware.Global.PrePlugins {
		d.CustomMiddleware.Pre = append(d.CustomMiddleware.Pre, Middleware{Name: p.FunctionName, Path: p.Path, Disabled: !p.Enabled})
	}
	if d.APIID == "" {
		b := make([]byte, 16)
		rand.Read(b)
		d.APIID = hex.EncodeToString(b)
	}
	// The stored document carries the id (Tyk sets info.id before writing).
	var full map[string]any
	if err := json.Unmarshal(doc, &full); err != nil {
		return "", err
	}
	ext, _ := full["x-tyk-api-gateway"].(map[string]any)
	info, _ := ext["info"].(map[string]any)
	if info == nil {
		info = map[string]any{}
		ext["info"] = info
	}
	info["id"] = d.APIID
	def, err := json.MarshalIndent(d, "", "  ")
	if err != nil {
		return "", err
	}
	oas, err := json.MarshalIndent(full, "", "  ")
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(dir, d.APIID+".json"), def, 0o644); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(dir, d.APIID+"-oas.json"), oas, 0o644); err != nil {
		return "", err
	}
	return d.APIID, nil
}
