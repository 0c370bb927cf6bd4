package browser

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/bffgate/bffgate/core/bff"
	"github.com/bffgate/bffgate/internal/serve"
	"github.com/bffgate/bffgate/tests/browser/browsertest"
	"github.com/bffgate/bffgate/tests/flowtest"
	"github.com/bffgate/bffgate/tests/op"
)

// TestStreamsInChromium runs streams.mjs (issue #16 item 2): after a real
// login in headless Chromium, a WebSocket and an EventSource through
// bffgate serve work; a cross-site WebSocket hijacking attempt (a page of
// another origin of the same site, so Chromium sends the victim's
// SameSite=Lax cookie with it) is refused and never reaches the upstream;
// logout closes the open socket and the open event stream.
func TestStreamsInChromium(t *testing.T) {
	chromium := browsertest.Prerequisites(t)
	artifacts := browsertest.Artifacts(t)
	logs := &flowtest.SyncBuffer{}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	o := op.StartT(t, op.Options{RedirectURIs: []string{base + "/oauth/callback"}, Stderr: logs})
	up := &streamAPI{}
	upSrv := &http.Server{Handler: up}
	upLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go upSrv.Serve(upLn)
	t.Cleanup(func() { upSrv.Close() })

	static := t.TempDir()
	os.WriteFile(filepath.Join(static, "index.html"), []byte("<!doctype html><title>app</title><p id=app>app</p>"), 0o644)
	cfg := &serve.Config{
		BFF: bff.Config{Issuer: o.Issuer, ClientID: o.ClientID, ClientSecret: o.ClientSecret,
			RedirectURL: base + "/oauth/callback", CookieKeys: []string{randomKey(t)},
			Logger: slog.New(slog.NewTextHandler(logs, nil))},
		Routes:    []serve.Route{{Path: "/api/", Upstream: "http://" + upLn.Addr().String()}},
		StaticDir: static,
		Limits:    serve.Limits{SessionCheck: 3600}, // logout itself must close the streams
	}
	p, err := serve.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	hs := &handshakes{}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() {
		served <- serve.Serve(ctx, cfg, ln, &serve.Proxy{Handler: hs.wrap(p.Handler), Engine: p.Engine})
	}()
	t.Cleanup(func() { cancel(); <-served; p.Engine.Close() })

	// The attacker's page: another origin of the same site (127.0.0.1, another port).
	evilLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	evil := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "<!doctype html><title>evil</title>")
	})}
	go evil.Serve(evilLn)
	t.Cleanup(func() { evil.Close() })

	sctx, scancel := context.WithTimeout(context.Background(), 2*browsertest.ScriptTimeout)
	defer scancel()
	cmd := exec.CommandContext(sctx, "node", filepath.Join(op.RepoDir(), "tests", "browser", "streams.mjs"))
	cmd.Env = append(os.Environ(), "BFFGATE_URL="+base, "BFFGATE_EVIL_URL=http://"+evilLn.Addr().String(),
		"BFFGATE_ARTIFACTS="+artifacts, "BFFGATE_CHROMIUM="+chromium)
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 10 * time.Second
	var out flowtest.SyncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("streams.mjs failed: %v\n--- its output:\n%s--- the stack's logs:\n%s", err, out.String(), tail(logs.String(), 6000))
	}
	t.Logf("streams.mjs:\n%s", out.String())

	// What the BFF answered the browser's WebSocket handshakes.
	var evilSeen bool
	for _, h := range hs.list() {
		if h.origin == "http://"+evilLn.Addr().String() {
			evilSeen = true
			if !h.cookie || h.status != http.StatusForbidden {
				t.Errorf("the cross-site handshake: cookie sent %v, answered %d; want the victim's cookie and 403", h.cookie, h.status)
			}
		} else if h.status != http.StatusSwitchingProtocols {
			t.Errorf("a same-origin handshake (Origin %q) was answered %d", h.origin, h.status)
		}
	}
	if !evilSeen {
		t.Error("the BFF never saw the cross-site handshake")
	}
	if n := up.evil(); n != 0 {
		t.Errorf("%d cross-site handshakes reached the upstream", n)
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

func randomKey(t *testing.T) string {
	var b [32]byte
	if _, err := io.ReadFull(rand.Reader, b[:]); err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(b[:])
}

// handshakes records the WebSocket handshakes bffgate serve answered.
type handshakes struct {
	mu  sync.Mutex // guards all
	all []handshake
}

type handshake struct {
	origin string
	cookie bool
	status int
}

func (h *handshakes) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
			next.ServeHTTP(w, r)
			return
		}
		sw := &statusOf{ResponseWriter: w, status: http.StatusSwitchingProtocols}
		hs := handshake{origin: r.Header.Get("Origin"), cookie: strings.Contains(r.Header.Get("Cookie"), "__Host-bffgate=")}
		next.ServeHTTP(sw, r)
		hs.status = sw.status
		h.mu.Lock()
		h.all = append(h.all, hs)
		h.mu.Unlock()
	})
}

