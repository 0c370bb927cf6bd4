package main

// These tests build the plugin binary as `make kong-plugin` does
// (CGO_ENABLED=0, -trimpath; once, in TestMain) and run it the way Kong
// does. Kong itself (OpenResty) cannot run here; in its place:
//
//   - `bffgate -dump` is Kong's pluginserver_bffgate_query_cmd: its output is
//     parsed as Kong parses it and checked against bff.Config with reflect
//     (schema_test.go: the rules Kong gets; Kong's validation of configs);
//   - `bffgate -kong-prefix DIR` is Kong's start_cmd: a fake Kong, built from
//     go-pdk's own protocol package (server/kong_plugin_protocol) and its
//     header wrapping (bridge), talks to it over DIR/bffgate.socket as Kong
//     3.9's pluginserver does (kong/runloop/plugin_servers/rpc/pb_rpc.lua):
//     a connection per call from a keepalive pool; start an instance with
//     the config JSON Kong sends, run the access phase, answer each PDK
//     call, drop the connection after kong.response.exit. It takes any
//     method (DELETE, OPTIONS), counts the PDK messages on the wire and
//     their bytes, and reads the server's log. The same fake answers the
//     plugin in this process over a pipe (plugin_test.go's harness).

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/Kong/go-pdk/bridge"
	kpp "github.com/Kong/go-pdk/server/kong_plugin_protocol"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/bffgate/bffgate/core/bff"
	"github.com/bffgate/bffgate/internal/version"
	"github.com/bffgate/bffgate/tests/flowtest"
	"github.com/bffgate/bffgate/tests/op"
)

// binPath is the plugin binary TestMain builds, and buildErr why it could
// not.
var (
	binPath  string
	buildErr error
)

// buildPlugin builds the plugin once per test run as `make kong-plugin`
// does, named bffgate as Kong users install it (go-pdk names the plugin
// and its socket after the executable). TestMain calls it before any test
// runs, with no time limit of its own and outside go test's -timeout: a
// cold build (empty GOCACHE) takes minutes on a small machine, and killing
// it made the first `make test` on a new machine fail.
func buildPlugin() (dir string, err error) {
	dir, err = os.MkdirTemp("", "bffgate-kong-")
	if err != nil {
		return "", err
	}
	binPath = filepath.Join(dir, "bffgate")
	cmd := exec.Command("go", "build", "-trimpath", "-o", binPath, ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return dir, fmt.Errorf("go build: %v\n%s", err, out)
	}
	return dir, nil
}

