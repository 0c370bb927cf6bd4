package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/bffgate/bffgate/core/session"
	"github.com/bffgate/bffgate/core/session/redisstore"
	"github.com/bffgate/bffgate/internal/serve"
)

// errMemoryStore: the memory store lives inside the serving process.
var errMemoryStore = errors.New("sessions revoke: the config keeps sessions in memory (no bff.redis): they live inside the bffgate process that serves them, which no other process can reach; end them by restarting it, or use Redis")

// sessions runs `bffgate sessions revoke -config FILE -sub X | -sid X`:
// it ends every session of that user (or OP session), on every node, in
// the Redis store, through the back-channel logout indexes, and prints
// how many there were. Only bff.issuer and bff.redis of the file are read,
// so a small file with just those serves a Tyk or Kong deployment too.
func sessions(args []string, out io.Writer) error {
	if len(args) == 0 || args[0] != "revoke" {
		return errors.New("usage: bffgate sessions revoke -config FILE (-sub SUB | -sid SID)")
	}
	fl := flag.NewFlagSet("bffgate sessions revoke", flag.ContinueOnError)
	file := fl.String("config", "", "the config file (JSON); bff.issuer and bff.redis are read")
	sub := fl.String("sub", "", "end every session of this subject (the ID token's sub)")
	sid := fl.String("sid", "", "end every session of this OP session (the ID token's sid)")
	if err := fl.Parse(args[1:]); err != nil {
		return err
	}
	switch {
	case *file == "":
		return errors.New("sessions revoke: -config FILE is required")
	case (*sub == "") == (*sid == ""):
		return errors.New("sessions revoke: give one of -sub or -sid")
	}
	cfg, err := serve.Load(*file)
	if err != nil {
		return err
	}
	if cfg.BFF.Issuer == "" {
		return errors.New("sessions revoke: config: bff.issuer is empty: sessions are indexed by issuer; set the provider's issuer URL")
	}
	if cfg.BFF.Redis.URL == "" && len(cfg.BFF.Redis.Addrs) == 0 {
		return errMemoryStore
	}
	st, err := redisstore.New(cfg.BFF.Redis)
	if err != nil {
		return fmt.Errorf("sessions revoke: config: bff.redis: %w", err)
	}
	defer st.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	m := &session.Manager{Store: st}
	n, err := m.EndAll(ctx, cfg.BFF.Issuer, *sid, *sub)
	if err != nil {
		return fmt.Errorf("sessions revoke: %w", err)
	}
	fmt.Fprintf(out, "bffgate: ended %d sessions\n", n)
	return nil
}
