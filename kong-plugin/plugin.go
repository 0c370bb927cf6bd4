package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"

	"github.com/Kong/go-pdk"
	kpp "github.com/Kong/go-pdk/server/kong_plugin_protocol"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/bffgate/bffgate/core/bff"
	"github.com/bffgate/bffgate/internal/hostlog"
)

// Config is one plugin instance's configuration: the engine's own
// bff.Config, so go-pdk's schema and the JSON Kong sends are bff.Config's
// fields, at the top level of the plugin's "config".
//
// It is a defined type rather than a struct embedding bff.Config because
// go-pdk does not flatten embedded structs: it would list every field under
// "config.config" in the schema, while encoding/json reads them from
// "config" — Kong would store and send a config the plugin cannot read.
//
// The Go-only hooks (Store, HTTPClient, Now, Logger) are not in the
// schema; tests may set them before the first request, and such a config
// gets an engine of its own instead of one shared by content.
type Config bff.Config

// New returns an empty Config for go-pdk to unmarshal one plugin
// instance's configuration into.
func New() any { return &Config{} }

// Access is Kong's access phase as go-pdk's server runs it, one PDK
// round trip per call. bffgate's own plugin server (server.go) runs serve
// over its connection to Kong instead, with the reads written together;
// go-pdk's -dump lists the plugin's phases from the methods Config has.
func (c *Config) Access(kong *pdk.PDK) { c.serve(pdkKong{bridgeConn{kong}}) }

// pdkKong is the part of Kong's PDK the plugin uses. Each method is one
// PDK call, or two that go out together, over the plugin socket
// (kong/runloop/plugin_servers/rpc/pb_rpc.lua, Kong 3.9: the call's name
// and argument, each a frame, then Kong's answer, one frame).
type pdkKong struct{ conn pdkConn }

// pdkConn carries PDK calls to Kong: bffgate's plugin server
// (*kongConn) or go-pdk's (bridgeConn).
type pdkConn interface {
	// ask makes the calls in order and unmarshals each answer into its
	// out. It may write them all before it reads the first answer:
	// Kong's bridge loop answers the calls one after another as it reads
	// them, so calls that do not need each other's answers cost one
	// round trip together.
	ask(calls ...pdkCall) error
	// exit sends kong.response.exit with args (ExitArgs) and ends the
	// event: Kong never answers it.
	exit(args []byte)
}

// pdkCall is one PDK call: the method, its argument message encoded, and
// where its answer goes (nil: nowhere).
type pdkCall struct {
	method string
	args   []byte
	out    proto.Message
}

// The arguments that never change.
var (
	argRequest    = mustMarshal(&kpp.String{V: "request"})
	argMaxHeaders = mustMarshal(&kpp.Int{V: maxHeaders})
)

func mustMarshal(m proto.Message) []byte {
	b, err := proto.Marshal(m)
	if err != nil {
		panic(err)
	}
	return b
}

// GetRequestAndHeaders is kong.nginx.get_var("request") and
// kong.request.get_headers(maxHeaders), written together (one round
// trip). The first is nginx's $request, the request line as the client
// sent it ("GET /api/x?y=1 HTTP/1.1"; nginx builds the same line from
// HTTP/2's and HTTP/3's pseudo-headers): it holds what
// kong.request.get_method and get_path_with_query (which is
// $request_uri) answer. The headers come with canonical names, and n is
// how many values Kong sent; Kong's answer is decoded here
// (decodeHeaders) rather than through go-pdk's maps.
func (k pdkKong) GetRequestAndHeaders() (line string, h http.Header, n int, err error) {
	var v kpp.String
	var raw emptypb.Empty
	if err := k.conn.ask(
		pdkCall{"kong.nginx.get_var", argRequest, &v},
		pdkCall{"kong.request.get_headers", argMaxHeaders, &raw},
	); err != nil {
		return "", nil, 0, err
	}
	h, n, err = decodeHeaders(rawBytes(&raw))
	return v.V, h, n, err
}

// GetMethodAndPath is kong.request.get_method and get_path_with_query,
// written together.
func (k pdkKong) GetMethodAndPath() (method, uri string, err error) {
	var m, u kpp.String
	err = k.conn.ask(
		pdkCall{"kong.request.get_method", nil, &m},
		pdkCall{"kong.request.get_path_with_query", nil, &u},
	)
	return m.V, u.V, err
}

// GetHost is kong.request.get_host.
func (k pdkKong) GetHost() (string, error) {
	var v kpp.String
	err := k.conn.ask(pdkCall{"kong.request.get_host", nil, &v})
	return v.V, err
}