// pluginBinary returns the binary TestMain built.
func pluginBinary(t testing.TB) string {
	t.Helper()
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// dumpInfo is what Kong reads from the query command (process.lua).
type dumpInfo struct {
	Protocol   string
	SocketPath string
	Plugins    []struct {
		Name     string
		Phases   []string
		Version  string
		Priority int
		Schema   struct {
			Name   string           `json:"name"`
			Fields []map[string]any `json:"fields"`
		}
	}
}

func TestDumpSchema(t *testing.T) {
	out, err := exec.Command(pluginBinary(t), "-dump").Output()
	if err != nil {
		t.Fatalf("bffgate -dump: %v", err)
	}
	var info dumpInfo
	if err := json.Unmarshal(out, &info); err != nil {
		t.Fatalf("-dump output is not JSON: %v\n%s", err, out)
	}
	if info.Protocol != "ProtoBuf:1" || len(info.Plugins) != 1 {
		t.Fatalf("-dump = %s", out)
	}
	p := info.Plugins[0]
	if p.Name != "bffgate" || p.Schema.Name != "bffgate" || p.Priority != Priority ||
		!reflect.DeepEqual(p.Phases, []string{"access"}) {
		t.Fatalf("plugin info = %+v", p)
	}
	// Kong 3.x loads the plugin only if its version passes valid_version.
	if v, ok := version.Kong(p.Version); !ok || v != p.Version || p.Version != version.Version {
		t.Fatalf("dumped version %q: Kong keeps %q (loads: %v); want the project's version %q, which Kong keeps as it is", p.Version, v, ok, version.Version)
	}
	if len(p.Schema.Fields) != 1 || p.Schema.Fields[0]["config"] == nil {
		t.Fatalf("schema fields = %v, want one: config", p.Schema.Fields)
	}
	var fields []string
	checkRecord(t, "config", reflect.TypeFor[bff.Config](), p.Schema.Fields[0]["config"], &fields)
	t.Logf("schema check: %d fields of bff.Config, nested ones included, present with their types: %s", len(fields), strings.Join(fields, " "))
}

// checkRecord checks that the schema def of a record lists exactly the
// JSON fields of struct type st, in order, each with the type go-pdk
// gives it — and that go-pdk can express every one.
func checkRecord(t *testing.T, path string, st reflect.Type, def any, seen *[]string) {
	t.Helper()
	rec, _ := def.(map[string]any)
	if rec["type"] != "record" {
		t.Fatalf("%s: schema %v, want a record", path, def)
	}
	list, _ := rec["fields"].([]any)
	var want []reflect.StructField
	for i := range st.NumField() {
		f := st.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		if name == "" || name != f.Tag.Get("json") {
			t.Errorf("%s.%s: json tag %q: go-pdk names fields by the whole tag; give a plain name", path, f.Name, f.Tag.Get("json"))
		}
		want = append(want, f)
	}
	var got []string
	defs := map[string]any{}
	for _, f := range list {
		for name, d := range f.(map[string]any) {
			got = append(got, name)
			defs[name] = d
		}
	}
	var names []string
	for _, f := range want {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		names = append(names, name)
		fdef, ok := defs[name]
		if !ok {
			t.Errorf("%s.%s (%s) is not in the schema: go-pdk drops types it cannot express (int64, time.Duration, interfaces, funcs); use int seconds, strings, bools, slices or structs", path, name, f.Type)
			continue
		}
		*seen = append(*seen, path+"."+name)
		checkType(t, path+"."+name, f.Type, fdef, seen)
	}
	if !reflect.DeepEqual(got, names) {
		t.Errorf("%s: schema fields %v, want the JSON fields of %s in order: %v", path, got, st, names)
	}
}

func checkType(t *testing.T, path string, typ reflect.Type, def any, seen *[]string) {
	t.Helper()
	m, _ := def.(map[string]any)
	for typ.Kind() == reflect.Pointer { // go-pdk describes what a pointer points to
		typ = typ.Elem()
	}
	want := map[reflect.Kind]string{
		reflect.String: "string", reflect.Bool: "boolean",
		reflect.Int: "integer", reflect.Int32: "integer", reflect.Uint: "integer", reflect.Uint32: "integer",
		reflect.Float32: "number", reflect.Float64: "number",
		reflect.Slice: "array", reflect.Map: "map", reflect.Struct: "record",
	}[typ.Kind()]
	if want == "" {
		t.Errorf("%s: go-pdk cannot express %s in a Kong schema (it drops int64, time.Duration, interfaces, funcs); use int seconds, strings, bools, slices or structs", path, typ)
		return
	}
	if m["type"] != want {
		t.Errorf("%s: schema type %v, want %s for %s", path, m["type"], want, typ)
		return
	}
	switch typ.Kind() {
	case reflect.Slice:
		checkType(t, path+"[]", typ.Elem(), m["elements"], seen)
	case reflect.Map:
		checkType(t, path+"{key}", typ.Key(), m["keys"], seen)
		checkType(t, path+"{}", typ.Elem(), m["values"], seen)
	case reflect.Struct:
		checkRecord(t, path, typ, def, seen)
	}
}

// pluginServer is the binary running as Kong's start_cmd runs it.
type pluginServer struct {
	sock string
	out  *flowtest.SyncBuffer // its stdout and stderr, which Kong copies into its error log
	cmd  *exec.Cmd
}

// runPlugin starts the binary as Kong's start_cmd does; the process is
// killed when the test ends.
func runPlugin(t *testing.T) *pluginServer {
	t.Helper()
	return startServer(t, pluginBinary(t), nil)
}

// startServer starts a go-pdk plugin server, bin with env added to this
// process's environment, as Kong's start_cmd does; it is killed when the
// test ends.
func startServer(t testing.TB, bin string, env []string) *pluginServer {
	t.Helper()
	prefix := t.TempDir()
	out := &flowtest.SyncBuffer{}
	cmd := exec.Command(bin, "-kong-prefix", prefix)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("plugin server output:\n%s", out)
		}
	})
	// go-pdk logs this line once it listens. (Dialling to find out would
	// leave an "EOF" in its log, which Kong never causes.)
	// go-pdk names the socket after the executable.
	p := &pluginServer{sock: filepath.Join(prefix, filepath.Base(bin)+".socket"), out: out, cmd: cmd}
	listening := make(chan bool, 1)
	go func() { listening <- p.logs("Listening on socket: "+p.sock, 10*time.Second) }()
	select {
	case err := <-exited:
		t.Fatalf("the plugin server exited: %v\n%s", err, out)
	case ok := <-listening:
		if !ok {
			t.Fatalf("the plugin server is not listening on %s after 10 s\n%s", p.sock, out)
		}
	}
	return p
}

// logs waits up to d for the plugin server to log a line containing s,
// and reports whether it did.
func (p *pluginServer) logs(s string, d time.Duration) bool {
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(d)
	for !strings.Contains(p.out.String(), s) {
		select {
		case <-deadline:
			return false
		case <-tick.C:
		}
	}
	return true
}

