package main

import (
	"errors"
	"net/http"
	"sync"

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
	for rest := b; len(rest) > 0; {
		_, v, next, ok, err := nextEntry(rest)
		if err != nil {
			return nil, 0, err
		}
		if !ok {
			break
		}
		c, err := valueStrings(v, nil)
		if err != nil {
			return nil, 0, err
		}
		names, n, rest = names+1, n+c, next
	}
	h := make(http.Header, names)
	values := make([]string, 0, n)
	for rest := b; len(rest) > 0; {
		k, v, next, ok, _ := nextEntry(rest) // well-formed: checked above
		if !ok {
			break
		}
		rest = next
		start := len(values)
		_, _ = valueStrings(v, &values)
		key := headerNames.canonical(k)
		if prev, dup := h[key]; dup { // two names Kong kept apart, one to the engine
			h[key] = append(prev[:len(prev):len(prev)], values[start:]...)
			continue
		}
		h[key] = values[start:len(values):len(values)]
	}
	return h, n, nil
}

// nextEntry reads b up to the next entry of a Struct's map, skipping
// unknown fields, and returns its key and Value bytes and what follows;
// ok is false when there is none.
func nextEntry(b []byte) (key, value, rest []byte, ok bool, err error) {
	for len(b) > 0 {
		entry, num, next, err := nextField(b)
		if err != nil {
			return nil, nil, nil, false, err
		}
		b = next
		if num != structFields || entry == nil {
			continue
		}
		for len(entry) > 0 {
			f, num, next, err := nextField(entry)
			if err != nil {
				return nil, nil, nil, false, err
			}
			entry = next
			switch num {
			case entryKey:
				key = f
			case entryValue:
				value = f
			}
		}
		return key, value, b, true, nil
	}
	return nil, nil, nil, false, nil
}

// valueStrings counts the strings of a Value — its string, or the
// strings of its list — and appends them to *out unless out is nil.
func valueStrings(v []byte, out *[]string) (int, error) {
	n := 0
	add := func(s []byte) {
		n++
		if out != nil {
			*out = append(*out, string(s))
		}
	}
	for len(v) > 0 {
		f, num, rest, err := nextField(v)
		if err != nil {
			return 0, err
		}
		v = rest
		switch {
		case num == valueString && f != nil:
			add(f)
		case num == valueList && f != nil:
			for len(f) > 0 {
				e, num, rest, err := nextField(f)
				if err != nil {
					return 0, err
				}
				f = rest
				if num != listValues || e == nil {
					continue
				}
				var s []byte
				for len(e) > 0 {
					x, num, rest, err := nextField(e)
					if err != nil {
						return 0, err
					}
					e = rest
					if num == valueString && x != nil {
						s = x
					}
				}
				add(s)
			}
		}
	}
	return n, nil
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

// headerNames keeps the canonical form of the header names Kong sends, so
// that a request's names cost no allocation once they have been seen:
// browsers send the same few dozen. It stops learning at maxHeaderNames,
// so names a client makes up cannot grow it without bound; names past it
// are canonicalized anew each time.
var headerNames = nameCache{m: map[string]string{}}

const maxHeaderNames = 512

type nameCache struct {
	mu sync.RWMutex // guards m
	m  map[string]string
}

// canonical returns http.CanonicalHeaderKey of name.
func (c *nameCache) canonical(name []byte) string {
	c.mu.RLock()
	key, ok := c.m[string(name)] // no allocation for the lookup
	c.mu.RUnlock()
	if ok {
		return key
	}
	key = http.CanonicalHeaderKey(string(name))
	c.mu.Lock()
	if len(c.m) < maxHeaderNames {
		c.m[string(name)] = key
	}
	c.mu.Unlock()
	return key
}
