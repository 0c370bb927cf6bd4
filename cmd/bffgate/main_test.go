package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bffgate/bffgate/internal/version"
)

// The example in docs/config.md (kept as examples/bffgate.json) must be a
// valid config.
func TestExampleConfig(t *testing.T) {
	t.Setenv("BFF_CLIENT_SECRET", "s3cret")
	t.Setenv("BFF_COOKIE_KEY", "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=")
	dir := t.TempDir()
	os.Mkdir(filepath.Join(dir, "dist"), 0o755)
	data, err := os.ReadFile("../../examples/bffgate.json")
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "bffgate.json")
	os.WriteFile(file, data, 0o644)
	if err := run([]string{"-config", file}, false); err != nil {
		t.Fatalf("bffgate check on the documented example: %v", err)
	}
	doc, _ := os.ReadFile("../../docs/config.md")
	if !strings.Contains(string(doc), string(data)) {
		t.Fatal("examples/bffgate.json and the example in docs/config.md differ")
	}
}

func TestCheckNamesTheField(t *testing.T) {
	t.Setenv("BFF_CLIENT_SECRET", "")
	file := filepath.Join(t.TempDir(), "c.json")
	data, _ := os.ReadFile("../../examples/bffgate.json")
	os.WriteFile(file, data, 0o644)
	err := run([]string{"-config", file}, false)
	if err == nil || !strings.Contains(err.Error(), "client_secret") || !strings.Contains(err.Error(), "BFF_CLIENT_SECRET") {
		t.Fatalf("check with the secret's variable unset: %v, want an error naming client_secret and the variable", err)
	}
	if err := run(nil, false); err == nil {
		t.Fatal("check without -config succeeded")
	}
}

func TestVersion(t *testing.T) {
	if got, want := versionLine(), "bffgate "+version.Version; got != want {
		t.Fatalf("bffgate version prints %q, want %q", got, want)
	}
	if err := version.Check(strings.TrimPrefix(versionLine(), "bffgate ")); err != nil {
		t.Fatal(err)
	}
}

// The FAPI 2.0 example in docs/config.md (examples/bffgate-fapi2.json)
// must be a valid config too.
func TestExampleFAPI2Config(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKCS8PrivateKey(key)
	t.Setenv("BFF_CLIENT_KEY", string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})))
	t.Setenv("BFF_COOKIE_KEY", "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=")
	dir := t.TempDir()
	os.Mkdir(filepath.Join(dir, "dist"), 0o755)
	data, err := os.ReadFile("../../examples/bffgate-fapi2.json")
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "bffgate.json")
	os.WriteFile(file, data, 0o644)
	if err := run([]string{"-config", file}, false); err != nil {
		t.Fatalf("bffgate check on the FAPI 2.0 example: %v", err)
	}
	doc, _ := os.ReadFile("../../docs/config.md")
	if !strings.Contains(string(doc), string(data)) {
		t.Fatal("examples/bffgate-fapi2.json and the example in docs/config.md differ")
	}
}
