package main

// These tests build the plugin binary as `make kong-plugin` does
// (CGO_ENABLED=0, -trimpath) and run it the way Kong does. Kong itself
// (OpenResty) cannot run here; in its place:
//
//   - `bffgate -dump` is Kong's pluginserver_bffgate_query_cmd: its output is
//     parsed as Kong parses it and checked against bff.Config with reflect;
//   - `bffgate -kong-prefix DIR` is Kong's start_cmd: a fake Kong, built from
//     go-pdk's own protocol package (server/kong_plugin_protocol) and its
//     header wrapping (bridge), talks to it over DIR/bffgate.socket with
//     the messages Kong's pluginserver sends (kong/runloop/plugin_servers
//     pb_rpc.lua): start an instance with Kong-style config JSON, run the
//     access phase, answer each PDK call. Unlike go-pdk's harness it takes
//     any method (DELETE, OPTIONS), and it counts the PDK messages on the
//     wire.

import (
	"bytes"
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
	"strings"
	"testing"
	"time"

	"github.com/Kong/go-pdk/bridge"
	kpp "github.com/Kong/go-pdk/server/kong_plugin_protocol"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/bffgate/bffgate/core/bff"
	"github.com/bffgate/bffgate/internal/version"
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
func pluginBinary(t *testing.T) string {
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

// runPlugin starts the binary as Kong's start_cmd does and returns the
// socket it listens on; the process is killed when the test ends.
func runPlugin(t *testing.T) string {
	t.Helper()
	prefix := t.TempDir()
	var stderr bytes.Buffer
	cmd := exec.Command(pluginBinary(t), "-kong-prefix", prefix)
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("plugin server output:\n%s", stderr.String())
		}
	})
	sock := filepath.Join(prefix, "bffgate.socket")
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(10 * time.Second)
	for {
		if c, err := net.Dial("unix", sock); err == nil {
			c.Close()
			return sock
		}
		select {
		case err := <-exited:
			t.Fatalf("the plugin server exited: %v\n%s", err, stderr.String())
		case <-deadline:
			t.Fatalf("no socket at %s after 10 s\n%s", sock, stderr.String())
		case <-tick.C:
		}
	}
}

func TestBinarySocket(t *testing.T) {
	sock := runPlugin(t)
	if fi, err := os.Stat(sock); err != nil || fi.Mode()&os.ModeSocket == 0 {
		t.Fatalf("%s is not a socket: %v", sock, err)
	}
}

// fakeKong speaks Kong's side of the plugin socket protocol.
type fakeKong struct {
	t    *testing.T
	sock string
	seq  int64
}

func writeFrame(c net.Conn, b []byte) error {
	if err := binary.Write(c, binary.LittleEndian, uint32(len(b))); err != nil {
		return err
	}
	_, err := c.Write(b)
	return err
}

func readFrame(c net.Conn) ([]byte, error) {
	var n uint32
	if err := binary.Read(c, binary.LittleEndian, &n); err != nil {
		return nil, err
	}
	b := make([]byte, n)
	_, err := io.ReadFull(c, b)
	return b, err
}

func (k *fakeKong) dial() net.Conn {
	k.t.Helper()
	c, err := net.Dial("unix", k.sock)
	if err != nil {
		k.t.Fatal(err)
	}
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	return c
}

func (k *fakeKong) send(c net.Conn, call *kpp.RpcCall) {
	k.t.Helper()
	k.seq++
	call.Sequence = k.seq
	b, err := proto.Marshal(call)
	if err != nil {
		k.t.Fatal(err)
	}
	if err := writeFrame(c, b); err != nil {
		k.t.Fatal(err)
	}
}

func (k *fakeKong) receive(c net.Conn) *kpp.RpcReturn {
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
	c := k.dial()
	defer c.Close()
	k.send(c, &kpp.RpcCall{Call: &kpp.RpcCall_CmdStartInstance{CmdStartInstance: &kpp.CmdStartInstance{Name: "bffgate", Config: raw}}})
	st := k.receive(c).GetInstanceStatus()
	if st == nil || st.Name != "bffgate" {
		k.t.Fatalf("start instance: %v", st)
	}
	return st.InstanceId
}

