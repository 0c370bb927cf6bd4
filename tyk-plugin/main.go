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
	"fmt"
	"net/http"
	"os"
	"sync"

	"github.com/bffgate/bffgate/core/bff"
	"github.com/bffgate/bffgate/internal/hostlog"
)

// logger writes the plugin's lines, and its engines', to the gateway's
// stderr in bffgate serve's shape (msg="..." key=value). It is the
// plugin's own: slog.Default belongs to the gateway.
var logger = hostlog.New(os.Stderr)

// BFFGate is the hook Tyk calls for every request of an API that names it
// (custom_middleware "pre", name "BFFGate"). It answers the request itself
// — the BFF endpoints, every refusal, and every failure of the plugin — or
// leaves it to go upstream with Authorization set and the session cookie
// removed. It never lets through a request the engine did not accept.
func BFFGate(w http.ResponseWriter, r *http.Request) { hook(w, r, false) }

// BFFGatePublic is the hook for a public Tyk API on the BFF's host (the
// SPA's files, an API that takes bearer tokens itself): name
// "BFFGatePublic". Requests need no session and go upstream without the
// BFF's cookies and without client-sent identity headers; unsafe paths
// and methods are refused. It uses the config entry of the API's listen
// path as BFFGate does, and answers the BFF's own paths as BFFGate would.
func BFFGatePublic(w http.ResponseWriter, r *http.Request) { hook(w, r, true) }

func hook(w http.ResponseWriter, r *http.Request, public bool) {
	// Tyk recovers a hook's panic without answering the client; answer
	// here, so the request ends with a 500 and never goes upstream.
	defer func() {
		if p := recover(); p != nil {
			logger.Error("bffgate: internal error", "error", fmt.Sprint(p))
			bff.WriteError(w, http.StatusInternalServerError, bff.CodeInternal, "the bffgate plugin failed; the gateway log says why")
		}
	}()
	apis, err := loadAPIs()
	if err != nil {
		bff.WriteError(w, http.StatusInternalServerError, bff.CodeConfigInvalid, err.Error())
		return
	}
	b := apis.match(r.Host, r.URL.EscapedPath())
	if b == nil {
		bff.WriteError(w, http.StatusInternalServerError, bff.CodeNoAPI,
			"no API in the file named by BFFGATE_CONFIG has a listen_path (and host) matching this request: add one, or remove the BFFGate hook from this API")
		return
	}
	res := b.HandleHTTP(r, public)
	if !res.Forward() {
		res.Write(w)
		return
	}
	// Tyk proxies r as the hook leaves it, and keeps headers the hook set
	// on w on the upstream's answer (CORS for an allowed origin).
	res.ApplyTo(r.Header)
	res.ApplyToResponse(w.Header())
}

// loadAPIs reads the file named by BFFGATE_CONFIG and builds its engines,
// once: on the first request, so the gateway has set the environment by
// then. An error is logged once and returned to every request after.
var loadAPIs = sync.OnceValues(func() (*apis, error) {
	a, err := loadFile(configEnv)
	if err != nil {
		logger.Error("bffgate: config refused", "error", err)
	}
	return a, err
})

// main is never run: a plugin is loaded, not started. Package main needs
// it to build without -buildmode=plugin (go vet, go test).
func main() {}
