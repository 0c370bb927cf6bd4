// Command echo is the compose stacks' API: tests/op's EchoAPI, which
// answers with what reached it (the bearer token's length, never the
// token; the cookie names; the X-User and X-User-Email identity headers),
// on its own, without a provider to introspect tokens with.
//
//	echo [-listen :9000]
package main

import (
	"flag"
	"log"
	"net/http"
	"time"

	"github.com/bffgate/bffgate/tests/op"
)

func main() {
	listen := flag.String("listen", ":9000", "the address to listen on")
	flag.Parse()
	srv := &http.Server{
		Addr:              *listen,
		Handler:           op.EchoAPI(nil),
		ReadHeaderTimeout: 5 * time.Second,
		MaxHeaderBytes:    64 << 10,
	}
	log.Printf("echo: listening on %s", *listen)
	log.Fatal(srv.ListenAndServe())
}
