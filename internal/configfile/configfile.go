// Package configfile reads the JSON config files of bffgate's commands
// (serve, extauthz) one way: strictly.
package configfile

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"
)

// Load decodes the JSON file into v strictly: an unknown field is an
// error (a typo must not silently become a default), and so is anything
// after the one JSON value. Errors name the file, the line and column,
// and the key where the file goes wrong, e.g.
// `bffgate.json:3:17: bff.http_timeout: is a string, want a number`.
func Load(file string, v any) error {
	data, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%s:%s", file, describe(data, err))
	}
	if dec.More() {
		return fmt.Errorf("%s:%s: more than one JSON value", file, lineCol(data, dec.InputOffset()))
	}
	return nil
}

// describe is "line:col: key: what is wrong" for a decoding error.
func describe(data []byte, err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		off := se.Offset
		if off > 0 {
			off-- // the offending byte, not the one after it
		}
		msg := strings.TrimPrefix(se.Error(), "json: ")
		if key := keyAt(data, off); key != "" {
			return fmt.Sprintf("%s: %s: %s", lineCol(data, off), key, msg)
		}
		return fmt.Sprintf("%s: %s", lineCol(data, off), msg)
	case errors.As(err, &te):
		at, key := te.Offset, te.Field
		if off, k := findKey(data, te.Field, te.Offset); off >= 0 {
			at, key = off, k
		}
		return fmt.Sprintf("%s: %s: is %s %s, want %s", lineCol(data, at), key, article(te.Value), te.Value, kindOf(te.Type.Kind().String()))
	case errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Sprintf("%s: the file ends before its JSON does (a missing } or ])", lineCol(data, int64(len(data))))
	}
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		name, _ = strconv.Unquote(name)
		if off, key := findKey(data, name, -1); off >= 0 {
			return fmt.Sprintf("%s: %s: unknown field (a typo, or a field of another place or version)", lineCol(data, off), key)
		}
		return fmt.Sprintf(" unknown field %q", name)
	}
	return " " + err.Error()
}

func article(s string) string {
	if strings.ContainsAny(s[:1], "aeiou") {
		return "an"
	}
	return "a"
}

// kindOf names a Go kind as a JSON type.
func kindOf(k string) string {
	switch {
	case strings.HasPrefix(k, "int"), strings.HasPrefix(k, "uint"), strings.HasPrefix(k, "float"):
		return "a number"
	case k == "string":
		return "a string"
	case k == "bool":
		return "true or false"
	case k == "slice", k == "array":
		return "a list [...]"
	case k == "struct", k == "map", k == "ptr":
		return "an object {...}"
	}
	return k
}

// lineCol is "line:column" (both from 1) of a byte offset into data.
func lineCol(data []byte, off int64) string {
	off = min(max(off, 0), int64(len(data)))
	before := data[:off]
	line := bytes.Count(before, []byte("\n")) + 1
	col := off - int64(bytes.LastIndexByte(before, '\n'))
	return fmt.Sprintf("%d:%d", line, col)
}

var indexes = regexp.MustCompile(`\[\d+\]`)

// frame is one open object or array of walk.
type frame struct {
	array   bool
	key     string // object: the current key
	wantKey bool   // object: the next string is a key
	index   int    // array: the current element
}

// walk reads data's tokens, calling at(path, offset) after each one, until
// a token fails or at returns false. path is the key path of the value
// being read, e.g. "routes[1].upstream".
func walk(data []byte, at func(path string, off int64, keyTok bool) bool) {
	dec := json.NewDecoder(bytes.NewReader(data))
	var stack []*frame
	path := func() string {
		var b strings.Builder
		for _, f := range stack {
			switch {
			case f.array:
				fmt.Fprintf(&b, "[%d]", f.index)
			case f.key != "":
				if b.Len() > 0 {
					b.WriteByte('.')
				}
				b.WriteString(f.key)
			}
		}
		return b.String()
	}
	valueDone := func() {
		if n := len(stack); n > 0 {
			if f := stack[n-1]; f.array {
				f.index++
			} else {
				f.wantKey = true
			}
		}
	}
	for {
		start := dec.InputOffset()
		tok, err := dec.Token()
		if err != nil {
			return
		}
		keyTok := false
		top := (*frame)(nil)
		if n := len(stack); n > 0 {
			top = stack[n-1]
		}
		switch t := tok.(type) {
		case json.Delim:
			switch t {
			case '{':
				stack = append(stack, &frame{wantKey: true})
			case '[':
				stack = append(stack, &frame{array: true})
			default:
				stack = stack[:len(stack)-1]
				valueDone()
			}
		case string:
			if top != nil && !top.array && top.wantKey {
				top.key, top.wantKey, keyTok = t, false, true
			} else {
				valueDone()
			}
		default:
			valueDone()
		}
		if !at(path(), start, keyTok) {
			return
		}
	}
}

// keyAt is the key path where the byte at off is, as far as the tokens
// before it tell.
func keyAt(data []byte, off int64) string {
	key := ""
	walk(data, func(p string, start int64, _ bool) bool {
		if start > off {
			return false
		}
		key = p
		return true
	})
	return key
}

// findKey is the offset and path of a key named name (a key, or a path as
// json's errors give it, without the array indexes): the last one before
// offset before, or the first one when before is -1.
func findKey(data []byte, name string, before int64) (int64, string) {
	off, key := int64(-1), ""
	walk(data, func(p string, start int64, keyTok bool) bool {
		if before >= 0 && start >= before {
			return false
		}
		bare := indexes.ReplaceAllString(p, "")
		if keyTok && (bare == name || strings.HasSuffix(bare, "."+name)) {
			off, key = start, p
			return before >= 0
		}
		return true
	})
	if off >= 0 {
		// start is before the separator and space ahead of the key.
		if i := bytes.IndexByte(data[off:], '"'); i >= 0 {
			off += int64(i)
		}
	}
	return off, key
}
