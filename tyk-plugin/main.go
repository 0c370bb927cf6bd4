// Command tyk-plugin is bffgate as a Tyk Go plugin: build it with
//
//	CGO_ENABLED=1 go build -buildmode=plugin -trimpath -tags goplugin -o bffgate.so ./tyk-plugin
//
// (for a real gateway, with the tykio/tyk-plugin-compiler image of that
// gateway's version: see README.md) and attach BFFGate as a "pre" hook of a
// keyless API. The configuration, one bff.Config per API, is the JSON file
// named by the environment variable BFFGATE_CONFIG.
//
// The plugin only translates: Tyk's *http.Request becomes a bff.Request,
// and the engine's Result becomes either a response written to the client
// (which ends Tyk's middleware chain) or header edits on r before Tyk
// proxies it. It does not import Tyk: a Tyk Go plugin hook is a plain
// func(http.ResponseWriter, *http.Request).
package main

import (
	"encoding/json"
	"log"
	"net/http"
	"sync"

	"github.com/bffgate/bffgate/core/bff"
)

// BFFGate is the hook Tyk calls for every request of an API that names it
// (custom_middleware "pre", name "BFFGate"). It answers the request itself
// — the BFF endpoints, every refusal, and every failure of the plugin — or
// leaves it to go upstream with Authorization set and the session cookie
// removed. It never lets through a request the engine did not accept.
func BFFGate(w http.ResponseWriter, r *http.Request) {
	// Tyk recovers a hook's panic without answering the client; answer
	// here, so the request ends with a 500 and never goes upstream.
	defer func() {
		if p := recover(); p != nil {
			log.Printf("bffgate: internal error: %v", p)
			writeError(w, http.StatusInternalServerError, "internal_error", "the bffgate plugin failed; the gateway log says why")
		}
	}()
	apis, err := loadAPIs()
	if err != nil {
		writeError(w, http.StatusInternalServerError, "bffgate_config_invalid", err.Error())
		return
	}
	b := apis.match(r.Host, r.URL.EscapedPath())
	if b == nil {
		writeError(w, http.StatusInternalServerError, "bffgate_no_api",
			"no API in the file named by BFFGATE_CONFIG has a listen_path (and host) matching this request: add one, or remove the BFFGate hook from this API")
		return
	}
	res := b.Handle(r.Context(), bff.NewRequest(r))
	if !res.Forward() {
		res.WriteTo(w)
		return
	}
	res.ApplyTo(r.Header)
}

// loadAPIs reads the file named by BFFGATE_CONFIG and builds its engines,
// once: on the first request, so the gateway has set the environment by
// then. An error is logged once and returned to every request after.
var loadAPIs = sync.OnceValues(func() (*apis, error) {
	a, err := loadFile(configEnv)
	if err != nil {
		log.Printf("bffgate: %v", err)
	}
	return a, err
})

// writeError answers with the JSON error shape the engine uses.
func writeError(w http.ResponseWriter, status int, code, desc string) {
	body, _ := json.Marshal(struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}{code, desc})
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// main is never run: a plugin is loaded, not started. Package main needs
// it to build without -buildmode=plugin (go vet, go test).
func main() {}
