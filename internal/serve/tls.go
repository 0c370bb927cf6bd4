package serve

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"
)

// TLS is the listener's certificate, for serving HTTPS without a proxy in
// front (so Secure cookies reach the browser). Both files are PEM; the
// certificate file may hold the chain after the leaf. They are read again
// when either file changes (a renewal by certbot or cert-manager), at the
// first handshake after the change; a pair that does not load then is
// logged and the previous one stays in use.
type TLS struct {
	// CertFile is the certificate (chain) file. A relative path is
	// relative to the config file. Required with tls.
	CertFile string `json:"cert_file"`
	// KeyFile is the private key file. A relative path is relative to
	// the config file. Required with tls.
	KeyFile string `json:"key_file"`
}

// certFile serves a certificate pair, reloaded when a file's modification
// time or size changes.
type certFile struct {
	certFile, keyFile string
	log               *slog.Logger

	mu    sync.Mutex // guards the fields below
	cert  *tls.Certificate
	stamp [2]fileStamp // of the files cert was read from
	bad   [2]fileStamp // of the files that last failed to load, logged
}

type fileStamp struct {
	mod  time.Time
	size int64
}

func stampOf(name string) (fileStamp, error) {
	st, err := os.Stat(name)
	if err != nil {
		return fileStamp{}, err
	}
	return fileStamp{st.ModTime(), st.Size()}, nil
}

// newCertFile loads the pair once, so that a bad one is a config error.
func newCertFile(c *TLS, log *slog.Logger) (*certFile, error) {
	if c.CertFile == "" || c.KeyFile == "" {
		return nil, fmt.Errorf("bffgate serve: config: tls: set both cert_file and key_file")
	}
	f := &certFile{certFile: c.CertFile, keyFile: c.KeyFile, log: log}
	if _, err := f.load(); err != nil {
		return nil, fmt.Errorf("bffgate serve: config: tls: %w", err)
	}
	return f, nil
}

// load reads the pair if it changed since the last load. It returns the
// files' stamps; f.mu is held, or f is not shared yet.
func (f *certFile) load() ([2]fileStamp, error) {
	var st [2]fileStamp
	var err error
	for i, name := range []string{f.certFile, f.keyFile} {
		if st[i], err = stampOf(name); err != nil {
			return st, err
		}
	}
	if f.cert != nil && st == f.stamp {
		return st, nil
	}
	cert, err := tls.LoadX509KeyPair(f.certFile, f.keyFile)
	if err != nil {
		return st, err
	}
	f.cert, f.stamp = &cert, st
	return st, nil
}

// get is tls.Config.GetCertificate.
func (f *certFile) get(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if st, err := f.load(); err != nil && st != f.bad {
		// A renewal half written, or a wrong pair: keep serving the last
		// good one, and say so once per change of the files.
		f.bad = st
		f.log.Error("bffgate: tls: the certificate files changed but do not load; serving the previous certificate", "error", err)
	}
	return f.cert, nil
}

// config is the listener's tls.Config.
func (f *certFile) config() *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: f.get}
}
