package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/bffgate/bffgate/core/bff"
)

// The rules Kong should get, written out here apart from annotate, which
// finds them by asking the engine: each field of the dumped schema is held
// to them, so a rule that changes in the engine shows up here as a diff.
var (
	wantRequired = []string{"issuer", "client_id", "client_secret", "redirect_url", "cookie_keys",
		"identity_headers[].header", "identity_headers[].claim", "policy.claims[].claim"}
	wantOneOf = map[string][]any{
		"mode":                 {"bff", "token-mediating"},
		"cookie_same_site":     {"lax", "strict"},
		"pushed_authorization": {"auto", "required", "off"},
	}
	wantReferenceable = []string{"client_secret", "cookie_keys[]", "redis.url", "redis.password", "redis.sentinel_password"}
	// As docs/config.md gives them.
	wantDefault = map[string]any{
		"scopes":                   []any{"openid", "profile", "email", "offline_access"},
		"mode":                     "bff",
		"pushed_authorization":     "auto",
		"client_auth_method":       "client_secret_basic",
		"memory_max_sessions":      100000.0,
		"allowed_methods":          []any{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"},
		"paths.login":              "/login",
		"paths.callback":           "/oauth/callback",
		"paths.session":            "/session",
		"paths.token":              "/token",
		"paths.logout":             "/logout",
		"paths.logout_callback":    "/logout/callback",
		"paths.backchannel_logout": "/backchannel-logout",
		"paths.sessions":           "/sessions",
		"cookie_name":              "__Host-bffgate",
		"cookie_same_site":         "lax",
		"session_idle_timeout":     28800.0,
		"session_max_lifetime":     86400.0,
		"refresh_skew":             30.0,
		"csrf_header":              "X-CSRF",
		"csrf_header_value":        "1",
		"login_params":             []any{"prompt", "acr_values", "login_hint", "max_age", "ui_locales"},
		"default_return_to":        "/",
		"post_logout_return_to":    "/",
		"user_claims":              []any{"sub", "name", "given_name", "family_name", "preferred_username", "email", "email_verified"},
		"token_max_lifetime":       300.0,
		"http_timeout":             10.0,
		"dbsc.bound_cookie_ttl":    600.0,
		"dbsc.registration_path":   "/dbsc/register",
		"dbsc.refresh_path":        "/dbsc/refresh",
	}
)

// dumpedConfig runs the built binary's -dump, as Kong's query_cmd does,
// and returns the config record Kong reads from it.
func dumpedConfig(t testing.TB) map[string]any {
	t.Helper()
	out, err := exec.Command(pluginBinary(t), "-dump").Output()
	if err != nil {
		t.Fatalf("bffgate -dump: %v", err)
	}
	var info any
	if err := json.Unmarshal(out, &info); err != nil {
		t.Fatalf("-dump output is not JSON: %v", err)
	}
	config, err := configRecord(info)
	if err != nil {
		t.Fatal(err)
	}
	return config
}

// TestDumpSchemaRules checks every field of the schema Kong receives for
// required, one_of, referenceable and default.
func TestDumpSchemaRules(t *testing.T) {
	var got []string
	eachField(dumpedConfig(t), "", func(path string, def map[string]any) {
		got = append(got, path)
		if req, _ := def["required"].(bool); req != slices.Contains(wantRequired, path) {
			t.Errorf("%s: required %v, want %v", path, req, !req)
		}
		if oneOf, _ := def["one_of"].([]any); !reflect.DeepEqual(oneOf, wantOneOf[path]) {
			t.Errorf("%s: one_of %v, want %v", path, oneOf, wantOneOf[path])
		}
		ref, _ := def["referenceable"].(bool)
		if elems, ok := def["elements"].(map[string]any); ok && elems["type"] == "string" {
			if ref {
				t.Errorf("%s: referenceable on the array, want it on its elements", path)
			}
			ref, _ = elems["referenceable"].(bool)
			path += "[]"
		}
		if ref != slices.Contains(wantReferenceable, path) {
			t.Errorf("%s: referenceable %v, want %v", path, ref, !ref)
		}
		if d, want := def["default"], wantDefault[strings.TrimSuffix(path, "[]")]; !reflect.DeepEqual(d, want) {
			t.Errorf("%s: default %#v, want %#v", path, d, want)
		}
	})
	for _, p := range append(append(slices.Clone(wantRequired), wantReferenceable...), "paths.login", "redis.cache_max_entries") {
		p = strings.TrimSuffix(p, "[]")
		if !slices.Contains(got, p) {
			t.Errorf("the schema has no field %s", p)
		}
	}
}

// eachField calls fn for every field of a schema record, nested records
// and the records of arrays included ("identity_headers[].claim").
func eachField(rec map[string]any, prefix string, fn func(path string, def map[string]any)) {
	fields, _ := rec["fields"].([]any)
	for _, f := range fields {
		for name, d := range f.(map[string]any) {
			def := d.(map[string]any)
			fn(prefix+name, def)
			switch def["type"] {
			case "record":
				eachField(def, prefix+name+".", fn)
			case "array":
				if elems, _ := def["elements"].(map[string]any); elems["type"] == "record" {
					eachField(elems, prefix+name+"[].", fn)
				}
			}
		}
	}
}

// TestOneOfIsTheEngines holds the one_of lists to bff.New: every listed
// value is accepted, and another is refused at that field.
func TestOneOfIsTheEngines(t *testing.T) {
	for field, vals := range oneOf {
		for _, v := range append(slices.Clone(vals), "not-a-value") {
			c := probeConfig()
			raw, _ := json.Marshal(map[string]any{field: v})
			if err := json.Unmarshal(raw, &c); err != nil {
				t.Fatal(err)
			}
			_, err := bff.New(c)
			var ce *bff.ConfigError
			listed := v != "not-a-value"
			if listed && err != nil {
				t.Errorf("%s %q is in one_of, and bff.New refuses it: %v", field, v, err)
			}
			if !listed && (!errors.As(err, &ce) || ce.Field != field) {
				t.Errorf("%s %q: bff.New = %v, want a config error at %s", field, v, err, field)
			}
		}
	}
}

// TestKongRefusesBadConfigs applies the dumped schema as Kong's schema
// validation does to a plugin config written to Kong — required, type,
// one_of, non-empty strings, defaults filled in — and hands what Kong
// would send to bff.New.
func TestKongRefusesBadConfigs(t *testing.T) {
	t.Setenv("BFF_CLIENT_SECRET", "s3cret")
	schema := dumpedConfig(t)
	good := func() map[string]any {
		return map[string]any{
			"issuer": "https://idp.example.com", "client_id": "spa", "client_secret": "env:BFF_CLIENT_SECRET",
			"redirect_url": "https://app.example.com/oauth/callback",
			"cookie_keys":  []any{cookieKey},
		}
	}
	for _, tt := range []struct {
		name    string
		edit    func(map[string]any)
		wantErr string // at this field
	}{
		{"valid", func(map[string]any) {}, ""},
		{"no issuer", func(c map[string]any) { delete(c, "issuer") }, "issuer"},
		{"null client_id", func(c map[string]any) { c["client_id"] = nil }, "client_id"},
		{"empty redirect_url", func(c map[string]any) { c["redirect_url"] = "" }, "redirect_url"},
		{"no cookie_keys", func(c map[string]any) { delete(c, "cookie_keys") }, "cookie_keys"},
		{"bad mode", func(c map[string]any) { c["mode"] = "bff-ish" }, "mode"},
		{"bad cookie_same_site", func(c map[string]any) { c["cookie_same_site"] = "none" }, "cookie_same_site"},
		{"identity header without claim", func(c map[string]any) {
			c["identity_headers"] = []any{map[string]any{"header": "X-User"}}
		}, "identity_headers[].claim"},
		{"string timeout", func(c map[string]any) { c["http_timeout"] = "10" }, "http_timeout"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := good()
			tt.edit(c)
			err := kongValidate(schema, c, "")
			if tt.wantErr != "" {
				if err == nil || !strings.HasPrefix(err.Error(), tt.wantErr+":") {
					t.Fatalf("Kong's validation: %v, want an error at %s", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Kong's validation: %v", err)
			}
			// What Kong sends: the config with its defaults filled in.
			if c["mode"] != "bff" || c["paths"].(map[string]any)["login"] != "/login" {
				t.Fatalf("Kong fills in mode %v, paths %v", c["mode"], c["paths"])
			}
			raw, _ := json.Marshal(c)
			var cfg bff.Config
			if err := json.Unmarshal(raw, &cfg); err != nil {
				t.Fatal(err)
			}
			if _, err := bff.New(cfg); err != nil {
				t.Fatalf("bff.New on the config Kong sends: %v", err)
			}
		})
	}
}

// kongValidate checks config against a schema record as Kong 3.9's
// kong/db/schema does for the rules the dump uses, and fills in defaults
// (nested records are filled in even when absent, as Kong does). An error
// starts with the field's path.
func kongValidate(rec map[string]any, config map[string]any, prefix string) error {
	fields, _ := rec["fields"].([]any)
	for _, f := range fields {
		for name, d := range f.(map[string]any) {
			def := d.(map[string]any)
			path := prefix + name
			v, set := config[name]
			if !set || v == nil {
				switch {
				case def["default"] != nil:
					config[name] = def["default"]
					continue
				case def["type"] == "record":
					sub := map[string]any{}
					if err := kongValidate(def, sub, path+"."); err != nil {
						return err
					}
					config[name] = sub
					continue
				case def["required"] == true:
					return fmt.Errorf("%s: required field missing", path)
				}
				continue
			}
			if err := kongValue(def, v, path); err != nil {
				return err
			}
		}
	}
	return nil
}

func kongValue(def map[string]any, v any, path string) error {
	switch def["type"] {
	case "string":
		s, ok := v.(string)
		if !ok {
			return fmt.Errorf("%s: expected a string", path)
		}
		if s == "" { // Kong's strings have len_min 1 unless the schema says otherwise
			return fmt.Errorf("%s: length must be at least 1", path)
		}
		if vals, ok := def["one_of"].([]any); ok && !slices.Contains(vals, any(s)) {
			return fmt.Errorf("%s: expected one of: %v", path, vals)
		}
	case "integer":
		if n, ok := v.(float64); !ok || n != float64(int64(n)) {
			return fmt.Errorf("%s: expected an integer", path)
		}
	case "boolean":
		if _, ok := v.(bool); !ok {
			return fmt.Errorf("%s: expected a boolean", path)
		}
	case "array":
		l, ok := v.([]any)
		if !ok {
			return fmt.Errorf("%s: expected an array", path)
		}
		elems, _ := def["elements"].(map[string]any)
		for _, e := range l {
			if elems["type"] == "record" {
				m, ok := e.(map[string]any)
				if !ok {
					return fmt.Errorf("%s: expected a record", path)
				}
				if err := kongValidate(elems, m, path+"[]."); err != nil {
					return err
				}
				continue
			}
			if err := kongValue(elems, e, path+"[]"); err != nil {
				return err
			}
		}
	case "record":
		m, ok := v.(map[string]any)
		if !ok {
			return fmt.Errorf("%s: expected a record", path)
		}
		return kongValidate(def, m, path+".")
	}
	return nil
}