func TestBinarySocket(t *testing.T) {
	sock := runPlugin(t).sock
	if fi, err := os.Stat(sock); err != nil || fi.Mode()&os.ModeSocket == 0 {
		t.Fatalf("%s is not a socket: %v", sock, err)
	}
}

// fakeKong speaks Kong's side of the plugin socket protocol as Kong 3.9's
// pb_rpc.lua does (Rpc:call): every call — start an instance, handle an
// event — takes a connection with ngx.socket.connect, which hands out one
// from the keepalive pool when there is one; a call that ends with the
// plugin's final RpcReturn puts it back (c:setkeepalive()). A call that
// ends in kong.response.exit does not: Kong yields the plugin's coroutine
// there, never answers that PDK call or reads the rest, and the
// connection is closed when the request ends — go-pdk, for its part,
// closes it after the exit. When a pooled connection turns out closed,
// Kong's handle_event logs a warning, starts the instance again and runs
// the event again on a new connection; the fake runs it again on the same
// instance, which a running plugin server still has.
type fakeKong struct {
	t     testing.TB
	sock  string
	seq   int64
	idle  []*kongSide // the keepalive pool
	dials int         // connections opened
	line  string      // when set, the request line ($request) instead of the request's
}

// kongSide is Kong's end of one connection: the cosocket, which reads
// through a buffer of its own (lua-nginx-module's receive), so frames the
// plugin wrote together are read together.
type kongSide struct {
	net.Conn
	r *bufio.Reader
}

func newKongSide(c net.Conn) *kongSide { return &kongSide{c, bufio.NewReader(c)} }

func (k *fakeKong) close() {
	for _, c := range k.idle {
		c.Close()
	}
	k.idle = nil
}

// writeFrame writes one frame: a little-endian uint32 length, then the
// bytes. An empty frame is its length alone: a write of nothing on a pipe
// would wait for a read that never comes.
func writeFrame(c *kongSide, b []byte) error {
	if err := binary.Write(c, binary.LittleEndian, uint32(len(b))); err != nil {
		return err
	}
	if len(b) == 0 {
		return nil
	}
	_, err := c.Write(b)
	return err
}

func readFrame(c *kongSide) ([]byte, error) {
	var n uint32
	if err := binary.Read(c.r, binary.LittleEndian, &n); err != nil {
		return nil, err
	}
	b := make([]byte, n)
	_, err := io.ReadFull(c.r, b)
	return b, err
}

// connect is ngx.socket.connect: a pooled connection if there is one
// (reused reports which), else a new one.
func (k *fakeKong) connect() (c *kongSide, reused bool) {
	k.t.Helper()
	if n := len(k.idle); n > 0 {
		c, k.idle = k.idle[n-1], k.idle[:n-1]
		reused = true
	} else {
		nc, err := net.Dial("unix", k.sock)
		if err != nil {
			k.t.Fatal(err)
		}
		c = newKongSide(nc)
		k.dials++
	}
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	return c, reused
}

// setkeepalive puts a connection whose call is complete back in the pool.
func (k *fakeKong) setkeepalive(c *kongSide) { k.idle = append(k.idle, c) }

func (k *fakeKong) send(c *kongSide, call *kpp.RpcCall) error {
	k.t.Helper()
	k.seq++
	call.Sequence = k.seq
	b, err := proto.Marshal(call)
	if err != nil {
		k.t.Fatal(err)
	}
	return writeFrame(c, b)
}

func (k *fakeKong) receive(c *kongSide) *kpp.RpcReturn {
	k.t.Helper()
	b, err := readFrame(c)
	if err != nil {
		k.t.Fatalf("reading the plugin server's answer: %v", err)
	}
	var ret kpp.RpcReturn
	if err := proto.Unmarshal(b, &ret); err != nil {
		k.t.Fatal(err)
	}
	if ret.Sequence != k.seq {
		k.t.Fatalf("answer to call %d, want %d", ret.Sequence, k.seq)
	}
	return &ret
}

// startInstance is Kong's cmd_start_instance with the config JSON Kong
// sends: every schema field (null where unset) and Kong's own keys.
func (k *fakeKong) startInstance(config map[string]any) int32 {
	k.t.Helper()
	raw, err := json.Marshal(config)
	if err != nil {
		k.t.Fatal(err)
	}
	c, _ := k.connect()
	if err := k.send(c, &kpp.RpcCall{Call: &kpp.RpcCall_CmdStartInstance{CmdStartInstance: &kpp.CmdStartInstance{Name: "bffgate", Config: raw}}}); err != nil {
		k.t.Fatal(err)
	}
	st := k.receive(c).GetInstanceStatus()
	if st == nil || st.Name != "bffgate" {
		k.t.Fatalf("start instance: %v", st)
	}
	k.setkeepalive(c)
	return st.InstanceId
}

