package main

import (
	"errors"
	"net/http"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/emptypb"
)

// The PDK messages that carry headers — kong.request.get_headers' answer,
// kong.service.request.set_headers' argument and the headers of
// kong.response.exit's — are google.protobuf.Struct values: one map entry
// per header name, holding a string or a list of strings. go-pdk decodes
// them into structpb's tree of messages and copies that into maps
// (bridge.UnwrapHeaders), and encodes maps the same way back; after the
// socket itself, that was the plugin server's largest cost on a request.
// The functions here read and write the Struct's wire format directly,
// and hand it to go-pdk's bridge inside an emptypb.Empty, whose unknown
// fields protobuf keeps as they are: unmarshalling into an Empty keeps the
// whole message as its bytes, marshalling an Empty writes them back.

// Field numbers of google.protobuf.Struct and its map entries, of
// google.protobuf.Value and ListValue, and of kong_plugin_protocol's
// ExitArgs (pluginsocket.proto).
const (
	structFields protowire.Number = 1 // Struct.fields: map<string, Value>
	entryKey     protowire.Number = 1
	entryValue   protowire.Number = 2
	valueString  protowire.Number = 3 // Value.string_value
	valueList    protowire.Number = 6 // Value.list_value
	listValues   protowire.Number = 1 // ListValue.values

	exitStatus  protowire.Number = 1
	exitBody    protowire.Number = 2
	exitHeaders protowire.Number = 3
)

// errWire is a header message that is not a well-formed Struct.
var errWire = errors.New("bffgate: malformed headers message from Kong")

// rawMessage is a message whose encoding is raw, for go-pdk's bridge.
func rawMessage(raw []byte) *emptypb.Empty {
	m := &emptypb.Empty{}
	m.ProtoReflect().SetUnknown(protoreflect.RawFields(raw))
	return m
}

// rawBytes is the encoding of a message unmarshalled into an Empty.
func rawBytes(m *emptypb.Empty) []byte { return m.ProtoReflect().GetUnknown() }

// decodeHeaders decodes a Struct of headers into an http.Header with
// canonical names (Kong gives lower-case ones; the engine reads canonical
// ones, as net/http has them), one allocation holding every value, and
// returns how many values there were. A list element that is not a
// string counts as "", as go-pdk's bridge.UnwrapHeaders has it.
func decodeHeaders(b []byte) (http.Header, int, error) {
	names, n := 0, 0
	count := func(_, v []byte) error {
		names++
		return valueStrings(v, func([]byte) { n++ })
	}
	if err := structEntries(b, count); err != nil {
		return nil, 0, err
	}
	h := make(http.Header, names)
	values := make([]string, 0, n)
	fill := func(k, v []byte) error {
		start := len(values)
		_ = valueStrings(v, func(s []byte) { values = append(values, string(s)) })
		key := http.CanonicalHeaderKey(string(k))
		if prev, dup := h[key]; dup { // two names Kong kept apart, one to the engine
			h[key] = append(prev[:len(prev):len(prev)], values[start:]...)
			return nil
		}
		h[key] = values[start:len(values):len(values)]
		return nil
	}
	_ = structEntries(b, fill) // well-formed: checked above
	return h, n, nil
}

// structEntries calls fn with the key and the Value bytes of every entry
// of a Struct's map, skipping unknown fields.
func structEntries(b []byte, fn func(key, value []byte) error) error {
	for len(b) > 0 {
		entry, num, rest, err := nextField(b)
		if err != nil {
			return err
		}
		b = rest
		if num != structFields || entry == nil {
			continue
		}
		var key, value []byte
		for len(entry) > 0 {
			v, num, rest, err := nextField(entry)
			if err != nil {
				return err
			}
			entry = rest
			switch num {
			case entryKey:
				key = v
			case entryValue:
				value = v
			}
		}
		if err := fn(key, value); err != nil {
			return err
		}
	}
	return nil
}

