// Package configfile reads the JSON config files of bffgate's commands
// (serve, extauthz) one way: strictly.
package configfile

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
)

// Load decodes the JSON file into v strictly: an unknown field is an
// error (a typo must not silently become a default), and so is anything
// after the one JSON value. Errors name the file.
func Load(file string, v any) error {
	data, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	if dec.More() {
		return fmt.Errorf("%s: more than one JSON value", file)
	}
	return nil
}