func (h *handshakes) list() []handshake {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]handshake(nil), h.all...)
}

// statusOf notes the status of an answer: the one it was made with, or
// the one written (a protocol switch is written on the hijacked
// connection, so a handshake's stays as made).
type statusOf struct {
	http.ResponseWriter
	status int
}

func (w *statusOf) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusOf) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// streamAPI is the upstream: /api/ws a WebSocket echo (RFC 6455, text
// frames of up to 125 bytes: enough for the test), /api/events an event
// stream that sends an event every 200 ms.
type streamAPI struct {
	mu        sync.Mutex // guards evilCount
	evilCount int
}

func (a *streamAPI) evil() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.evilCount
}

func (a *streamAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.URL.Path == "/api/ws" && strings.EqualFold(r.Header.Get("Upgrade"), "websocket"):
		a.countIfEvil(r)
		a.echo(w, r)
	case r.URL.Path == "/api/events":
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("Cache-Control", "no-store")
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for i := 0; ; i++ {
			fmt.Fprintf(w, "data: tick %d\n\n", i)
			w.(http.Flusher).Flush()
			select {
			case <-r.Context().Done():
				return
			case <-t.C:
			}
		}
	default:
		http.NotFound(w, r)
	}
}

// countIfEvil counts a handshake whose Origin is not the app's (the app's
// pages are on the BFF's origin, which X-Forwarded-Host names).
func (a *streamAPI) countIfEvil(r *http.Request) {
	if r.Header.Get("Origin") == "http://"+r.Header.Get("X-Forwarded-Host") {
		return
	}
	a.mu.Lock()
	a.evilCount++
	a.mu.Unlock()
}

func (a *streamAPI) echo(w http.ResponseWriter, r *http.Request) {
	sum := sha1.Sum([]byte(r.Header.Get("Sec-WebSocket-Key") + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return
	}
	defer conn.Close()
	fmt.Fprintf(brw, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n",
		base64.StdEncoding.EncodeToString(sum[:]))
	if brw.Flush() != nil {
		return
	}
	for {
		op, payload, err := readFrame(brw.Reader)
		if err != nil || op == 8 { // close
			return
		}
		if op == 1 && len(payload) <= 125 { // text: echo it
			brw.Write(append([]byte{0x81, byte(len(payload))}, payload...))
			if brw.Flush() != nil {
				return
			}
		}
	}
}

// readFrame reads one masked client frame of at most 64 KiB.
func readFrame(r *bufio.Reader) (op byte, payload []byte, err error) {
	var h [2]byte
	if _, err = io.ReadFull(r, h[:]); err != nil {
		return 0, nil, err
	}
	n := uint64(h[1] & 0x7f)
	switch n {
	case 126:
		var b [2]byte
		_, err = io.ReadFull(r, b[:])
		n = uint64(binary.BigEndian.Uint16(b[:]))
	case 127:
		var b [8]byte
		_, err = io.ReadFull(r, b[:])
		n = binary.BigEndian.Uint64(b[:])
	}
	if err != nil || n > 64<<10 || h[1]&0x80 == 0 {
		return 0, nil, fmt.Errorf("bad frame")
	}
	var mask [4]byte
	if _, err = io.ReadFull(r, mask[:]); err != nil {
		return 0, nil, err
	}
	payload = make([]byte, n)
	if _, err = io.ReadFull(r, payload); err != nil {
		return 0, nil, err
	}
	for i := range payload {
		payload[i] ^= mask[i%4]
	}
	return h[0] & 0x0f, payload, nil
}
