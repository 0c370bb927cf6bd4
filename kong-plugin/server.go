package main

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net"
	"os"
	"path"
	"sync"
	"time"

	kpp "github.com/Kong/go-pdk/server/kong_plugin_protocol"
	"google.golang.org/protobuf/proto"
)

// This is bffgate's plugin server: Kong's side of the plugin socket
// protocol as go-pdk v0.11.2's server speaks it (server/pbserver.go,
// instance.go, os.go), with the connection handling of its own. go-pdk
// writes every frame as two writes (the length, then the bytes) and reads
// every frame with two reads, so a PDK call there costs four write and
// two read system calls, and each call waits for its answer before the
// next is sent. Here every frame goes out with the frames sent with it in
// one write, reads go through one buffered reader per connection, and
// PDK calls that do not depend on each other's answers are written
// together and answered together: Kong's bridge loop (Rpc:call in
// kong/runloop/plugin_servers/rpc/pb_rpc.lua, Kong 3.9) reads a method
// frame and an argument frame, answers with one frame, and reads the
// next call, strictly in order, from what its socket has buffered — so
// two calls written back to back cost one round trip.
//
// Everything else is go-pdk's: the socket's path, the commands and their
// answers, the instance ids and their expiry, the errors (Kong's
// handle_event restarts an instance when its call fails with "no plugin
// instance" or a closed connection), the empty method frame that ends an
// event and the connection closed after kong.response.exit. The
// messages are go-pdk's protocol package, kong_plugin_protocol.

// socketPath is where the plugin server listens and Kong looks for it:
// <prefix>/<the executable's file name>.socket, as go-pdk's server/os.go
// has it (Kong's default pluginserver_<name>_socket is the same).
func socketPath(prefix string) (string, error) {
	exe, err := os.Executable()
	if err != nil {
		return "", err
	}
	return path.Join(prefix, path.Base(exe)+".socket"), nil
}

// listenAndServe serves Kong on the socket of prefix until the process
// ends. It returns only when it cannot listen, and has logged why, as
// go-pdk's StartServer does.
func listenAndServe(prefix string) error {
	sock, err := socketPath(prefix)
	if err != nil {
		return err
	}
	if err := os.Remove(sock); err != nil && !os.IsNotExist(err) {
		log.Printf(`removing "%s": %s`, sock, err)
		return err
	}
	l, err := net.Listen("unix", sock)
	if err != nil {
		log.Printf(`listen("%s"): %s`, sock, err)
		return err
	}
	defer l.Close()
	log.Printf("Listening on socket: %s", sock)
	s := newKongServer()
	for {
		c, err := l.Accept()
		if err != nil {
			log.Fatal(err)
		}
		go s.serveConn(c)
	}
}

// kongServer is the plugin server: the plugin instances Kong started.
type kongServer struct {
	mu        sync.RWMutex // guards instances
	instances map[int32]*instance
}

// instance is one plugin instance: one configuration, in one Kong worker.
type instance struct {
	id      int32
	name    string
	started time.Time
	config  *Config
}

func newKongServer() *kongServer {
	return &kongServer{instances: map[int32]*instance{}}
}

// instanceTimeout is go-pdk's: when Kong closes an instance, every
// instance started longer ago than this goes too (go-pdk v0.11.2 checks
// the time of an instance's last event as well, but never sets it). Kong
// starts one again on its next event, whose call fails with "no plugin
// instance"; the engine, shared by configuration, stays.
const instanceTimeout = 60 * time.Second

// serveConn serves one connection from Kong: a command frame, its answer,
// and so on until Kong closes it, a call fails or an event ends in
// kong.response.exit. go-pdk logs why a connection ended; so does this
// (a failed PDK call too, named), except for an EOF: Kong closing an idle
// connection of its keepalive pool (a lone "EOF" in go-pdk's log), or the
// connection of a request whose PDK call failed in Kong, which Kong logs
// itself.
func (s *kongServer) serveConn(c net.Conn) {
	k := newKongConn(c)
	err := s.serveCalls(k)
	c.Close()
	k.release()
	if err != nil && !errors.Is(err, io.EOF) {
		log.Print(err)
	}
}

// serveCalls answers Kong's commands on k until one ends the connection.
func (s *kongServer) serveCalls(k *kongConn) error {
	for {
		b, err := k.readFrame()
		if err != nil {
			return err
		}
		var call kpp.RpcCall
		if err := proto.Unmarshal(b, &call); err != nil {
			return err
		}
		ret, open, err := s.handle(k, &call)
		if err != nil || !open {
			return err
		}
		var out []byte
		if ret != nil { // go-pdk answers the commands it ignores with an empty frame
			if out, err = proto.Marshal(ret); err != nil {
				return err
			}
		}
		k.w = appendFrame(k.w, out)
		if err := k.flush(); err != nil {
			return err
		}
	}
}