// access runs the access phase of one request: Kong's cmd_handle_event,
// then one answer per PDK call until the plugin is done or exits.
func (k *fakeKong) access(instance int32, method, target string, h http.Header, body []byte) *answer {
	k.t.Helper()
	c, reused := k.connect()
	err := k.send(c, &kpp.RpcCall{Call: &kpp.RpcCall_CmdHandleEvent{CmdHandleEvent: &kpp.CmdHandleEvent{InstanceId: instance, EventName: "access"}}})
	a := &answer{}
	if err == nil {
		var returned bool
		if returned, err = k.pdk(c, a, method, target, h, body); err == nil {
			if returned { // the request goes on upstream
				k.receive(c)
				k.setkeepalive(c)
			} else { // Kong drops an exited call's connection
				c.Close()
			}
			return a
		}
	}
	c.Close()
	if reused && len(a.calls) == 0 {
		// A pooled connection the plugin server had closed: Kong warns and
		// runs the event again on a new connection.
		k.t.Logf("Kong warning: %v (a pooled connection); running the event again", err)
		return k.access(instance, method, target, h, body)
	}
	k.t.Fatalf("after PDK calls %v: %v", a.calls, err)
	return nil
}

// pdk answers the PDK calls of one request's handler on c as Kong's
// pb_rpc.lua does (call_pdk), recording each call and its bytes in a,
// until the handler returns (an empty method frame; returned is true) or
// calls kong.response.exit, which Kong never answers: it yields the
// plugin's coroutine there, reads nothing more, and the connection goes
// when the request ends.
//
// It counts the round trips too: the calls Kong had read when it had
// nothing more to read are one round trip (the plugin sent them, then
// waited for an answer). Calls the plugin wrote together are read
// together, from c's buffer; a call written on its own, or after an
// answer, starts a round trip of its own.
func (k *fakeKong) pdk(c *kongSide, a *answer, method, target string, h http.Header, body []byte) (returned bool, err error) {
	k.t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		k.t.Fatal(err)
	}
	a.upstream = h.Clone()
	for {
		var name, args []byte
		if name, err = readFrame(c); err != nil {
			return false, err
		}
		if len(name) == 0 {
			return true, nil
		}
		if args, err = readFrame(c); err != nil {
			return false, err
		}
		call := string(name)
		a.calls = append(a.calls, strings.TrimPrefix(call, "kong."))
		a.toKong += 4 + len(name) + 4 + len(args)
		if c.r.Buffered() == 0 { // the plugin waits for the answers now
			a.roundTrips++
		}
		var out proto.Message
		switch call {
		case "kong.nginx.get_var":
			var v kpp.String
			if err := proto.Unmarshal(args, &v); err != nil {
				k.t.Fatal(err)
			}
			if v.V != "request" {
				k.t.Fatalf("the fake Kong has no nginx variable %q", v.V)
			}
			// nginx's $request: the request line as the client sent it.
			line := method + " " + u.RequestURI() + " HTTP/1.1"
			if k.line != "" {
				line = k.line
			}
			out = bridge.WrapString(line)
		case "kong.request.get_method":
			out = bridge.WrapString(method)
		case "kong.request.get_path_with_query":
			out = bridge.WrapString(u.RequestURI())
		case "kong.request.get_host":
			out = bridge.WrapString(u.Hostname())
		case "kong.request.get_headers":
			out = kongHeaders(k.t, h)
		case "kong.request.get_raw_body":
			out = &kpp.RawBodyResult{Kind: &kpp.RawBodyResult_Content{Content: body}}
		case "kong.service.request.set_headers":
			var st structpb.Struct
			if err := proto.Unmarshal(args, &st); err != nil {
				k.t.Fatal(err)
			}
			// As ngx.req.set_header: replace, and remove on an empty table.
			for name, v := range bridge.UnwrapHeaders(&st) {
				if len(v) == 0 {
					a.upstream.Del(name)
				} else {
					a.upstream[http.CanonicalHeaderKey(name)] = v
				}
			}
		case "kong.response.exit":
			var ea kpp.ExitArgs
			if err := proto.Unmarshal(args, &ea); err != nil {
				k.t.Fatal(err)
			}
			a.exited, a.status, a.body, a.upstream = true, int(ea.Status), ea.Body, nil
			a.header = http.Header{}
			for name, v := range bridge.UnwrapHeaders(ea.Headers) {
				a.header[http.CanonicalHeaderKey(name)] = v
			}
			return false, nil
		case "kong.log.err":
			var l structpb.ListValue
			_ = proto.Unmarshal(args, &l)
			var line []string
			for _, v := range l.AsSlice() {
				line = append(line, fmt.Sprint(v))
			}
			a.logged = append(a.logged, strings.Join(line, " "))
			k.t.Logf("Kong error log: %v", l.AsSlice())
		default:
			k.t.Fatalf("the fake Kong does not serve %s", call)
		}
		var reply []byte
		if out != nil {
			if reply, err = proto.Marshal(out); err != nil {
				k.t.Fatal(err)
			}
		}
		a.fromKong += 4 + len(reply)
		if err = writeFrame(c, reply); err != nil {
			return false, err
		}
	}
}

