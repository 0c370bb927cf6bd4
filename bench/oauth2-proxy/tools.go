//go:build tools

// Package tools keeps oauth2-proxy in this module's graph so that
// `go build github.com/oauth2-proxy/oauth2-proxy/v7` builds the release
// this module pins.
package tools

import _ "github.com/oauth2-proxy/oauth2-proxy/v7"
