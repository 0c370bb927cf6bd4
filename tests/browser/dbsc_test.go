package browser

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bffgate/bffgate/core/bff"
	"github.com/bffgate/bffgate/internal/serve"
	"github.com/bffgate/bffgate/tests/browser/browsertest"
	"github.com/bffgate/bffgate/tests/flowtest"
	"github.com/bffgate/bffgate/tests/op"
)

// dbscChromium is the Chromium major version this test was checked with
// (Debian's 156.0.8078.114): its DeviceBoundSessions feature with
// software keys (no TPM here). Older versions may lack the features the
// flags name; the test skips on them.
const dbscChromium = 156

// TestDBSC runs Device Bound Session Credentials end to end in headless
// Chromium (dbsc.mjs) against bffgate serve's handler over HTTPS (a
// certificate made for this run, trusted by Chromium through
// --ignore-certificate-errors-spki-list; Chromium speaks DBSC only over
// error-free HTTPS): Chromium registers its key at login, gets the bound
// cookie, and after it expires refreshes it by itself (a 403 challenge,
// then a proof signed with the registered key) before its next request
// goes out. A copy of every cookie of the session, in another browser
// profile and in a plain HTTP client here, is refused once its bound
// cookie has expired. The key is a software key: this proves the
// protocol, not that the key lives in hardware.
func TestDBSC(t *testing.T) {
	chromium := browsertest.Prerequisites(t)
	major := chromiumMajor(t, chromium)
	if major < dbscChromium {
		t.Skipf("Chromium %d: this test relies on Chromium %d's DeviceBoundSessions and EnableBoundSessionCredentialsSoftwareKeysForManualTesting features; upgrade Chromium to run it", major, dbscChromium)
	}

	cert, spki := selfSigned(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	site := "https://localhost:" + strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	logs := &flowtest.SyncBuffer{}
	p := op.StartT(t, op.Options{RedirectURIs: []string{site + "/oauth/callback"}, Stderr: logs})

	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.Header.Get("Authorization"), "Bearer ") || strings.Contains(r.Header.Get("Cookie"), "bffgate") {
			http.Error(w, "no bearer, or a BFF cookie reached the API", http.StatusTeapot)
			return
		}
		_, _ = io.WriteString(w, `{"ok":true}`)
	}))
	t.Cleanup(api.Close)
	static := t.TempDir()
	if err := os.WriteFile(filepath.Join(static, "index.html"), []byte(`<!doctype html><p id="home">home</p>`), 0o644); err != nil {
		t.Fatal(err)
	}
	const ttl = 5
	proxy, err := serve.New(&serve.Config{
		BFF: bff.Config{
			Issuer: p.Issuer, ClientID: p.ClientID, ClientSecret: p.ClientSecret,
			RedirectURL: site + "/oauth/callback",
			CookieKeys:  []string{base64.StdEncoding.EncodeToString(make([]byte, 32))},
			DBSC:        bff.DBSC{Enabled: true, BoundCookieTTL: ttl},
			Logger:      slog.New(slog.NewTextHandler(logs, nil)),
		},
		Routes:    []serve.Route{{Path: "/api/", Upstream: api.URL}},
		StaticDir: static,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { proxy.Engine.Close() })
	seen := &answers{}
	srv := &http.Server{Handler: seen.wrap(proxy.Handler), ReadHeaderTimeout: 5 * time.Second,
		TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}}}
	go func() { _ = srv.ServeTLS(ln, "", "") }()
	t.Cleanup(func() { srv.Close() })

	jarFile := filepath.Join(t.TempDir(), "jar.json")
	cmd := exec.Command("node", filepath.Join(op.RepoDir(), "tests", "browser", "dbsc.mjs"))
	cmd.Env = append(os.Environ(), "BFFGATE_URL="+site, "BFFGATE_SPKI="+spki, "BFFGATE_TTL="+strconv.Itoa(ttl),
		"BFFGATE_PROFILE="+t.TempDir(), "BFFGATE_JAR="+jarFile, "BFFGATE_OP="+p.Issuer, "BFFGATE_CHROMIUM="+chromium)
	cmd.WaitDelay = 10 * time.Second
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if errors.As(err, &exit) && exit.ExitCode() == 3 {
		t.Fatalf("Chromium %d did not register a DBSC session (the flags changed?):\n%s\nBFF answers: %v\nlogs:\n%s", major, out, seen.list(), logs)
	}
	if err != nil {
		t.Fatalf("dbsc.mjs: %v\n%s\nBFF answers: %v\nlogs:\n%s", err, out, seen.list(), logs)
	}
	t.Logf("dbsc.mjs:\n%s\nBFF answers: %v", out, seen.list())

	// Chromium spoke the protocol: one registration, and a refresh made
	// of a 403 challenge and a signed retry.
	for _, want := range []string{"POST /dbsc/register 200", "POST /dbsc/refresh 403", "POST /dbsc/refresh 200"} {
		if seen.count(want) == 0 {
			t.Errorf("the BFF never answered %q; it answered %v", want, seen.list())
		}
	}
	if n := seen.count("POST /dbsc/register 200"); n != 1 {
		t.Errorf("%d registrations, want 1", n)
	}
	// Every refresh is a challenge and a signed retry (the last may have
	// been cut short by the browser closing).
	var dbsc []string
	for _, a := range seen.list() {
		if strings.HasPrefix(a, "POST /dbsc/refresh ") {
			dbsc = append(dbsc, a)
		}
	}
	for i, a := range dbsc {
		if want := [2]string{"POST /dbsc/refresh 403", "POST /dbsc/refresh 200"}[i%2]; a != want {
			t.Fatalf("refreshes %v, want 403 then 200 each time", dbsc)
		}
	}

	// The copied jar from a plain HTTP client: refused.
	data, err := os.ReadFile(jarFile)
	if err != nil {
		t.Fatal(err)
	}
	var jar []struct{ Name, Value string }
	if err := json.Unmarshal(data, &jar); err != nil {
		t.Fatal(err)
	}
	var pairs []string
	names := map[string]bool{}
	for _, c := range jar {
		pairs = append(pairs, c.Name+"="+c.Value)
		names[c.Name] = true
	}
	if !names["__Host-bffgate"] || !names["__Host-bffgate-bound"] {
		t.Fatalf("the copied jar lacks the session or the bound cookie: %v", names)
	}
	roots := x509.NewCertPool()
	roots.AddCert(cert.Leaf)
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}
	for _, path := range []string{"/api/x", "/session"} {
		req, _ := http.NewRequest("GET", site+path, nil)
		req.Header.Set("X-CSRF", "1")
		req.Header.Set("Cookie", strings.Join(pairs, "; "))
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(string(body), `"dbsc_refresh_required"`) {
			t.Errorf("%s from the copied jar over plain HTTP: %d %s, want 401 dbsc_refresh_required", path, resp.StatusCode, body)
		}
	}
}

