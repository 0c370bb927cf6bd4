// Command bffgate-kong is bffgate's Kong plugin: a go-pdk plugin server that
// runs the bffgate engine (package bff) in Kong's access phase. Install the
// binary as /usr/local/bin/bffgate — Kong names the plugin, its socket
// (<prefix>/bffgate.socket) and its schema after the executable's file name
// — and see README.md for kong.conf, a Dockerfile and a route config.
//
//	bffgate -dump                          print the plugin's info and config schema (Kong's query_cmd)
//	bffgate [-kong-prefix /usr/local/kong]  serve Kong on <prefix>/bffgate.socket (Kong's start_cmd)
//
// The plugin only translates: Kong's request in (the request line and the
// headers; the body only for back-channel logout), the engine's decision
// out (kong.response.exit, or one kong.service.request.set_headers). It is
// its own plugin server (server.go), go-pdk's protocol with fewer system
// calls, which writes the two reads together: an API request costs three
// PDK calls in two round trips to Kong (see README.md, "How it talks to
// Kong").
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"os"

	"github.com/Kong/go-pdk/server"

	"github.com/bffgate/bffgate/core/session/redisstore"
	"github.com/bffgate/bffgate/internal/hostlog"
	"github.com/bffgate/bffgate/internal/version"
)

// Priority places bffgate in Kong's plugin order (higher runs first in the
// access phase). Among Kong's bundled plugins: bot-detection 2500, cors
// 2000 and session 1900 run before it, and so do the authentication
// plugins (jwt 1450 … hmac-auth 1030) and ip-restriction 990, so blocked
// clients never cost a provider call; request-size-limiting 951, acl 950,
// rate-limiting 910 and everything after run behind it, so anonymous API
// requests get their 401 before anything else spends work on them.
const Priority = 985

// engineLog is where the engines and go-redis log: the plugin server's
// stderr, which Kong copies into its error log, in bffgate serve's shape.
// kong.log reaches Kong only within a request, so it carries the lines of
// a request (a config refused, a panic), and this the engines' own (a
// provider down, a refresh failed), which may come between requests.
var engineLog = hostlog.New(os.Stderr)

func main() {
	// go-pdk's server package registers -dump, -kong-prefix and -help;
	// main reads them, as go-pdk's StartServer does.
	flag.Parse()
	if flagSet("help") {
		flag.Usage()
		os.Exit(2)
	}
	if flagSet("dump") {
		if err := dump(os.Stdout); err != nil {
			log.Fatalf("bffgate: -dump: %v", err)
		}
		return
	}
	// The plugin server is bffgate's own process: go-redis's process-wide
	// logger may write through slog, to the stderr Kong logs.
	redisstore.LogTo(engineLog)
	if err := listenAndServe(flag.Lookup("kong-prefix").Value.String()); err != nil {
		log.Fatalf("bffgate: %v", err)
	}
}

// flagSet reports whether the boolean flag name is set.
func flagSet(name string) bool {
	f := flag.Lookup(name)
	return f != nil && f.Value.String() == "true"
}

// dump writes go-pdk's -dump output (plugin name, phases, version,
// priority and the config schema Kong reads) to w, less the fields go-pdk
// should not have listed — it names a field by its raw JSON tag and keeps
// struct-typed fields, so bff.Config's Go-only hooks (`json:"-"`: the HTTP
// client and the logger) would show up as empty records named "-" — and
// with the engine's rules added to the config schema (see annotate).
func dump(w io.Writer) error {
	r, pw, err := os.Pipe()
	if err != nil {
		return err
	}
	type read struct {
		b   []byte
		err error
	}
	done := make(chan read, 1)
	go func() {
		b, err := io.ReadAll(r)
		done <- read{b, err}
	}()
	stdout := os.Stdout
	os.Stdout = pw // go-pdk's dump writes to os.Stdout
	err = server.StartServer(New, version.Version, Priority)
	os.Stdout = stdout
	pw.Close()
	out := <-done
	r.Close()
	if err != nil {
		return err
	}
	if out.err != nil {
		return out.err
	}
	var info any
	if err := json.Unmarshal(out.b, &info); err != nil {
		return fmt.Errorf("go-pdk's output %q is not JSON: %w", out.b, err)
	}
	if !prune(info) {
		return errors.New("go-pdk's output has no config schema")
	}
	config, err := configRecord(info)
	if err != nil {
		return err
	}
	if err := annotate(config); err != nil {
		return fmt.Errorf("adding the engine's rules to the schema: %w", err)
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(info); err != nil {
		return err
	}
	_, err = w.Write(buf.Bytes())
	return err
}

// prune removes the fields named "-" from every record of a go-pdk schema
// and reports whether it saw any record.
func prune(v any) (sawRecord bool) {
	switch v := v.(type) {
	case map[string]any:
		if fields, ok := v["fields"].([]any); ok {
			sawRecord = true
			kept := fields[:0]
			for _, f := range fields {
				if m, ok := f.(map[string]any); ok {
					if _, hook := m["-"]; hook {
						continue
					}
				}
				kept = append(kept, f)
			}
			v["fields"] = kept
		}
		for _, child := range v {
			if prune(child) {
				sawRecord = true
			}
		}
	case []any:
		for _, child := range v {
			if prune(child) {
				sawRecord = true
			}
		}
	}
	return sawRecord
}

// configRecord returns the schema of the plugin's config in a decoded
// -dump: Plugins[0].Schema.fields[0].config.
func configRecord(info any) (map[string]any, error) {
	m, _ := info.(map[string]any)
	plugins, _ := m["Plugins"].([]any)
	if len(plugins) != 1 {
		return nil, fmt.Errorf("go-pdk's output lists %d plugins, want 1", len(plugins))
	}
	p, _ := plugins[0].(map[string]any)
	schema, _ := p["Schema"].(map[string]any)
	fields, _ := schema["fields"].([]any)
	if len(fields) == 1 {
		f, _ := fields[0].(map[string]any)
		if config, ok := f["config"].(map[string]any); ok && config["type"] == "record" {
			return config, nil
		}
	}
	return nil, errors.New("go-pdk's schema has no config record")
}
