// Command bffgate-extauthz is `bffgate extauthz` with Envoy's gRPC
// ext_authz besides the HTTP contracts, built from its own Go module:
//
//	bffgate-extauthz -config FILE [-listen ADDR] [-grpc ADDR]
//
// The config file is the one of `bffgate extauthz` (docs/extauthz.md).
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
	"syscall"

	"github.com/bffgate/bffgate/extauthz-grpc"
	"github.com/bffgate/bffgate/internal/extauthz"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "bffgate-extauthz:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fl := flag.NewFlagSet("bffgate-extauthz", flag.ContinueOnError)
	file := fl.String("config", "", "the config file (JSON)")
	listen := fl.String("listen", "", "the HTTP listen address; overrides the file's \"listen\"")
	grpcAddr := fl.String("grpc", "127.0.0.1:9192", "the gRPC listen address")
	if err := fl.Parse(args); err != nil {
		return err
	}
	if *file == "" {
		return errors.New("-config FILE is required")
	}
	cfg, err := extauthz.Load(*file)
	if err != nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	for i := range cfg.Apps {
		cfg.Apps[i].BFF.Logger = logger
	}
	s, err := extauthz.New(cfg)
	if err != nil {
		return err
	}
	defer s.Close()
	httpAddr := cfg.Listen
	if *listen != "" {
		httpAddr = *listen
	}
	if httpAddr == "" {
		httpAddr = extauthz.DefaultListen
	}
	for _, a := range []string{httpAddr, *grpcAddr} {
		if err := s.MayListen(a); err != nil {
			return err
		}
	}
	hl, err := net.Listen("tcp", httpAddr)
	if err != nil {
		return err
	}
	gl, err := net.Listen("tcp", *grpcAddr)
	if err != nil {
		return err
	}
	stopAdmin, err := extauthz.ServeAdmin(cfg.AdminListen, s.Admin())
	if err != nil {
		return err
	}
	defer stopAdmin()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	logger.Info("bffgate-extauthz: serving", "http", "http://"+hl.Addr().String(), "grpc", gl.Addr().String(), "admin", cfg.AdminListen)
	return extauthzgrpc.Serve(ctx, s, gl, hl)
}