// GetRawBody is kong.request.get_raw_body, read as go-pdk's
// Request.GetRawBody reads it: the body, or the file Kong buffered it
// to, or Kong's error.
func (k pdkKong) GetRawBody() ([]byte, error) {
	var out kpp.RawBodyResult
	if err := k.conn.ask(pdkCall{"kong.request.get_raw_body", nil, &out}); err != nil {
		return nil, err
	}
	switch x := out.Kind.(type) {
	case *kpp.RawBodyResult_BodyFilepath:
		return os.ReadFile(x.BodyFilepath)
	case *kpp.RawBodyResult_Error:
		return nil, errors.New(x.Error)
	}
	return out.GetContent(), nil
}

// LogErr is kong.log.err(msg), as go-pdk's Log.Err sends it.
func (k pdkKong) LogErr(msg string) error {
	l, err := structpb.NewList([]any{msg})
	if err != nil {
		return err
	}
	return k.conn.ask(pdkCall{"kong.log.err", mustMarshal(l), nil})
}

// SetUpstreamHeaders is kong.service.request.set_headers with the headers
// of set, and the names of del that set does not replace removed.
func (k pdkKong) SetUpstreamHeaders(set http.Header, del []string) error {
	return k.conn.ask(pdkCall{"kong.service.request.set_headers", appendHeaders(nil, set, del), nil})
}

// Exit answers the client: kong.response.exit, as go-pdk's Response.Exit
// sends it (exitArgs). It is the last PDK call of a request.
func (k pdkKong) Exit(status int, body []byte, header http.Header) {
	k.conn.exit(exitArgs(status, body, header))
}

// bridgeConn is go-pdk's connection to Kong, one round trip per call.
type bridgeConn struct{ *pdk.PDK }

func (b bridgeConn) ask(calls ...pdkCall) error {
	for _, c := range calls {
		if err := b.Request.Ask(c.method, rawMessage(c.args), c.out); err != nil {
			return err
		}
	}
	return nil
}

// exit is go-pdk's Response.Exit: the call, Kong's answer (which never
// comes: the read fails when Kong's request ends), then the close. go-pdk's
// server then logs its failed write of the event's end on that connection.
func (b bridgeConn) exit(args []byte) {
	_ = b.Response.Ask("kong.response.exit", rawMessage(args), nil)
	b.Response.Close()
}

// maxHeaders is how many request headers the plugin asks Kong for: the
// most kong.request.get_headers allows (its default is 100). Headers past
// it are not seen, which cannot help a client: when Kong may have left
// some out, identity headers are removed upstream by name whether or not
// they were seen, and an unseen session cookie is no session.
const maxHeaders = 1000

// serve runs one request through the engine. It makes three PDK calls
// in two round trips: two reads written together (the request line, the
// headers), then one write (exit or set_headers). A back-channel logout
// adds the body read; a request without a Host header the host read; a
// request line that is not "METHOD /path HTTP/x" the method and path
// reads (together); the first request after a config error the log
// line. Any failure answers the client: a
// request the engine did not let through never goes upstream.
func (c *Config) serve(k pdkKong) {
	exited := false
	exit := func(status int, body []byte, header http.Header) {
		exited = true
		k.Exit(status, body, header)
	}
	defer func() {
		if p := recover(); p != nil && !exited {
			_ = k.LogErr(hostlog.Line("bffgate: internal error", "error", fmt.Sprint(p)))
			exit(internalError())
		}
	}()

	e := engines.forConfig(c)
	b, err := e.get()
	if err != nil {
		if e.logged.CompareAndSwap(false, true) {
			// A *bff.ConfigError names the field and the fix, not the value.
			_ = k.LogErr(hostlog.Line("bffgate: engine refused", "error", err.Error()))
		}
		exit(failure(err))
		return
	}
	req, complete, err := readRequest(k)
	if err != nil {
		exit(internalError())
		return
	}
	if err := c.Policy.Validate("policy"); err != nil {
		// bff.New checks the policy too, but the engine is built without
		// it (it is per instance): a bad one is refused here, once per
		// request, at no PDK call.
		exit(failure(err))
		return
	}
	if err := b.CheckRoute("route", c.Route); err != nil {
		// The same for the route: its resource must be one of the
		// engine's, its dpop_url needs the engine's dpop.
		exit(failure(err))
		return
	}
	req.Policy = &c.Policy // this route's (see configKey)
	// Kong's side waits for the answer without a deadline of its own; the
	// engine waits at most http_timeout for the provider or a refresh.
	ctx, cancel := context.WithTimeout(context.Background(), e.deadline)
	defer cancel()
	res := b.HandleRoute(ctx, req, c.Route) // this route's too
	if !res.Forward() {
		exit(res.Status, res.Body, res.Header)
		return
	}
	var seen http.Header // nil: Kong may have left headers out, remove every name
	if complete {
		seen = req.Header
	}
	if err := k.SetUpstreamHeaders(res.Set, removals(res.Del, seen)); err != nil {
		exit(internalError())
	}
}

