// Command bffgate runs the bffgate BFF on its own, as a reverse proxy in
// front of your APIs (and, optionally, your SPA's files).
//
//	bffgate serve -config bffgate.json   run the proxy (SIGHUP reloads the file)
//	bffgate check -config bffgate.json   validate a config file and exit
//	                                      (-online: also contact the provider and Redis)
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
  bffgate serve -config FILE [-listen ADDR]   run the BFF reverse proxy (SIGHUP reloads FILE)
  bffgate check -config FILE [-online]        validate a config file (-online: contact the provider and Redis)
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

// check prints what Lint (and, online, CheckOnline) finds on stdout, and
// fails when anything is not a warning.
func check(cfg *serve.Config, p *serve.Proxy, online bool) error {
	defer p.Close()
	failed := 0
	for _, f := range serve.Lint(cfg) {
		fmt.Println("bffgate: " + f.String())
		if !f.Warning {
			failed++
		}
	}
	if online {
		for _, pr := range serve.CheckOnline(context.Background(), cfg, p) {
			if pr.Err != nil {
				failed++
				fmt.Printf("bffgate: online: %s: FAILED: %v\n", pr.What, pr.Err)
			} else {
				fmt.Printf("bffgate: online: %s: ok\n", pr.What)
			}
		}
	}
	if failed > 0 {
		return fmt.Errorf("config check: %d problem(s), see above", failed)
	}
	fmt.Println("bffgate: config OK")
	return nil
}

func run(args []string, serveIt bool) error {
	fl := flag.NewFlagSet("bffgate", flag.ContinueOnError)
	file := fl.String("config", "", "the config file (JSON)")
	listen := fl.String("listen", "", "listen address; overrides the file's \"listen\"")
	online := false
	if !serveIt {
		fl.BoolVar(&online, "online", false, "also contact the provider (discovery, the client's credentials) and Redis")
	}
	if err := fl.Parse(args); err != nil {
		return err
	}
	if *file == "" {
		return errors.New("-config FILE is required")
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	load := func() (*serve.Config, error) {
		cfg, err := serve.Load(*file)
		if err != nil {
			return nil, err
		}
		cfg.BFF.Logger = logger
		return cfg, nil
	}
	cfg, err := load()
	if err != nil {
		return err
	}
	// This process is bffgate's own, so go-redis's process-wide logger
	// may be ours too.
	redisstore.LogTo(logger)
	p, err := serve.New(cfg)
	if err != nil {
		return err
	}
	if !serveIt {
		return check(cfg, p, online)
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
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	scheme := "http://"
	if cfg.TLS != nil {
		scheme = "https://"
	}
	logger.Info("bffgate: serving", "url", scheme+ln.Addr().String(), "admin", cfg.AdminListen)
	return serve.ServeReload(ctx, cfg, ln, p, hup, load)
}
