package op

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"
)

// ClientCertDNSName is the DNS name (subjectAltName) of the client
// certificate an MTLS OP registers for tls_client_auth.
const ClientCertDNSName = "bffgate.client.test"

// TLSFiles are the PEM files of an MTLS OP, made for one run in a
// temporary directory that Close removes: a CA, the OP's server
// certificate for 127.0.0.1, and two client certificates from the CA.
type TLSFiles struct {
	// CAFile is the CA's certificate; CA holds it for a tls.Config.
	CAFile string
	CA     *x509.CertPool
	// ClientCert and ClientKey are the registered client's certificate and
	// key (DNS name ClientCertDNSName).
	ClientCert, ClientKey string
	// OtherCert and OtherKey are a certificate and key from the same CA
	// for another name: a client the OP does not know.
	OtherCert, OtherKey string

	dir                   string
	serverCert, serverKey string
}

// newTLSFiles makes the CA and the certificates.
func newTLSFiles() (*TLSFiles, error) {
	dir, err := os.MkdirTemp("", "bffgate-op-tls-")
	if err != nil {
		return nil, fmt.Errorf("op: tls: %w", err)
	}
	f := &TLSFiles{dir: dir, CA: x509.NewCertPool()}
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	ca := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "bffgate test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, fmt.Errorf("op: tls: %w", err)
	}
	if ca, err = x509.ParseCertificate(caDER); err != nil {
		return nil, err
	}
	f.CA.AddCert(ca)
	if f.CAFile, err = writePEM(dir, "ca.pem", "CERTIFICATE", caDER); err != nil {
		return nil, err
	}
	leaf := func(name string, serial int64, tmpl x509.Certificate) (certFile, keyFile string, err error) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return "", "", err
		}
		tmpl.SerialNumber, tmpl.NotBefore, tmpl.NotAfter = big.NewInt(serial), now.Add(-time.Hour), now.Add(24*time.Hour)
		tmpl.KeyUsage = x509.KeyUsageDigitalSignature
		der, err := x509.CreateCertificate(rand.Reader, &tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			return "", "", err
		}
		keyDER, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			return "", "", err
		}
		if certFile, err = writePEM(dir, name+".pem", "CERTIFICATE", der); err != nil {
			return "", "", err
		}
		keyFile, err = writePEM(dir, name+"-key.pem", "PRIVATE KEY", keyDER)
		return certFile, keyFile, err
	}
	if f.serverCert, f.serverKey, err = leaf("server", 2, x509.Certificate{
		Subject: pkix.Name{CommonName: "127.0.0.1"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}); err != nil {
		return nil, fmt.Errorf("op: tls: %w", err)
	}
	if f.ClientCert, f.ClientKey, err = leaf("client", 3, x509.Certificate{
		Subject: pkix.Name{CommonName: ClientCertDNSName}, DNSNames: []string{ClientCertDNSName},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}); err != nil {
		return nil, fmt.Errorf("op: tls: %w", err)
	}
	if f.OtherCert, f.OtherKey, err = leaf("other", 4, x509.Certificate{
		Subject: pkix.Name{CommonName: "other.client.test"}, DNSNames: []string{"other.client.test"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}); err != nil {
		return nil, fmt.Errorf("op: tls: %w", err)
	}
	return f, nil
}

func writePEM(dir, name, typ string, der []byte) (string, error) {
	file := filepath.Join(dir, name)
	return file, os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600)
}

// client is an HTTP client that trusts the CA, for the OP's own calls;
// without TLS, the default client.
func (f *TLSFiles) client() *http.Client {
	if f == nil {
		return http.DefaultClient
	}
	return &http.Client{Transport: f.Transport()}
}

// Transport is an HTTP transport that trusts the CA and presents no
// client certificate.
func (f *TLSFiles) Transport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.TLSClientConfig = &tls.Config{RootCAs: f.CA, MinVersion: tls.VersionTLS12}
	return t
}

func (f *TLSFiles) remove() {
	if f != nil {
		_ = os.RemoveAll(f.dir)
	}
}