// chromiumMajor runs chromium --version.
func chromiumMajor(t *testing.T, chromium string) int {
	out, err := exec.Command(chromium, "--version").Output()
	m := regexp.MustCompile(`Chromium (\d+)\.`).FindSubmatch(out)
	if err != nil || m == nil {
		t.Fatalf("%s --version: %v %q", chromium, err, out)
	}
	n, _ := strconv.Atoi(string(m[1]))
	return n
}

// selfSigned makes a throwaway certificate for localhost and 127.0.0.1,
// and the base64 SHA-256 of its public key for Chromium's
// --ignore-certificate-errors-spki-list.
func selfSigned(t *testing.T) (tls.Certificate, string) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "localhost"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(leaf.RawSubjectPublicKeyInfo)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, base64.StdEncoding.EncodeToString(sum[:])
}

// answers records "METHOD /path status" of every answer.
type answers struct {
	mu  sync.Mutex // guards all
	all []string
}

func (a *answers) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw := &statusOf{ResponseWriter: w, status: http.StatusOK}
		h.ServeHTTP(sw, r)
		a.mu.Lock()
		a.all = append(a.all, fmt.Sprintf("%s %s %d", r.Method, r.URL.Path, sw.status))
		a.mu.Unlock()
	})
}

func (a *answers) count(s string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	n := 0
	for _, v := range a.all {
		if v == s {
			n++
		}
	}
	return n
}

func (a *answers) list() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]string(nil), a.all...)
}
