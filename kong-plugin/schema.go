package main

import (
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"reflect"
	"strings"

	"github.com/bffgate/bffgate/core/bff"
	"github.com/bffgate/bffgate/core/session/redisstore"
)

// go-pdk's -dump schema has field names and types only, and go-pdk v0.11.2
// offers no way to add to it. So the plugin prints its own -dump (see
// dump) and annotate adds what Kong's schema format can say and the engine
// checks anyway, so that Kong refuses a bad config when it is written
// (declarative load, Admin API) instead of answering 500 on the first
// request:
//
//   - required: the fields bff.New refuses to do without;
//   - default: the values bff.New fills in for a field left out, which
//     Kong then stores and shows;
//   - one_of: the fields that take one of a few words;
//   - referenceable: the secrets, so that Kong resolves vault references
//     ({vault://env/bff-client-secret}) in them before the plugin sees the
//     config (Kong resolves references only in fields marked so).
//
// Each is found by asking the engine — bff.New on a valid probe config with
// one field changed — rather than written down a second time here, so the
// schema cannot drift from the engine. Only one_of is a list (oneOf); the
// tests hold it to the engine.

// oneOf are the values of the fields that take one of a few words.
var oneOf = map[string][]any{
	"mode":                 {bff.ModeBFF, bff.ModeTokenMediating},
	"cookie_same_site":     {"lax", "strict"},
	"pushed_authorization": {bff.PARAuto, bff.PARRequired, bff.PAROff},
}

// probeVar is the environment variable annotate points secret fields at.
const probeVar = "BFFGATE_DUMP_PROBE"

// probeConfig is a valid config that sets only what bff.New requires, plus
// one identity header, one policy claim and a Redis URL so that the fields
// inside those are probed too. bff.New makes no network call, Redis's included.
func probeConfig() bff.Config {
	return bff.Config{
		Issuer:          "https://issuer.invalid",
		ClientID:        "probe",
		ClientSecret:    "probe",
		RedirectURL:     "https://app.invalid/oauth/callback",
		CookieKeys:      []string{base64.StdEncoding.EncodeToString(make([]byte, 32))},
		IdentityHeaders: []bff.IdentityHeader{{Header: "X-Bffgate-Probe", Claim: "sub"}},
		Policy:          bff.Policy{Claims: []bff.ClaimRule{{Claim: "groups", Values: []string{"probe"}}}},
		Redis:           redisstore.Config{URL: "redis://redis.invalid:6379/0", Password: "probe"},
	}
}

// annotate adds required, default, one_of and referenceable to the config
// record of go-pdk's schema (a decoded -dump), field by field.
func annotate(config map[string]any) error {
	probe := probeConfig()
	b, err := bff.New(probe)
	if err != nil {
		return fmt.Errorf("the probe config is invalid (bff.New has a new rule the probe does not meet): %w", err)
	}
	defer b.Close()
	// Config.WithDefaults fills defaults in as bff.New does.
	filled := reflect.ValueOf(probe.WithDefaults())
	if prev, had := os.LookupEnv(probeVar); had {
		defer os.Setenv(probeVar, prev)
	} else {
		defer os.Unsetenv(probeVar)
	}
	a := annotator{probe: probe, oneOfUsed: map[string]bool{}}
	if err := a.record(config, reflect.ValueOf(&a.probe).Elem(), filled, ""); err != nil {
		return err
	}
	for path := range oneOf {
		if !a.oneOfUsed[path] {
			return fmt.Errorf("oneOf names %s, which is not a field of the schema", path)
		}
	}
	return nil
}

type annotator struct {
	probe     bff.Config      // the valid config; each check changes one field and puts it back
	oneOfUsed map[string]bool // the paths of oneOf seen in the schema
}

// record annotates the fields of the record def, whose Go value in the
// probe is v (addressable) and in the engine's filled-in config filled
// (read-only, or invalid inside arrays).
func (a *annotator) record(def map[string]any, v, filled reflect.Value, path string) error {
	fields, _ := def["fields"].([]any)
	for _, f := range fields {
		for name, d := range f.(map[string]any) {
			fdef, _ := d.(map[string]any)
			i, ok := fieldIndex(v.Type(), name)
			if !ok {
				return fmt.Errorf("schema field %s%s is not a field of %s", path, name, v.Type())
			}
			var ff reflect.Value
			if filled.IsValid() {
				ff = filled.Field(i)
			}
			if err := a.field(fdef, v.Field(i), ff, path+name); err != nil {
				return err
			}
		}
	}
	return nil
}

