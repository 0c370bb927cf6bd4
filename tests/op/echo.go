package op

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"
)

// EchoAPI is the demo's API, shared by the demo stack and the browser
// tests: it answers with what reached it — the bearer token's length, never
// the token; the cookie names; the identity headers — and asks the OP that
// provider returns (nil: none yet) whether the bearer token is active; a
// nil provider (compose/common/echo) introspects nothing and leaves
// "token" out. Without an Authorization header it answers 401.
func EchoAPI(provider func() *Server) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		out := map[string]any{"method": r.Method, "path": r.URL.Path, "authorization": nil}
		auth := r.Header.Get("Authorization")
		if scheme, tok, ok := strings.Cut(auth, " "); ok && strings.EqualFold(scheme, "bearer") && tok != "" {
			out["authorization"] = fmt.Sprintf("Bearer (a %d-character token)", len(tok))
			if provider != nil {
				out["token"] = map[string]any{"error": "introspection failed"}
			}
			if p := providerOf(provider); p != nil {
				ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
				defer cancel()
				if info, err := p.Introspect(ctx, tok); err == nil {
					keep := map[string]any{}
					for _, k := range []string{"active", "sub", "scope", "client_id", "exp", "aud"} {
						if v, ok := info[k]; ok {
							keep[k] = v
						}
					}
					out["token"] = keep
				}
			}
		}
		names := []string{}
		for _, c := range r.Cookies() {
			names = append(names, c.Name)
		}
		sort.Strings(names)
		out["cookies"] = names
		out["identity"] = map[string]string{"X-User": r.Header.Get("X-User"), "X-User-Email": r.Header.Get("X-User-Email")}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		if auth == "" {
			w.WriteHeader(http.StatusUnauthorized)
		}
		json.NewEncoder(w).Encode(out)
	})
}

// providerOf returns provider's server, or nil when there is no provider.
func providerOf(provider func() *Server) *Server {
	if provider == nil {
		return nil
	}
	return provider()
}
