// Command noop is a Tyk Go plugin whose hook does nothing. It is the
// baseline of `make bench-tyk`: the same API with a hook that costs only
// the gateway's call into a plugin, beside the same API with bffgate.so,
// so the ratio between them is bffgate's own work. Build it as bffgate.so
// is built (tykhost.BuildPackage with tykhost.NoopPackage):
//
//	CGO_ENABLED=1 go build -buildmode=plugin -trimpath -tags goplugin -o noop.so ./tyk-plugin/tykhost/noop
package main

import "net/http"

// NoOp is a "pre" hook that leaves the request as it is and writes no
// response, so the gateway proxies the request unchanged.
func NoOp(http.ResponseWriter, *http.Request) {}

// main is never run: a plugin is loaded, not started. Package main needs
// it to build without -buildmode=plugin (go vet, go test).
func main() {}