// kongHeaders answers kong.request.get_headers as Kong does: lower-case
// names, a string for one value, a list for several.
func kongHeaders(t testing.TB, h http.Header) *structpb.Struct {
	m := map[string]any{}
	for name, v := range h {
		if len(v) == 1 {
			m[strings.ToLower(name)] = v[0]
			continue
		}
		l := make([]any, len(v))
		for i, s := range v {
			l[i] = s
		}
		m[strings.ToLower(name)] = l
	}
	st, err := structpb.NewStruct(m)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// viaKong is the trip through the fake Kong to one plugin instance.
func viaKong(k *fakeKong, instance int32) trip {
	return func(t testing.TB, method, target string, h http.Header, body []byte) *answer {
		k.t = t
		return k.access(instance, method, target, h, body)
	}
}

// kongConfig is the config JSON Kong sends for a plugin instance written
// with the fields of set: checked against the dumped schema and with its
// defaults filled in as Kong does (it fails the test if Kong would refuse
// it), every other field null, and Kong's own keys.
func kongConfig(t testing.TB, set map[string]any) map[string]any {
	t.Helper()
	raw, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	var c map[string]any
	if err := json.Unmarshal(raw, &c); err != nil {
		t.Fatal(err)
	}
	if err := kongValidate(dumpedConfig(t), c, ""); err != nil {
		t.Fatalf("Kong would refuse the config: %v", err)
	}
	ct := reflect.TypeFor[bff.Config]()
	for i := range ct.NumField() {
		if name := ct.Field(i).Tag.Get("json"); name != "-" && name != "" {
			if _, set := c[name]; !set {
				c[name] = nil
			}
		}
	}
	c["__seq__"], c["__key__"] = 1, "plugins:bffgate:route-1::::ws-1"
	return c
}

func TestBinaryFlow(t *testing.T) {
	srv := provider(t)
	ps := runPlugin(t)
	k := &fakeKong{t: t, sock: ps.sock}
	defer k.close()
	good := map[string]any{
		"issuer": srv.Issuer, "client_id": srv.ClientID, "client_secret": srv.ClientSecret,
		"redirect_url":    appOrigin + "/oauth/callback",
		"cookie_keys":     []string{cookieKey},
		"allowed_origins": []string{"https://spa.example.test"},
		"paths":           map[string]any{"login": nil, "session": "/auth/session"},
	}
	id := k.startInstance(kongConfig(t, good))
	b := newBrowser(t, viaKong(k, id))
	if got := b.login("/app"); got != "/app" {
		t.Fatalf("after login the browser goes to %q, want /app", got)
	}
	if a := b.do("GET", "/auth/session"); a.status != http.StatusOK {
		t.Fatalf("/auth/session (a path from the config) = %d %s", a.status, a.body)
	}

	// DELETE: forwarded with the bearer, the session cookie removed, in
	// three PDK messages.
	a := b.do("DELETE", "/api/orders/7", "X-CSRF", "1")
	if a.exited {
		t.Fatalf("DELETE answered %d %s, want forwarded", a.status, a.body)
	}
	if !strings.HasPrefix(a.upstream.Get("Authorization"), "Bearer ") {
		t.Fatalf("upstream Authorization = %q", a.upstream.Get("Authorization"))
	}
	if _, has := a.upstream["Cookie"]; has {
		t.Fatalf("upstream Cookie = %q, want none", a.upstream["Cookie"])
	}
	want := []string{"nginx.get_var", "request.get_headers", "service.request.set_headers"}
	if !reflect.DeepEqual(a.calls, want) || a.roundTrips != 2 {
		t.Fatalf("PDK messages = %v in %d round trips, want %v in 2", a.calls, a.roundTrips, want)
	}

	// CORS preflights (OPTIONS) are answered, never forwarded.
	a = b.do("OPTIONS", "/api/orders/7", "Origin", "https://spa.example.test",
		"Access-Control-Request-Method", "DELETE", "Access-Control-Request-Headers", "x-csrf")
	if !a.exited || a.status != http.StatusNoContent || a.header.Get("Access-Control-Allow-Origin") != "https://spa.example.test" {
		t.Fatalf("preflight = %d %v (exited %v)", a.status, a.header, a.exited)
	}
	if want := []string{"nginx.get_var", "request.get_headers", "response.exit"}; !reflect.DeepEqual(a.calls, want) {
		t.Fatalf("preflight PDK messages = %v, want %v", a.calls, want)
	}
	b.do("OPTIONS", "/api/orders/7", "Origin", "https://evil.example",
		"Access-Control-Request-Method", "DELETE").wantError(t, http.StatusForbidden, "origin_not_allowed")

	// Without a session, a DELETE is refused with 401 JSON.
	newBrowser(t, viaKong(k, id)).do("DELETE", "/api/orders/7", "X-CSRF", "1").
		wantError(t, http.StatusUnauthorized, "unauthenticated")

	// Kong's side: one connection per call, from the keepalive pool.
	// Forwarded requests in a row go over one connection; an exit's
	// connection is not reused.
	if a := b.do("GET", "/api/orders", "X-CSRF", "1"); a.exited {
		t.Fatalf("GET /api/orders answered %d %s, want forwarded", a.status, a.body)
	}
	dials := k.dials
	for range 2 {
		if a := b.do("GET", "/api/orders", "X-CSRF", "1"); a.exited {
			t.Fatalf("GET /api/orders answered %d %s, want forwarded", a.status, a.body)
		}
	}
	if k.dials != dials || len(k.idle) != 1 {
		t.Fatalf("two forwarded requests opened %d connections and left %d pooled; want 0 and 1 (reused)", k.dials-dials, len(k.idle))
	}
	b.do("GET", "/api/orders").wantError(t, http.StatusForbidden, "csrf_header_missing")
	if len(k.idle) != 0 {
		t.Fatalf("after an exit %d connections are pooled, want 0: Kong drops an exited call's connection", len(k.idle))
	}
	if a := b.do("GET", "/api/orders", "X-CSRF", "1"); a.exited || k.dials != dials+1 {
		t.Fatalf("after an exit: exited %v, %d new connections; want forwarded over 1 new", a.exited, k.dials-dials)
	}

	// A config Kong's schema accepts and the engine refuses: 500 JSON
	// naming the field, logged once.
	good["issuer"] = "ftp://idp.example.com"
	bad := k.startInstance(kongConfig(t, good))
	a = newBrowser(t, viaKong(k, bad)).do("GET", "/api/x")
	a.wantError(t, http.StatusInternalServerError, "bffgate_config_invalid")
	if !reflect.DeepEqual(a.calls, []string{"log.err", "response.exit"}) || a.roundTrips != 2 {
		t.Fatalf("config error PDK messages = %v in %d round trips", a.calls, a.roundTrips)
	}

	// go-pdk's server logs a failed write after each exit (the end of the
	// event, on the connection it closed); this one writes nothing after
	// an exit: the output has where the server listens and the engine's
	// own events (in serve's shape), nothing else.
	if ps.logs("use of closed network connection", time.Second) {
		t.Fatalf("the plugin server logged a failed write after an exit:\n%s", ps.out)
	}
	for _, line := range strings.Split(strings.TrimSpace(ps.out.String()), "\n") {
		if !strings.Contains(line, "Listening on socket") && !strings.Contains(line, ` msg="bffgate: `) {
			t.Errorf("plugin server log line %q, want only where it listens and the engine's events", line)
		}
	}
}

// TestPDKBudget holds every kind of request to the PDK calls, round trips
// and bytes README.md ("How it talks to Kong") gives it, through the
// built binary: the calls by name, in order, the round trips they take
// (calls the plugin writes before it waits for an answer are one), and
// the bytes of the calls and Kong's answers on the wire (frames
// included), for a browser's request with its usual headers.
func TestPDKBudget(t *testing.T) {
	srv := provider(t)
	ps := runPlugin(t)
	k := &fakeKong{t: t, sock: ps.sock}
	defer k.close()
	id := k.startInstance(kongConfig(t, map[string]any{
		"issuer": srv.Issuer, "client_id": srv.ClientID, "client_secret": srv.ClientSecret,
		"redirect_url":     appOrigin + "/oauth/callback",
		"cookie_keys":      []string{cookieKey},
		"public_paths":     []string{"/public/"},
		"identity_headers": []map[string]any{{"header": "X-User", "claim": "sub"}},
	}))
	b := newBrowser(t, viaKong(k, id))
	// A browser's usual headers besides Host and Cookie, on every request.
	usual := []string{
		"User-Agent", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
		"Accept", "application/json", "Accept-Encoding", "gzip, deflate, br, zstd", "Accept-Language", "en-GB,en;q=0.9",
		"Sec-Fetch-Site", "same-origin", "Sec-Fetch-Mode", "cors",
	}
	do := func(method, target string, header ...string) *answer {
		return b.do(method, target, append(slices.Clone(usual), header...)...)
	}
	type row struct {
		name string
		a    *answer
	}
	var rows []row
	a := do("GET", "/login?returnTo=%2Fapp")
	rows = append(rows, row{"login", a})
	cb, err := srv.Login(context.Background(), b.http, a.header.Get("Location"), op.AliceUser, op.AlicePassword)
	if err != nil {
		t.Fatal(err)
	}
	rows = append(rows, row{"callback", do("GET", cb.String())})
	rows = append(rows, row{"session", do("GET", "/session")})
	rows = append(rows, row{"api", do("GET", "/api/orders?page=2", "X-CSRF", "1")})
	rows = append(rows, row{"public", do("GET", "/public/app.js")})
	rows = append(rows, row{"refused", do("GET", "/api/orders?page=2")})
	// README.md's budget, for these requests.
	forward := []string{"nginx.get_var", "request.get_headers", "service.request.set_headers"}
	answer := []string{"nginx.get_var", "request.get_headers", "response.exit"}
	budget := map[string]struct {
		calls            []string
		roundTrips       int
		toKong, fromKong int
	}{
		"login":    {answer, 2, 720, 400},
		"callback": {answer, 2, 420, 860},
		"session":  {answer, 2, 560, 460},
		"api":      {forward, 2, 240, 480},
		"public":   {forward, 2, 150, 460},
		"refused":  {answer, 2, 300, 460},
	}
	for _, r := range rows {
		t.Logf("%-9s %d calls in %d round trips, %4d bytes to Kong, %4d from Kong: %v", r.name, len(r.a.calls), r.a.roundTrips, r.a.toKong, r.a.fromKong, r.a.calls)
		want := budget[r.name]
		if !reflect.DeepEqual(r.a.calls, want.calls) {
			t.Errorf("%s: PDK calls %v, want %v", r.name, r.a.calls, want.calls)
		}
		if r.a.roundTrips != want.roundTrips {
			t.Errorf("%s: %d round trips, want %d", r.name, r.a.roundTrips, want.roundTrips)
		}
		if r.a.toKong > want.toKong || r.a.fromKong > want.fromKong {
			t.Errorf("%s: %d bytes to Kong and %d from Kong, want at most %d and %d", r.name, r.a.toKong, r.a.fromKong, want.toKong, want.fromKong)
		}
	}

	// A request line that is not "METHOD /path HTTP/x" (an absolute-form
	// target, whose $request_uri is the path alone) costs the method and
	// path reads, written together (a round trip more), and is decided on
	// those.
	k.line = "GET http://app.example.test/api/orders?page=2 HTTP/1.1"
	a = do("GET", "/api/orders?page=2", "X-CSRF", "1")
	k.line = ""
	if want := []string{"nginx.get_var", "request.get_headers", "request.get_method", "request.get_path_with_query", "service.request.set_headers"}; !reflect.DeepEqual(a.calls, want) || a.roundTrips != 3 {
		t.Fatalf("absolute-form request: PDK calls %v in %d round trips, want %v in 3", a.calls, a.roundTrips, want)
	}
	if a.exited || !strings.HasPrefix(a.upstream.Get("Authorization"), "Bearer ") {
		t.Fatalf("absolute-form request: exited %v %d %s", a.exited, a.status, a.body)
	}
}

func TestParseRequestLine(t *testing.T) {
	for _, tt := range []struct {
		line, method, uri string
		ok                bool
	}{
		{"GET /api/x?y=1 HTTP/1.1", "GET", "/api/x?y=1", true},
		{"DELETE / HTTP/2.0", "DELETE", "/", true},
		{"OPTIONS /a%20b HTTP/3.0", "OPTIONS", "/a%20b", true},
		{"GET http://h/x HTTP/1.1", "", "", false}, // absolute form
		{"OPTIONS * HTTP/1.1", "", "", false},
		{"GET  /x HTTP/1.1", "", "", false}, // nginx skips extra spaces; the line keeps them
		{"GET /x  HTTP/1.1", "", "", false},
		{"GET /a b HTTP/1.1", "", "", false},
		{"GET /x", "", "", false}, // HTTP/0.9
		{"GET /x FTP/1.0", "", "", false},
		{" /x HTTP/1.1", "", "", false},
		{"", "", "", false},
	} {
		m, u, ok := parseRequestLine(tt.line)
		if m != tt.method || u != tt.uri || ok != tt.ok {
			t.Errorf("parseRequestLine(%q) = %q, %q, %v; want %q, %q, %v", tt.line, m, u, ok, tt.method, tt.uri, tt.ok)
		}
	}
}

// TestServerCommands holds the plugin server to go-pdk's answers to
// Kong's instance commands, and to its errors, which Kong's handle_event
// reads: an event for an instance the server does not have ends the
// connection unanswered, and the server logs "no plugin instance N";
// Kong then starts the instance again.
func TestServerCommands(t *testing.T) {
	ps := runPlugin(t)
	k := &fakeKong{t: t, sock: ps.sock}
	defer k.close()
	config := kongConfig(t, map[string]any{
		"issuer": "https://idp.example.test", "client_id": "c", "client_secret": "s",
		"redirect_url": appOrigin + "/oauth/callback", "cookie_keys": []string{cookieKey},
	})
	config["__seq__"] = 7
	before := time.Now().Unix()
	if id := k.startInstance(config); id != 7 {
		t.Fatalf("instance id %d, want Kong's __seq__ 7", id)
	}
	command := func(call *kpp.RpcCall) *kpp.InstanceStatus {
		t.Helper()
		c, _ := k.connect()
		if err := k.send(c, call); err != nil {
			t.Fatal(err)
		}
		st := k.receive(c).GetInstanceStatus()
		k.setkeepalive(c)
		return st
	}
	st := command(&kpp.RpcCall{Call: &kpp.RpcCall_CmdGetInstanceStatus{CmdGetInstanceStatus: &kpp.CmdGetInstanceStatus{InstanceId: 7}}})
	if st.GetName() != "---" || st.GetInstanceId() != 7 || st.GetStartedAt() < before || st.GetStartedAt() > time.Now().Unix() {
		t.Fatalf("instance status %v, want go-pdk's: name ---, id 7, started now", st)
	}
	delete(config, "__seq__")
	if id := k.startInstance(config); id <= 0 || id == 7 {
		t.Fatalf("instance without __seq__: id %d, want a random positive one", id)
	}
	st = command(&kpp.RpcCall{Call: &kpp.RpcCall_CmdCloseInstance{CmdCloseInstance: &kpp.CmdCloseInstance{InstanceId: 7}}})
	if st.GetName() != "---" || st.GetInstanceId() != 7 {
		t.Fatalf("close instance: %v", st)
	}
	if !ps.logs("closed instance 7", 5*time.Second) {
		t.Fatalf("no log line for the closed instance:\n%s", ps.out)
	}
	// The event of a closed instance: no answer, the connection closed.
	c, _ := k.connect()
	if err := k.send(c, &kpp.RpcCall{Call: &kpp.RpcCall_CmdHandleEvent{CmdHandleEvent: &kpp.CmdHandleEvent{InstanceId: 7, EventName: "access"}}}); err != nil {
		t.Fatal(err)
	}
	if b, err := readFrame(c); err == nil {
		t.Fatalf("an event of a closed instance was answered %q, want the connection closed", b)
	}
	c.Close()
	if !ps.logs("no plugin instance 7", 5*time.Second) {
		t.Fatalf("the server did not log go-pdk's error:\n%s", ps.out)
	}
}

// TestBinaryLargeFrames sends frames larger than a connection's read
// buffer both ways through the built binary — a request with a large
// header, a back-channel logout with a large body — and small requests
// after them on the same pooled connection, whose buffers it reuses.
func TestBinaryLargeFrames(t *testing.T) {
	srv := provider(t)
	ps := runPlugin(t)
	k := &fakeKong{t: t, sock: ps.sock}
	defer k.close()
	id := k.startInstance(kongConfig(t, map[string]any{
		"issuer": srv.Issuer, "client_id": srv.ClientID, "client_secret": srv.ClientSecret,
		"redirect_url": appOrigin + "/oauth/callback", "cookie_keys": []string{cookieKey},
		"public_paths": []string{"/public/"},
	}))
	big := strings.Repeat("0123456789abcdef", 1<<10) // 16 KiB
	for range 2 {
		a := k.access(id, "GET", appOrigin+"/public/app.js", http.Header{"Host": {"app.example.test"}, "X-Big": {big}}, nil)
		if a.exited || a.upstream.Get("X-Big") != big || a.roundTrips != 2 {
			t.Fatalf("public request with a 16 KiB header: exited %v %d %s, %d round trips", a.exited, a.status, a.body, a.roundTrips)
		}
		a = k.access(id, "GET", appOrigin+"/public/app.js", http.Header{"Host": {"app.example.test"}, "X-Small": {"1"}}, nil)
		if a.exited || a.upstream.Get("X-Small") != "1" || a.upstream.Get("X-Big") != "" {
			t.Fatalf("public request after it: exited %v, upstream %v", a.exited, a.upstream)
		}
	}
	body := []byte("logout_token=" + strings.Repeat("x", 100<<10)) // over the 64 KiB a connection keeps
	a := k.access(id, "POST", appOrigin+"/backchannel-logout", http.Header{
		"Host": {"app.example.test"}, "Content-Type": {"application/x-www-form-urlencoded"},
	}, body)
	if !a.exited || a.status != http.StatusBadRequest {
		t.Fatalf("back-channel logout with a 100 KiB body: exited %v %d %s", a.exited, a.status, a.body)
	}
	if want := []string{"nginx.get_var", "request.get_headers", "request.get_raw_body", "response.exit"}; !reflect.DeepEqual(a.calls, want) || a.roundTrips != 3 {
		t.Fatalf("back-channel logout PDK calls %v in %d round trips, want %v in 3", a.calls, a.roundTrips, want)
	}
}
