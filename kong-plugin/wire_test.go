package main

import (
	"net/http"
	"reflect"
	"testing"

	"github.com/Kong/go-pdk/bridge"
	kpp "github.com/Kong/go-pdk/server/kong_plugin_protocol"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
)

// TestDecodeHeaders: Kong's get_headers answer, as protobuf encodes it
// (a string for one value, a list for several), decodes to what go-pdk's
// own decoding gives, with canonical names.
func TestDecodeHeaders(t *testing.T) {
	st, err := structpb.NewStruct(map[string]any{
		"host":   "app.example.test:8443",
		"cookie": []any{"a=1", "__Host-bffgate=xyz"},
		"x_user": "admin",
		"empty":  []any{},
		"odd":    []any{"v", 7.0}, // not a string: "" as go-pdk has it
	})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := proto.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	got, n, err := decodeHeaders(raw)
	if err != nil {
		t.Fatal(err)
	}
	want := http.Header{}
	for name, v := range bridge.UnwrapHeaders(st) {
		want[http.CanonicalHeaderKey(name)] = v
	}
	if !reflect.DeepEqual(got, want) || n != 6 {
		t.Fatalf("decodeHeaders = %v (%d values), want %v (6)", got, n, want)
	}
	// Every truncation of the message is refused, or decodes to a
	// prefix of its entries; none panics.
	for i := range raw {
		if h, _, err := decodeHeaders(raw[:i]); err == nil && len(h) > len(want) {
			t.Fatalf("truncated at %d: %v", i, h)
		}
	}
	if _, _, err := decodeHeaders([]byte{0x0a, 0x7f}); err == nil {
		t.Fatal("a length past the end was accepted")
	}
}

// TestAppendHeaders: the set_headers and exit arguments decode, with
// protobuf's own decoding, to the edits: one value a string, several a
// list, a removal an empty list, a removal that is also set only set.
func TestAppendHeaders(t *testing.T) {
	set := http.Header{"Authorization": {"Bearer t"}, "Set-Cookie": {"a=1", "b=2"}, "X-User": {"alice"}}
	raw := appendHeaders(nil, set, []string{"X-User", "cookie", "X_user"})
	var st structpb.Struct
	if err := proto.Unmarshal(raw, &st); err != nil {
		t.Fatal(err)
	}
	if got := st.Fields["Authorization"].GetStringValue(); got != "Bearer t" {
		t.Errorf("Authorization = %v, want the string", st.Fields["Authorization"])
	}
	want := map[string][]string{"Authorization": {"Bearer t"}, "Set-Cookie": {"a=1", "b=2"}, "X-User": {"alice"}, "Cookie": {}, "X_user": {}}
	if got := bridge.UnwrapHeaders(&st); !reflect.DeepEqual(got, want) {
		t.Fatalf("set_headers argument = %v, want %v", got, want)
	}

	var ea kpp.ExitArgs
	if err := proto.Unmarshal(exitArgs(302, nil, http.Header{"Location": {"/x"}}), &ea); err != nil {
		t.Fatal(err)
	}
	if ea.Status != 302 || ea.Body != nil || bridge.UnwrapHeaders(ea.Headers)["Location"][0] != "/x" {
		t.Fatalf("exit args = %v", &ea)
	}
	if err := proto.Unmarshal(exitArgs(401, []byte(`{}`), nil), &ea); err != nil || string(ea.Body) != "{}" || ea.Headers == nil {
		t.Fatalf("exit args = %v, %v", &ea, err)
	}
}

// FuzzDecodeHeaders: whatever Kong's side sends, decodeHeaders does not
// panic, and it accepts what protobuf's Struct accepts with the same
// strings.
func FuzzDecodeHeaders(f *testing.F) {
	st, _ := structpb.NewStruct(map[string]any{"cookie": []any{"a", "b"}, "host": "h"})
	raw, _ := proto.Marshal(st)
	f.Add(raw)
	f.Add(appendHeaders(nil, http.Header{"A": {"1"}}, []string{"B"}))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, _, err := decodeHeaders(b)
		var st structpb.Struct
		if proto.Unmarshal(b, &st) != nil || err != nil {
			return
		}
		for name, v := range st.Fields {
			if s, ok := v.Kind.(*structpb.Value_StringValue); ok {
				if got := h[http.CanonicalHeaderKey(name)]; len(got) == 0 {
					t.Fatalf("%q = %q lost (got %v)", name, s.StringValue, h)
				}
			}
		}
	})
}