// valueStrings calls fn with the string of a Value, or with each string
// of its list.
func valueStrings(v []byte, fn func(s []byte)) error {
	for len(v) > 0 {
		f, num, rest, err := nextField(v)
		if err != nil {
			return err
		}
		v = rest
		switch {
		case num == valueString && f != nil:
			fn(f)
		case num == valueList && f != nil:
			for len(f) > 0 {
				e, num, rest, err := nextField(f)
				if err != nil {
					return err
				}
				f = rest
				if num != listValues || e == nil {
					continue
				}
				var s []byte
				for len(e) > 0 {
					x, num, rest, err := nextField(e)
					if err != nil {
						return err
					}
					e = rest
					if num == valueString && x != nil {
						s = x
					}
				}
				fn(s)
			}
		}
	}
	return nil
}

// nextField reads one field of b: its number and, for a length-delimited
// field, its bytes (nil for other wire types, which are skipped).
func nextField(b []byte) (field []byte, num protowire.Number, rest []byte, err error) {
	num, typ, n := protowire.ConsumeTag(b)
	if n < 0 {
		return nil, 0, nil, errWire
	}
	b = b[n:]
	if typ == protowire.BytesType {
		v, n := protowire.ConsumeBytes(b)
		if n < 0 {
			return nil, 0, nil, errWire
		}
		if v == nil {
			v = []byte{}
		}
		return v, num, b[n:], nil
	}
	n = protowire.ConsumeFieldValue(num, typ, b)
	if n < 0 {
		return nil, 0, nil, errWire
	}
	return nil, num, b[n:], nil
}

// appendHeaders appends the fields of a Struct of headers to b: a header
// of one value as a string, of several as a list, and each name of del
// that h does not replace as an empty list. kong.service.request.
// set_headers and kong.response.exit take a string or a list per name;
// set_headers hands each value to ngx.req.set_header, which removes a
// header given an empty table (Kong's pluginserver turns the empty list
// into one), so removals cost no kong.service.request.clear_header calls
// of their own.
func appendHeaders(b []byte, h http.Header, del []string) []byte {
	for _, name := range del {
		name = http.CanonicalHeaderKey(name)
		if _, set := h[name]; !set {
			b = appendEntry(b, name, nil)
		}
	}
	for name, v := range h {
		b = appendEntry(b, http.CanonicalHeaderKey(name), v)
	}
	return b
}

// appendEntry appends one map entry of a Struct of headers.
func appendEntry(b []byte, name string, v []string) []byte {
	strSize := func(s string) int { return protowire.SizeTag(valueString) + protowire.SizeBytes(len(s)) }
	var valueSize, list int
	if len(v) == 1 {
		valueSize = strSize(v[0])
	} else {
		for _, s := range v {
			list += protowire.SizeTag(listValues) + protowire.SizeBytes(strSize(s))
		}
		valueSize = protowire.SizeTag(valueList) + protowire.SizeBytes(list)
	}
	entrySize := protowire.SizeTag(entryKey) + protowire.SizeBytes(len(name)) +
		protowire.SizeTag(entryValue) + protowire.SizeBytes(valueSize)

	b = protowire.AppendTag(b, structFields, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(entrySize))
	b = protowire.AppendTag(b, entryKey, protowire.BytesType)
	b = protowire.AppendString(b, name)
	b = protowire.AppendTag(b, entryValue, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(valueSize))
	if len(v) == 1 {
		b = protowire.AppendTag(b, valueString, protowire.BytesType)
		return protowire.AppendString(b, v[0])
	}
	b = protowire.AppendTag(b, valueList, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(list))
	for _, s := range v {
		b = protowire.AppendTag(b, listValues, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(strSize(s)))
		b = protowire.AppendTag(b, valueString, protowire.BytesType)
		b = protowire.AppendString(b, s)
	}
	return b
}

// exitArgs encodes kong.response.exit's ExitArgs as go-pdk's
// Response.Exit does: the status, the body when there is one, and the
// headers (always present, maybe empty).
func exitArgs(status int, body []byte, h http.Header) []byte {
	headers := appendHeaders(nil, h, nil)
	b := make([]byte, 0, 16+len(body)+len(headers))
	b = protowire.AppendTag(b, exitStatus, protowire.VarintType)
	b = protowire.AppendVarint(b, uint64(int64(int32(status))))
	if len(body) > 0 {
		b = protowire.AppendTag(b, exitBody, protowire.BytesType)
		b = protowire.AppendBytes(b, body)
	}
	b = protowire.AppendTag(b, exitHeaders, protowire.BytesType)
	return protowire.AppendBytes(b, headers)
}
