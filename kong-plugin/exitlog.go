package main

import (
	"io"
	"os"
	"strings"
	"sync/atomic"
)

// exitNoise is the standard logger's output (go-pdk's server logs through
// it, to the plugin server's stderr, which Kong copies into its error log
// at info level). It drops the one line go-pdk v0.11.2 logs after every
// kong.response.exit and passes everything else through.
//
// That line is `write unix <prefix>/bffgate.socket->: use of closed network
// connection`. go-pdk's Response.Exit sends kong.response.exit, waits for
// Kong, and closes the connection; when the handler returns, go-pdk's
// server writes the end-of-event frame on that closed connection, the
// write fails, and the server logs the error. Nothing is lost: in the
// access phase Kong's kong.response.exit stores the response and yields
// the plugin's coroutine (kong/pdk/response.lua, Kong 3.9), so Kong never
// reads another frame of that call and drops the connection when the
// request ends (kong/runloop/plugin_servers/rpc/pb_rpc.lua). go-pdk has no
// way to exit without the close, so the line would come once per request
// bffgate answers itself. Exit owes one such line; a line is dropped only
// while one is owed, so the same error after anything else still shows.
var exitNoise = &exitLog{w: os.Stderr}

type exitLog struct {
	w    io.Writer
	owed atomic.Int64 // exits whose closed-connection line has not come yet
}

// owe records an exit: go-pdk will log one closed-connection line for it.
func (l *exitLog) owe() { l.owed.Add(1) }

// Write writes one log line (package log makes one Write per line).
func (l *exitLog) Write(p []byte) (int, error) {
	if isExitNoise(p) {
		for n := l.owed.Load(); n > 0; n = l.owed.Load() {
			if l.owed.CompareAndSwap(n, n-1) {
				return len(p), nil
			}
		}
	}
	return l.w.Write(p)
}

// isExitNoise reports whether a log line is go-pdk's failed write of the
// end-of-event frame on a connection Exit closed.
func isExitNoise(p []byte) bool {
	s := string(p)
	return strings.Contains(s, "write unix ") && strings.HasSuffix(s, ": use of closed network connection\n")
}
