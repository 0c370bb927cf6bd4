// Package hostlog gives the gateway plugins (Tyk, Kong) log lines in the
// shape of bffgate serve's: slog's text format, msg="..." key=value, on
// what their host shows (Tyk: the gateway's stderr; Kong: the plugin
// server's stderr, which Kong copies into its error log, and kong.log).
// It is stdlib only, so it moves no module bffgate.so shares with Tyk.
package hostlog

import (
	"bytes"
	"io"
	"log/slog"
	"strings"
)

// New is a logger writing slog text lines to w, as bffgate serve does.
func New(w io.Writer) *slog.Logger { return slog.New(slog.NewTextHandler(w, nil)) }

// Line is one record in the same shape without the time and level, for a
// host that adds its own (kong.log.err): e.g.
// `msg="bffgate: internal error" error="..."`.
func Line(msg string, args ...any) string {
	var b bytes.Buffer
	h := slog.NewTextHandler(&b, &slog.HandlerOptions{ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
		if len(groups) == 0 && (a.Key == slog.TimeKey || a.Key == slog.LevelKey) {
			return slog.Attr{}
		}
		return a
	}})
	slog.New(h).Info(msg, args...)
	return strings.TrimSuffix(b.String(), "\n")
}
