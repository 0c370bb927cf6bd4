// Command run is `make demo`: the demo stack on 127.0.0.1 until Ctrl-C.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/bffgate/bffgate/tests/demo"
	"github.com/bffgate/bffgate/tests/op"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "where bffgate listens")
	mode := flag.String("mode", "token-mediating", "bff or token-mediating")
	verbose := flag.Bool("v", false, "show the provider's and bffgate's logs")
	flag.Parse()
	o := demo.Options{Addr: *addr, Mode: *mode, Host: "localhost"}
	if *verbose {
		o.Logs = os.Stderr
	}
	s, err := demo.Start(o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
	fmt.Printf(`
bffgate demo is running (mode: %s)

  Open:      %s
  Log in as: %s / %s   (or %s / %s)

  OpenID Provider: %s
  API (direct):    %s

Press Ctrl-C to stop.
`, *mode, s.URL, op.AliceUser, op.AlicePassword, op.BobUser, op.BobPassword, s.OP.Issuer, s.API)
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	<-sig
	fmt.Println("\nstopping…")
	s.Close()
}
