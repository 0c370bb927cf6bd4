// Package envsecret reads configuration secrets written as "env:NAME" from
// the environment, so they stay out of API definitions and config files.
package envsecret

import (
	"fmt"
	"os"
	"strings"
)

// Resolve returns v itself, or for "env:NAME" the value of the environment
// variable NAME. An unset or empty variable is an error that names it and
// says how to fix it (never a value).
func Resolve(v string) (string, error) {
	name, ok := strings.CutPrefix(v, "env:")
	if !ok {
		return v, nil
	}
	s := os.Getenv(name)
	if s == "" {
		return "", fmt.Errorf("environment variable %s is empty or not set: set it, or write the value itself", name)
	}
	return s, nil
}