// readRequest reads what the engine needs in two PDK calls, written
// together: the request line (method and request URI as the client sent
// them, before Kong's strip_path) and the headers. The body is read only
// if the engine reads it. complete reports whether Kong sent every
// header.
func readRequest(k pdkKong) (req *bff.Request, complete bool, err error) {
	line, h, n, err := k.GetRequestAndHeaders()
	if err != nil {
		return nil, false, err
	}
	method, uri, ok := parseRequestLine(line)
	if !ok {
		// An absolute-form target ("GET http://host/x HTTP/1.1"), whose
		// $request_uri is the path alone, or a line nginx let through
		// with extra spaces: ask for the two parts themselves.
		if method, uri, err = k.GetMethodAndPath(); err != nil {
			return nil, false, err
		}
	}
	// The Host header (HTTP/2's :authority too, which nginx turns into
	// one) keeps the port, which the same-origin check compares with the
	// Origin header's; kong.request.get_host drops it.
	host := h.Get("Host")
	delete(h, "Host")
	if host == "" {
		if host, err = k.GetHost(); err != nil {
			return nil, false, err
		}
	}
	path, query, _ := strings.Cut(uri, "?")
	return &bff.Request{
		Method:   method,
		Host:     host,
		Path:     path,
		RawQuery: query,
		Header:   h,
		Body:     &lazyBody{k: k},
	}, n < maxHeaders, nil
}

// parseRequestLine splits "METHOD /target HTTP/x" into the method and the
// origin-form target. ok is false for any other shape: no version, a
// target that is not a path, or spaces beyond the two separators.
func parseRequestLine(line string) (method, uri string, ok bool) {
	method, rest, found := strings.Cut(line, " ")
	i := strings.LastIndexByte(rest, ' ')
	if !found || method == "" || i < 0 || !strings.HasPrefix(rest[i+1:], "HTTP/") {
		return "", "", false
	}
	uri = rest[:i]
	if !strings.HasPrefix(uri, "/") || strings.ContainsAny(uri, " \t") {
		return "", "", false
	}
	return method, uri, true
}

// lazyBody reads the request body from Kong on the first Read.
type lazyBody struct {
	k   pdkKong
	r   io.Reader // nil until the first Read
	err error
}

func (b *lazyBody) Read(p []byte) (int, error) {
	if b.r == nil && b.err == nil {
		raw, err := b.k.GetRawBody()
		if err != nil {
			b.err = fmt.Errorf("bffgate: reading the request body from Kong: %w", err)
		} else {
			b.r = bytes.NewReader(raw)
		}
	}
	if b.err != nil {
		return 0, b.err
	}
	return b.r.Read(p)
}

// removals returns the names of del to send as removals: those seen in
// the request, or all of them when seen is nil. A header the request does
// not have needs no removal; a removal costs Kong a header write.
func removals(del []string, seen http.Header) []string {
	if seen == nil {
		return del
	}
	var out []string
	for _, name := range del {
		if _, ok := seen[http.CanonicalHeaderKey(name)]; ok {
			out = append(out, name)
		}
	}
	return out
}

// internalError is the answer when the plugin failed.
func internalError() (int, []byte, http.Header) {
	return errorAnswer(http.StatusInternalServerError, bff.CodeInternal, "the bffgate plugin failed; the Kong error log says why")
}

// errorAnswer is bffgate's one JSON error shape, as Exit takes it.
func errorAnswer(status int, code bff.Code, desc string) (int, []byte, http.Header) {
	r := bff.ErrorResult(status, code, desc)
	return r.Status, r.Body, r.Header
}

// failure is the answer when no engine could be built: 500 for a config
// error, naming the field but not the value (the Kong error log has the
// whole message); 503 for anything else, which is retried on the next
// request.
func failure(err error) (int, []byte, http.Header) {
	var ce *bff.ConfigError
	if !errors.As(err, &ce) {
		return errorAnswer(http.StatusServiceUnavailable, bff.CodeUnavailable, "the bffgate engine could not start; the Kong error log says why")
	}
	return errorAnswer(http.StatusInternalServerError, bff.CodeConfigInvalid,
		"the bffgate plugin's configuration is invalid at "+ce.Field+"; the Kong error log says how to fix it")
}
