package serve

import (
	"context"
	"net/http"
	"time"

	"github.com/bffgate/bffgate/core/bff"
)

// AdminHandler serves the admin listener, apart from the app's routes and
// its SPA fallback: /healthz answers 200 while the process serves,
// /readyz 200 once the session store answers and the provider's discovery
// has succeeded (else 503, with the reason), and /metrics the Prometheus
// series when metrics is not nil. ready is the engine's Ready (or, for
// bffgate extauthz, every app's).
func AdminHandler(ready func(context.Context) error, metrics http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, `{"status":"ok"}`)
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := ready(ctx); err != nil {
			bff.WriteError(w, http.StatusServiceUnavailable, bff.CodeUnavailable, "not ready: "+err.Error())
			return
		}
		writeJSON(w, http.StatusOK, `{"status":"ready"}`)
	})
	if metrics != nil {
		mux.Handle("GET /metrics", metrics)
	}
	return mux
}
