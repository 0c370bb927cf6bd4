package serve

import (
	"log/slog"
	"net/http"
)

// AccessLog wraps h in bffgate serve's access log (one structured line per
// request, see accessLog), for the other listeners of the binary: bffgate
// extauthz logs its decisions with it.
func AccessLog(h http.Handler, log *slog.Logger, cookieName string) http.Handler {
	return accessLog(h, log, cookieName)
}