func (a *annotator) field(def map[string]any, v, filled reflect.Value, path string) error {
	required, err := a.required(v, path)
	if err != nil {
		return err
	}
	if required {
		def["required"] = true
	}
	if vals, ok := oneOf[path]; ok {
		def["one_of"] = vals
		a.oneOfUsed[path] = true
	}
	if v.IsZero() && filled.IsValid() && !filled.IsZero() && v.Kind() != reflect.Struct {
		def["default"] = plain(filled)
	}
	switch {
	case v.Kind() == reflect.String:
		if a.secret(v, path) {
			def["referenceable"] = true
		}
	case v.Kind() == reflect.Slice && v.Type().Elem().Kind() == reflect.String && v.Len() > 0:
		if a.secret(v.Index(0), path+"[0]") {
			elems, _ := def["elements"].(map[string]any)
			elems["referenceable"] = true
		}
	case v.Kind() == reflect.Struct:
		return a.record(def, v, filled, path+".")
	case v.Kind() == reflect.Slice && v.Type().Elem().Kind() == reflect.Struct && v.Len() > 0:
		elems, _ := def["elements"].(map[string]any)
		return a.record(elems, v.Index(0), reflect.Value{}, path+"[0].")
	}
	return nil
}

// required reports whether bff.New refuses the probe with the field at v
// zeroed, naming the field (or the array element it is in). An error at
// another field means the probe is wrong.
func (a *annotator) required(v reflect.Value, path string) (bool, error) {
	if v.IsZero() {
		return false, nil // the probe is valid without it
	}
	saved := reflect.New(v.Type()).Elem()
	saved.Set(v)
	v.SetZero()
	err := a.try()
	v.Set(saved)
	if err == nil {
		return false, nil
	}
	var ce *bff.ConfigError
	if errors.As(err, &ce) && (ce.Field == path || strings.HasPrefix(path, ce.Field+".") || strings.HasPrefix(ce.Field, path+"[")) {
		return true, nil
	}
	return false, fmt.Errorf("probing %s: %w", path, err)
}

// secret reports whether the string field at v is a secret that bff.New
// reads from the environment: written "env:NAME", it is refused at that
// field while NAME is unset, and once NAME holds a value it fares exactly
// as that value written in the field. Kong may resolve vault references in
// such a field too.
func (a *annotator) secret(v reflect.Value, path string) bool {
	saved := v.String()
	defer v.SetString(saved)
	value := saved
	if value == "" {
		value = "probe"
	}
	v.SetString(value)
	direct := a.try()
	v.SetString("env:" + probeVar)
	os.Setenv(probeVar, value)
	viaEnv := a.try()
	os.Unsetenv(probeVar)
	unset := a.try()
	var ce *bff.ConfigError
	return sameError(direct, viaEnv) && errors.As(unset, &ce) && ce.Field == path && !sameError(unset, direct)
}

// sameError reports whether two probes ended alike.
func sameError(a, b error) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Error() == b.Error()
}

func (a *annotator) try() error {
	b, err := bff.New(a.probe)
	if err == nil {
		b.Close()
	}
	return err
}

// fieldIndex finds the field of struct type t that go-pdk named name (its
// whole JSON tag).
func fieldIndex(t reflect.Type, name string) (int, bool) {
	for i := range t.NumField() {
		if t.Field(i).Tag.Get("json") == name {
			return i, true
		}
	}
	return 0, false
}

// plain is a read-only reflect value of a default (a string, a number, a
// bool or a list of them) as the JSON value Kong reads.
func plain(v reflect.Value) any {
	switch v.Kind() {
	case reflect.String:
		return v.String()
	case reflect.Bool:
		return v.Bool()
	case reflect.Int, reflect.Int32, reflect.Int64:
		return v.Int()
	case reflect.Slice:
		l := make([]any, v.Len())
		for i := range l {
			l[i] = plain(v.Index(i))
		}
		return l
	}
	panic(fmt.Sprintf("bffgate: no schema default for a %s", v.Type()))
}
