// Package version holds bffgate's version: one x.y.z for the whole project
// — the Kong plugin (what Kong reads from `bffgate -dump`), `bffgate
// version`, the Tyk plugin and the npm package @bffgate/client
// (sdk-js/package.json, held to the same value by a test).
//
// A release bumps Version here and the "version" of sdk-js/package.json
// together. A build may override it with
//
//	-ldflags "-X github.com/bffgate/bffgate/internal/version.Version=1.2.3-rc.1"
//
// but only with a valid version (see Check): a binary built with anything
// else refuses to start, rather than start as a Kong plugin that Kong
// refuses to load.
package version

import (
	"fmt"
	"regexp"
	"strings"
)

// Version is the version of every bffgate binary and package.
var Version = "0.2.0"

func init() {
	if err := Check(Version); err != nil {
		panic(fmt.Sprintf("bffgate: the version set with -ldflags -X: %v", err))
	}
}

// semver is SemVer 2.0.0's own expression (semver.org), the format npm
// also requires: MAJOR.MINOR.PATCH, an optional -pre-release and an
// optional +build.
var semver = regexp.MustCompile(`^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)` +
	`(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?` +
	`(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$`)

// Check reports whether v is a version bffgate can carry: a SemVer 2.0.0
// version (x.y.z[-pre][+build]), which npm accepts and which Kong's rule
// for a plugin's VERSION accepts too (Kong is laxer: it takes "v1.2", but
// npm does not).
func Check(v string) error {
	if !semver.MatchString(v) {
		return fmt.Errorf("%q is not a version: write MAJOR.MINOR.PATCH, optionally with -pre-release and +build, e.g. 1.2.3 or 1.2.3-rc.1", v)
	}
	if _, ok := Kong(v); !ok { // implied by the above; kept so the two cannot part
		return fmt.Errorf("%q is not a version Kong loads a plugin with", v)
	}
	return nil
}

// kongDigits is the part of a version Kong reads: the first run of digits
// and dots.
var kongDigits = regexp.MustCompile(`[0-9][0-9.]*`)

// Kong applies Kong's rule for a plugin's VERSION (valid_version in
// kong/db/dao/plugins.lua, Kong 3.0–3.9, through the "version" rock
// 1.0.1): it takes the first run of digits and dots, splits it at the dots
// (a single trailing dot is dropped), and accepts one to three numbers. It
// returns what Kong keeps ("1.2.3" of "v1.2.3-dev") and whether Kong
// loads the plugin at all. "dev" has no digits; "1.2.3.4" has four
// numbers; Kong refuses both with `Plugin "bffgate" cannot be loaded
// because its VERSION field does not follow the "x.y.z" format`.
func Kong(v string) (string, bool) {
	m := kongDigits.FindString(v)
	if m == "" {
		return "", false
	}
	m = strings.TrimSuffix(m, ".")
	parts := strings.Split(m, ".")
	if len(parts) > 3 {
		return "", false
	}
	for _, p := range parts {
		if p == "" { // "1..2"
			return "", false
		}
	}
	return m, true
}
