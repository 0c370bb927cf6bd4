package serve

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bffgate/bffgate/tests/flowtest"
)

// selfSigned writes a new self-signed certificate for 127.0.0.1, named cn,
// to certFile and keyFile, and returns it.
func selfSigned(t *testing.T, cn, certFile, keyFile string) *x509.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	// A renewal is a later modification; make it one even on a file
	// system with coarse times.
	later := time.Now().Add(time.Duration(serial.Int64()%1000+1) * time.Second)
	os.Chtimes(certFile, later, later)
	c, _ := x509.ParseCertificate(der)
	return c
}

// TestTLS: the listener serves HTTPS with the configured certificate, the
// upstream learns the scheme, a renewed certificate is served from the
// next handshake on, and a renewal that does not load keeps the previous
// certificate (logged).
func TestTLS(t *testing.T) {
	var proto string
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		proto = r.Header.Get("X-Forwarded-Proto")
		io.WriteString(w, "up")
	}))
	defer up.Close()
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	first := selfSigned(t, "first", certFile, keyFile)
	var logs flowtest.SyncBuffer
	c := testConfig(t, up.URL)
	c.BFF.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	c.TLS = &TLS{CertFile: certFile, KeyFile: keyFile}
	addr := startServe(t, c)

	get := func(trust *x509.Certificate) (string, error) {
		pool := x509.NewCertPool()
		pool.AddCert(trust)
		cl := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, DisableKeepAlives: true}}
		resp, err := cl.Get("https://" + addr + "/direct/x")
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.TLS.PeerCertificates[0].Subject.CommonName + " " + string(b), nil
	}
	if got, err := get(first); err != nil || got != "first up" || proto != "https" {
		t.Fatalf("over TLS: %q, %v, X-Forwarded-Proto %q; want first up, https", got, err, proto)
	}
	if resp, err := http.Get("http://" + addr + "/direct/x"); err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("plain HTTP to the TLS listener: %d, want 400", resp.StatusCode)
		}
	}

	second := selfSigned(t, "second", certFile, keyFile)
	if got, err := get(second); err != nil || got != "second up" {
		t.Fatalf("after renewal: %q, %v; want the second certificate", got, err)
	}
	if _, err := get(first); err == nil {
		t.Fatal("the first certificate is still served after the renewal")
	}

	os.WriteFile(certFile, []byte("not a certificate"), 0o644)
	later := time.Now().Add(time.Hour)
	os.Chtimes(certFile, later, later)
	for range 2 {
		if got, err := get(second); err != nil || got != "second up" {
			t.Fatalf("after a broken renewal: %q, %v; want the previous certificate", got, err)
		}
	}
	if n := strings.Count(logs.String(), "do not load"); n != 1 {
		t.Fatalf("the broken renewal logged %d times, want once:\n%s", n, logs.String())
	}
}

func TestTLSConfigErrors(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	selfSigned(t, "x", certFile, keyFile)
	other := filepath.Join(dir, "other.pem")
	selfSigned(t, "y", filepath.Join(dir, "othercert.pem"), other)
	for _, tt := range []struct {
		tls  TLS
		want string
	}{
		{TLS{CertFile: certFile}, "tls: set both cert_file and key_file"},
		{TLS{CertFile: filepath.Join(dir, "missing.pem"), KeyFile: keyFile}, "missing.pem"},
		{TLS{CertFile: certFile, KeyFile: other}, "private key does not match"},
	} {
		c := testConfig(t, "http://127.0.0.1:1")
		c.TLS = &tt.tls
		if _, err := New(c); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("tls %+v: %v, want %q", tt.tls, err, tt.want)
		}
	}
}

// TestTrustedProxies: X-Forwarded-For and -Proto are believed only from a
// trusted peer, for the access log's client and what goes upstream.
func TestTrustedProxies(t *testing.T) {
	var xff, xfp string
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		xff, xfp = r.Header.Get("X-Forwarded-For"), r.Header.Get("X-Forwarded-Proto")
	}))
	defer up.Close()
	for _, tt := range []struct {
		name                     string
		trusted                  []string
		wantClient, wantXFF, xfp string
	}{
		{"untrusted peer", nil, "127.0.0.1", "127.0.0.1", "http"},
		{"other proxies trusted", []string{"10.0.0.0/8"}, "127.0.0.1", "127.0.0.1", "http"},
		{"trusted peer and hop", []string{"127.0.0.0/8", "10.0.0.0/8"}, "203.0.113.9", "198.51.100.1, 203.0.113.9, 10.0.0.5, 127.0.0.1", "https"},
		{"trusted peer only", []string{"127.0.0.1"}, "10.0.0.5", "198.51.100.1, 203.0.113.9, 10.0.0.5, 127.0.0.1", "https"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var logs flowtest.SyncBuffer
			c := testConfig(t, up.URL)
			c.BFF.Logger = slog.New(slog.NewTextHandler(&logs, nil))
			c.TrustedProxies = tt.trusted
			p, err := New(c)
			if err != nil {
				t.Fatal(err)
			}
			srv := httptest.NewServer(p.Handler)
			defer srv.Close()
			req, _ := http.NewRequest("GET", srv.URL+"/direct/x", nil)
			req.Header.Set("X-Forwarded-For", "198.51.100.1, 203.0.113.9")
			req.Header.Add("X-Forwarded-For", "10.0.0.5")
			req.Header.Set("X-Forwarded-Proto", "https")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			// The access line may come just after the answer.
			for i := 0; i < 200 && !strings.Contains(logs.String(), "bffgate: request"); i++ {
				time.Sleep(10 * time.Millisecond)
			}
			if xff != tt.wantXFF || xfp != tt.xfp || !strings.Contains(logs.String(), "client="+tt.wantClient+"\n") {
				t.Fatalf("upstream got X-Forwarded-For %q, -Proto %q; want %q, %q; log %s", xff, xfp, tt.wantXFF, tt.xfp, logs.String())
			}
		})
	}
	c := testConfig(t, up.URL)
	c.TrustedProxies = []string{"10.0.0.0/33"}
	if _, err := New(c); err == nil || !strings.Contains(err.Error(), "trusted_proxies[0]") {
		t.Fatalf("a bad prefix: %v", err)
	}
}

func TestForwardedFor(t *testing.T) {
	tr, _ := parseTrusted([]string{"10.0.0.0/8", "::1"})
	for _, tt := range []struct {
		values []string
		want   string
	}{
		{nil, "10.1.1.1"},
		{[]string{"203.0.113.9"}, "203.0.113.9"},
		{[]string{"203.0.113.9, 10.0.0.2"}, "203.0.113.9"},
		{[]string{"10.0.0.3, 10.0.0.2"}, "10.0.0.3"}, // all trusted: the leftmost
		{[]string{"evil, 10.0.0.2"}, "10.0.0.2"},     // garbage stops the walk
		{[]string{"203.0.113.9, ::ffff:198.51.100.1"}, "198.51.100.1"},
		{[]string{"2001:db8::1, ::1"}, "2001:db8::1"},
	} {
		if got := forwardedFor(tt.values, tr, "10.1.1.1"); got != tt.want {
			t.Errorf("forwardedFor(%q) = %q, want %q", tt.values, got, tt.want)
		}
	}
}