// handle runs one command. open is false when the connection is done:
// its event ended in kong.response.exit, which Kong never answers.
// An error ends the connection without an answer, as in go-pdk: Kong's
// call then fails with the connection closed.
func (s *kongServer) handle(k *kongConn, call *kpp.RpcCall) (ret *kpp.RpcReturn, open bool, err error) {
	switch c := call.Call.(type) {
	case *kpp.RpcCall_CmdGetPluginNames, *kpp.RpcCall_CmdGetPluginInfo:
		// go-pdk answers neither (Kong reads the plugin's info from -dump).
		return nil, true, nil
	case *kpp.RpcCall_CmdStartInstance:
		inst, err := s.start(c.CmdStartInstance.Name, c.CmdStartInstance.Config)
		if err != nil {
			return nil, false, err
		}
		return status(call, inst, inst.name), true, nil
	case *kpp.RpcCall_CmdGetInstanceStatus:
		inst, err := s.instance(c.CmdGetInstanceStatus.InstanceId)
		if err != nil {
			return nil, false, err
		}
		return status(call, inst, "---"), true, nil
	case *kpp.RpcCall_CmdCloseInstance:
		inst, err := s.close(c.CmdCloseInstance.InstanceId)
		if err != nil {
			return nil, false, err
		}
		return status(call, inst, "---"), true, nil
	case *kpp.RpcCall_CmdHandleEvent:
		inst, err := s.instance(c.CmdHandleEvent.InstanceId)
		if err != nil {
			return nil, false, err
		}
		if c.CmdHandleEvent.EventName != "access" {
			return nil, false, fmt.Errorf("undefined method %s", c.CmdHandleEvent.EventName)
		}
		if !k.access(inst.config) {
			return nil, false, k.err
		}
		return &kpp.RpcReturn{Sequence: call.Sequence}, true, nil
	default:
		return nil, false, fmt.Errorf("RPC call has unexpected type %T", c)
	}
}

// status is go-pdk's answer to the instance commands.
func status(call *kpp.RpcCall, inst *instance, name string) *kpp.RpcReturn {
	return &kpp.RpcReturn{
		Sequence: call.Sequence,
		Return: &kpp.RpcReturn_InstanceStatus{InstanceStatus: &kpp.InstanceStatus{
			Name:       name,
			InstanceId: inst.id,
			StartedAt:  inst.started.Unix(),
		}},
	}
}

// start is cmd_start_instance: the config JSON Kong sends decoded into a
// new Config, as go-pdk decodes it into its constructor's value, under
// Kong's __seq__ as its id (a random one when Kong sends none).
func (s *kongServer) start(name string, config []byte) (*instance, error) {
	var meta struct {
		Seq int `json:"__seq__"`
	}
	if err := json.Unmarshal(config, &meta); err != nil {
		return nil, fmt.Errorf("decoding config metadata: %w", err)
	}
	cfg := New().(*Config)
	if err := json.Unmarshal(config, cfg); err != nil {
		return nil, fmt.Errorf("decoding config: %w", err)
	}
	inst := &instance{name: name, started: time.Now(), config: cfg}
	s.mu.Lock()
	defer s.mu.Unlock()
	inst.id = int32(meta.Seq)
	for inst.id == 0 {
		if id := rand.Int32(); s.instances[id] == nil {
			inst.id = id
		}
	}
	s.instances[inst.id] = inst
	return inst, nil
}

// instance returns the instance of id, or go-pdk's error for an unknown
// one, which Kong's handle_event looks for to start the instance again.
func (s *kongServer) instance(id int32) (*instance, error) {
	s.mu.RLock()
	inst := s.instances[id]
	s.mu.RUnlock()
	if inst == nil {
		return nil, fmt.Errorf("no plugin instance %d", id)
	}
	return inst, nil
}

// close is cmd_close_instance: the instance goes, and so does every one
// started before instanceTimeout, as in go-pdk.
func (s *kongServer) close(id int32) (*instance, error) {
	inst, err := s.instance(id)
	if err != nil {
		return nil, err
	}
	log.Printf("closed instance %d", inst.id)
	cutoff := time.Now().Add(-instanceTimeout)
	var expired []int32
	s.mu.Lock()
	delete(s.instances, id)
	for other, i := range s.instances {
		if i.started.Before(cutoff) {
			delete(s.instances, other)
			expired = append(expired, other)
		}
	}
	s.mu.Unlock()
	for _, other := range expired {
		log.Printf("closed instance %d", other)
	}
	return inst, nil
}