// access runs the access phase of one request: Kong's cmd_handle_event,
// then one answer per PDK call until the plugin is done or exits.
func (k *fakeKong) access(instance int32, method, target string, h http.Header, body []byte) *answer {
	k.t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		k.t.Fatal(err)
	}
	c := k.dial()
	defer c.Close()
	k.send(c, &kpp.RpcCall{Call: &kpp.RpcCall_CmdHandleEvent{CmdHandleEvent: &kpp.CmdHandleEvent{InstanceId: instance, EventName: "access"}}})
	a := &answer{upstream: h.Clone()}
	for {
		name, err := readFrame(c)
		if err != nil {
			k.t.Fatalf("after PDK calls %v: %v", a.calls, err)
		}
		if len(name) == 0 { // the handler returned: the request goes on upstream
			k.receive(c)
			return a
		}
		args, err := readFrame(c)
		if err != nil {
			k.t.Fatal(err)
		}
		call := string(name)
		a.calls = append(a.calls, strings.TrimPrefix(call, "kong."))
		var out proto.Message
		switch call {
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
			// Kong's exit ends the request (ngx.exit): no answer, the
			// connection goes.
			return a
		case "kong.log.err":
			var l structpb.ListValue
			_ = proto.Unmarshal(args, &l)
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
		if err := writeFrame(c, reply); err != nil {
			k.t.Fatal(err)
		}
	}
}

// kongHeaders answers kong.request.get_headers as Kong does: lower-case
// names, a string for one value, a list for several.
func kongHeaders(t *testing.T, h http.Header) *structpb.Struct {
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
	return func(t *testing.T, method, target string, h http.Header, body []byte) *answer {
		k.t = t
		return k.access(instance, method, target, h, body)
	}
}

// kongConfig is the config JSON Kong sends for a plugin instance: each
// field of the dumped schema, null unless set, and Kong's own keys.
func kongConfig(set map[string]any) map[string]any {
	c := map[string]any{"__seq__": 1, "__key__": "plugins:bffgate:route-1::::ws-1"}
	ct := reflect.TypeFor[bff.Config]()
	for i := range ct.NumField() {
		if name := ct.Field(i).Tag.Get("json"); name != "-" && name != "" {
			c[name] = nil
		}
	}
	for k, v := range set {
		c[k] = v
	}
	return c
}

func TestBinaryFlow(t *testing.T) {
	srv := provider(t)
	k := &fakeKong{t: t, sock: runPlugin(t)}
	id := k.startInstance(kongConfig(map[string]any{
		"issuer": srv.Issuer, "client_id": srv.ClientID, "client_secret": srv.ClientSecret,
		"redirect_url":    appOrigin + "/oauth/callback",
		"cookie_keys":     []string{cookieKey},
		"allowed_origins": []string{"https://spa.example.test"},
		"paths":           map[string]any{"login": nil, "session": "/auth/session"},
	}))
	b := newBrowser(t, viaKong(k, id))
	if got := b.login("/app"); got != "/app" {
		t.Fatalf("after login the browser goes to %q, want /app", got)
	}
	if a := b.do("GET", "/auth/session"); a.status != http.StatusOK {
		t.Fatalf("/auth/session (a path from the config) = %d %s", a.status, a.body)
	}

	// DELETE, which go-pdk's harness cannot send: forwarded with the
	// bearer, the session cookie removed, in four PDK messages.
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
	want := []string{"request.get_method", "request.get_path_with_query", "request.get_headers", "service.request.set_headers"}
	if !reflect.DeepEqual(a.calls, want) {
		t.Fatalf("PDK messages = %v, want %v", a.calls, want)
	}

	// CORS preflights (OPTIONS) are answered, never forwarded.
	a = b.do("OPTIONS", "/api/orders/7", "Origin", "https://spa.example.test",
		"Access-Control-Request-Method", "DELETE", "Access-Control-Request-Headers", "x-csrf")
	if !a.exited || a.status != http.StatusNoContent || a.header.Get("Access-Control-Allow-Origin") != "https://spa.example.test" {
		t.Fatalf("preflight = %d %v (exited %v)", a.status, a.header, a.exited)
	}
	if want := []string{"request.get_method", "request.get_path_with_query", "request.get_headers", "response.exit"}; !reflect.DeepEqual(a.calls, want) {
		t.Fatalf("preflight PDK messages = %v, want %v", a.calls, want)
	}
	b.do("OPTIONS", "/api/orders/7", "Origin", "https://evil.example",
		"Access-Control-Request-Method", "DELETE").wantError(t, http.StatusForbidden, "origin_not_allowed")

	// Without a session, a DELETE is refused with 401 JSON.
	newBrowser(t, viaKong(k, id)).do("DELETE", "/api/orders/7", "X-CSRF", "1").
		wantError(t, http.StatusUnauthorized, "unauthenticated")

	// A config error: 500 JSON naming the field, logged once.
	bad := k.startInstance(kongConfig(map[string]any{"issuer": srv.Issuer}))
	a = newBrowser(t, viaKong(k, bad)).do("GET", "/api/x")
	a.wantError(t, http.StatusInternalServerError, "bffgate_config_invalid")
	if !reflect.DeepEqual(a.calls, []string{"log.err", "response.exit"}) {
		t.Fatalf("config error PDK messages = %v", a.calls)
	}
}
