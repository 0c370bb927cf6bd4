// Command bffgate runs the bffgate BFF on its own, as a reverse proxy in
// front of your APIs (and, optionally, your SPA's files).
//
//	bffgate serve -config bffgate.json   run the proxy
//	bffgate check -config bffgate.json   validate a config file and exit
//	bffgate sessions revoke -config bffgate.json -sub SUB   end a user's sessions (Redis)
//	bffgate version
//
// In a gateway, use the Tyk or Kong plugin instead; they run the same
// engine.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/bffgate/bffgate/core/session/redisstore"
	"github.com/bffgate/bffgate/internal/extauthz"
	"github.com/bffgate/bffgate/internal/serve"
	"github.com/bffgate/bffgate/internal/version"
)

const usage = `usage:
  bffgate serve -config FILE [-listen ADDR]   run the BFF reverse proxy
  bffgate check -config FILE                  validate a config file
  bffgate extauthz -config FILE               run the forward-auth service (nginx, Caddy, Traefik, Envoy)
  bffgate sessions revoke -config FILE -sub SUB | -sid SID
                                              end every session of a user (or OP session) in Redis
  bffgate version                             print the version
  bffgate help                                print this help

Configuration reference: docs/config.md and docs/extauthz.md.
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "serve":
		err = run(os.Args[2:], true)
	case "check":
		err = run(os.Args[2:], false)
	case "extauthz":
		err = extauthz.Run(os.Args[2:])
	case "sessions":
		err = sessions(os.Args[2:], os.Stdout)
	case "version":
		fmt.Println(versionLine())
	case "help", "-h", "-help", "--help":
		fmt.Print(usage)
	default:
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	if errors.Is(err, flag.ErrHelp) {
		return // the flag set printed its usage
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, errorLine(err))
		os.Exit(1)
	}
}

// errorLine is how an error is printed: with one "bffgate:" prefix, the
// errors of the engine and its config carrying one of their own.
func errorLine(err error) string {
	msg := err.Error()
	if strings.HasPrefix(msg, "bffgate:") || strings.HasPrefix(msg, "bffgate ") {
		return msg
	}
	return "bffgate: " + msg
}

// versionLine is what `bffgate version` prints: the project's one version
// (internal/version), the same the Kong plugin reports to Kong.
func versionLine() string { return "bffgate " + version.Version }

func run(args []string, serveIt bool) error {
	fl := flag.NewFlagSet("bffgate", flag.ContinueOnError)
	file := fl.String("config", "", "the config file (JSON)")
	listen := fl.String("listen", "", "listen address; overrides the file's \"listen\"")
	if err := fl.Parse(args); err != nil {
		return err
	}
	if *file == "" {
		return errors.New("-config FILE is required")
	}
	cfg, err := serve.Load(*file)
	if err != nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	cfg.BFF.Logger = logger
	// This process is bffgate's own, so go-redis's process-wide logger
	// may be ours too.
	redisstore.LogTo(logger)
	p, err := serve.New(cfg)
	if err != nil {
		return err
	}
	if !serveIt {
		fmt.Println("bffgate: config OK")
		return nil
	}
	addr := cfg.Listen
	if *listen != "" {
		addr = *listen
	}
	if addr == "" {
		addr = "127.0.0.1:8080"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	logger.Info("bffgate: serving", "url", "http://"+ln.Addr().String(), "admin", cfg.AdminListen)
	return serve.Serve(ctx, cfg, ln, p)
}