// kongConn is one connection from Kong. It is used by one goroutine at
// a time: Kong's side is strictly sequential.
type kongConn struct {
	c      net.Conn
	r      *bufio.Reader
	w      []byte // frames waiting to go out in one write
	frame  []byte // the buffer readFrame reads into, reused
	exited bool   // the event ended in kong.response.exit; the connection is closed
	err    error  // why a PDK call failed, if one did
}

// kongConnBuffer is the size of a connection's read buffer: Kong's
// answer to get_headers for a browser's request is a few hundred bytes.
const kongConnBuffer = 4096

// maxKeptFrame is the largest frame buffer a connection keeps for the
// next frame (a larger one, such as a big request body, is read into a
// buffer of its own).
const maxKeptFrame = 64 << 10

// kongConns keeps the buffers of connections that ended for the next
// ones: Kong opens a connection for every request that ends in
// kong.response.exit.
var kongConns = sync.Pool{New: func() any {
	return &kongConn{r: bufio.NewReaderSize(nil, kongConnBuffer)}
}}

func newKongConn(c net.Conn) *kongConn {
	k := kongConns.Get().(*kongConn)
	k.c = c
	k.r.Reset(c)
	return k
}

// release gives k's buffers back for another connection; k is not used
// again.
func (k *kongConn) release() {
	k.r.Reset(nil)
	w := k.w[:0]
	if cap(w) > maxKeptFrame {
		w = nil
	}
	*k = kongConn{r: k.r, w: w, frame: k.frame}
	kongConns.Put(k)
}

// readFrame reads one frame: a little-endian uint32 length, then the
// bytes. They are valid until the next readFrame.
func (k *kongConn) readFrame() ([]byte, error) {
	var n [4]byte
	if _, err := io.ReadFull(k.r, n[:]); err != nil {
		return nil, err
	}
	size := int(binary.LittleEndian.Uint32(n[:]))
	b := k.frame
	if size > cap(b) {
		b = make([]byte, size)
		if size <= maxKeptFrame {
			k.frame = b
		}
	}
	b = b[:size]
	if _, err := io.ReadFull(k.r, b); err != nil {
		if errors.Is(err, io.EOF) { // a frame cut short is no clean close
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return b, nil
}

// appendFrame appends one frame of data to b.
func appendFrame(b, data []byte) []byte {
	b = binary.LittleEndian.AppendUint32(b, uint32(len(data)))
	return append(b, data...)
}

// flush writes the waiting frames in one write.
func (k *kongConn) flush() error {
	_, err := k.c.Write(k.w)
	k.w = k.w[:0]
	return err
}

// access runs the access phase of cfg on k (cmd_handle_event) and reports
// whether the connection is still open, with the event's end — an empty
// method frame — waiting in k.w for the command's answer to join it. It
// is not after kong.response.exit.
func (k *kongConn) access(cfg *Config) (open bool) {
	cfg.serve(pdkKong{k})
	if k.exited {
		return false
	}
	k.w = appendFrame(k.w, nil)
	return true
}

// ask makes PDK calls: it writes them all in one write, then reads their
// answers in order, Kong's bridge loop answering each as it reads it.
func (k *kongConn) ask(calls ...pdkCall) error {
	for _, c := range calls {
		k.w = appendFrame(k.w, []byte(c.method))
		k.w = appendFrame(k.w, c.args)
	}
	failed := func(c pdkCall, err error) error {
		if k.err == nil { // the first failure is the one to log
			k.err = fmt.Errorf("PDK call %s: %w", c.method, err)
		}
		return err
	}
	if err := k.flush(); err != nil {
		return failed(calls[0], err)
	}
	for _, c := range calls {
		b, err := k.readFrame()
		if err == nil && c.out != nil {
			err = proto.Unmarshal(b, c.out)
		}
		if err != nil {
			return failed(c, err)
		}
	}
	return nil
}

// exit sends kong.response.exit and closes the connection, as go-pdk's
// Response.Exit does. Kong never answers it: in the access phase it
// stores the response and yields the plugin's coroutine
// (kong/pdk/response.lua), so its bridge loop reads nothing more of this
// call, the connection never goes back to Kong's keepalive pool, and
// Kong closes it when the request ends. go-pdk waits for that end (its
// read of the answer fails) and then closes; closing at once loses
// nothing — Kong has read the call's frames or will from its socket's
// buffer, and has nothing more to send — and frees the goroutine.
func (k *kongConn) exit(args []byte) {
	k.w = appendFrame(k.w, []byte("kong.response.exit"))
	k.w = appendFrame(k.w, args)
	_ = k.flush()
	k.c.Close()
	k.exited = true
}
