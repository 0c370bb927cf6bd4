package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/Kong/go-pdk"

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

// Access is Kong's access phase: the engine answers the request itself or
// lets it go upstream with edited headers.
func (c *Config) Access(kong *pdk.PDK) { c.serve(pdkKong{kong}) }

// kong is the part of the PDK the plugin uses. Each method is exactly one
// PDK call, which Kong serves as one RPC over the plugin socket; tests wrap
// it to count them.
type kong interface {
	GetMethod() (string, error)                      // kong.request.get_method
	GetPathWithQuery() (string, error)               // kong.request.get_path_with_query
	GetHeaders(max int) (map[string][]string, error) // kong.request.get_headers
	GetHost() (string, error)                        // kong.request.get_host
	GetRawBody() ([]byte, error)                     // kong.request.get_raw_body
	SetUpstreamHeaders(map[string][]string) error    // kong.service.request.set_headers
	Exit(status int, body []byte, header map[string][]string)
	LogErr(msg string) error // kong.log.err
}

// pdkKong is kong on go-pdk.
type pdkKong struct{ *pdk.PDK }

func (k pdkKong) GetMethod() (string, error)        { return k.Request.GetMethod() }
func (k pdkKong) GetPathWithQuery() (string, error) { return k.Request.GetPathWithQuery() }
func (k pdkKong) GetHost() (string, error)          { return k.Request.GetHost() }
func (k pdkKong) GetRawBody() ([]byte, error)       { return k.Request.GetRawBody() }
func (k pdkKong) LogErr(msg string) error           { return k.Log.Err(msg) }

func (k pdkKong) GetHeaders(max int) (map[string][]string, error) {
	return k.Request.GetHeaders(max)
}

func (k pdkKong) SetUpstreamHeaders(h map[string][]string) error {
	return k.ServiceRequest.SetHeaders(h)
}

// Exit answers the client. go-pdk closes the connection to Kong after it,
// so it is the last PDK call of a request, and then logs a failed write
// on that connection, which exitNoise drops.
func (k pdkKong) Exit(status int, body []byte, header map[string][]string) {
	if header == nil {
		header = map[string][]string{}
	}
	k.Response.Exit(status, body, header)
	exitNoise.owe()
}

// maxHeaders is how many request headers the plugin asks Kong for: the
// most kong.request.get_headers allows (its default is 100). Headers past
// it are not seen, which cannot help a client: identity headers are
// removed upstream by name whether or not they were seen, and an unseen
// session cookie is no session.
const maxHeaders = 1000

// serve runs one request through the engine. It makes four PDK calls: three
// reads and one write (exit or set_headers); a back-channel logout adds the
// body read, a request without a Host header the host read, and the first
// request after a config error the log line. Any failure answers the
// client: a request the engine did not let through never goes upstream.
func (c *Config) serve(k kong) {
	exited := false
	exit := func(status int, body []byte, header map[string][]string) {
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
	req, err := readRequest(k)
	if err != nil {
		exit(internalError())
		return
	}
	// Kong's side waits for the answer without a deadline of its own; the
	// engine waits at most http_timeout for the provider or a refresh.
	ctx, cancel := context.WithTimeout(context.Background(), e.deadline)
	defer cancel()
	res := b.Handle(ctx, req)
	if !res.Forward() {
		exit(res.Status, res.Body, res.Header)
		return
	}
	if err := k.SetUpstreamHeaders(upstreamHeaders(&res)); err != nil {
		exit(internalError())
	}
}

// readRequest reads what the engine needs in three PDK calls: method, path
// with query (the request URI as the client sent it, before Kong's
// strip_path) and headers. The body is read only if the engine reads it.
func readRequest(k kong) (*bff.Request, error) {
	method, err := k.GetMethod()
	if err != nil {
		return nil, err
	}
	uri, err := k.GetPathWithQuery()
	if err != nil {
		return nil, err
	}
	raw, err := k.GetHeaders(maxHeaders)
	if err != nil {
		return nil, err
	}
	// Kong gives lower-case names; the engine reads canonical ones, as
	// net/http has them.
	h := make(http.Header, len(raw))
	for name, v := range raw {
		h[http.CanonicalHeaderKey(name)] = v
	}
	// The Host header (HTTP/2's :authority too, which nginx turns into
	// one) keeps the port, which the same-origin check compares with the
	// Origin header's; kong.request.get_host drops it.
	host := h.Get("Host")
	delete(h, "Host")
	if host == "" {
		if host, err = k.GetHost(); err != nil {
			return nil, err
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
	}, nil
}

// lazyBody reads the request body from Kong on the first Read.
type lazyBody struct {
	k   kong
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

// upstreamHeaders folds a forwarding Result's edits into one
// kong.service.request.set_headers call: the headers of Set as they are,
// and every header of Del that Set does not replace as an empty list.
// set_headers hands each value to ngx.req.set_header, which removes a
// header given an empty table (Kong's pluginserver turns the empty list
// into one), so the removals cost no kong.service.request.clear_header
// calls of their own.
func upstreamHeaders(res *bff.Result) map[string][]string {
	h := make(map[string][]string, len(res.Set)+len(res.Del))
	for _, name := range res.Del {
		h[http.CanonicalHeaderKey(name)] = []string{}
	}
	for name, v := range res.Set {
		h[http.CanonicalHeaderKey(name)] = v
	}
	return h
}

// internalError is the answer when the plugin failed.
func internalError() (int, []byte, map[string][]string) {
	return errorAnswer(http.StatusInternalServerError, bff.CodeInternal, "the bffgate plugin failed; the Kong error log says why")
}

// errorAnswer is bffgate's one JSON error shape, as Exit takes it.
func errorAnswer(status int, code bff.Code, desc string) (int, []byte, map[string][]string) {
	r := bff.ErrorResult(status, code, desc)
	return r.Status, r.Body, r.Header
}

// failure is the answer when no engine could be built: 500 for a config
// error, naming the field but not the value (the Kong error log has the
// whole message); 503 for anything else, which is retried on the next
// request.
func failure(err error) (int, []byte, map[string][]string) {
	var ce *bff.ConfigError
	if !errors.As(err, &ce) {
		return errorAnswer(http.StatusServiceUnavailable, bff.CodeUnavailable, "the bffgate engine could not start; the Kong error log says why")
	}
	return errorAnswer(http.StatusInternalServerError, bff.CodeConfigInvalid,
		"the bffgate plugin's configuration is invalid at "+ce.Field+"; the Kong error log says how to fix it")
}
