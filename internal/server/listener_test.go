package server

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// writeSelfSigned writes a fresh self-signed certificate named cn and its
// key to certFile and keyFile, stamped with mtime.
func writeSelfSigned(t *testing.T, certFile, keyFile, cn string, mtime time.Time) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []struct {
		path, typ string
		der       []byte
	}{{certFile, "CERTIFICATE", der}, {keyFile, "EC PRIVATE KEY", kder}} {
		if err := os.WriteFile(f.path, pem.EncodeToMemory(&pem.Block{Type: f.typ, Bytes: f.der}), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(f.path, mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
}

// TestCertReload: a renewed certificate is served without a restart; a
// half-written one (bad PEM) keeps the old one in service.
func TestCertReload(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem")
	t0 := time.Now().Add(-time.Hour).Truncate(time.Second)
	writeSelfSigned(t, certFile, keyFile, "first", t0)
	r, err := newCertReloader(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	cn := func() string {
		t.Helper()
		c, err := r.get()
		if err != nil {
			t.Fatal(err)
		}
		leaf, err := x509.ParseCertificate(c.Certificate[0])
		if err != nil {
			t.Fatal(err)
		}
		return leaf.Subject.CommonName
	}
	if got := cn(); got != "first" {
		t.Fatalf("serving %q, want first", got)
	}
	writeSelfSigned(t, certFile, keyFile, "second", t0.Add(time.Minute))
	if got := cn(); got != "second" {
		t.Fatalf("after renewal serving %q, want second", got)
	}
	if err := os.WriteFile(certFile, []byte("-----BEGIN CERT"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(certFile, t0.Add(2*time.Minute), t0.Add(2*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if got := cn(); got != "second" {
		t.Fatalf("with a broken file serving %q, want second kept", got)
	}
	if _, _, err := tlsConfig(certFile, "", ""); err == nil {
		t.Fatal("a certificate without a key was accepted")
	}
}

// TestCertReloadOnSignal: a renewal copied with its old modification times
// kept (cp -p, tar, some configuration tools) is not noticed by the file
// times; a reload (SIGHUP) reads it anyway, and a reload of a broken pair
// fails and keeps the one in service.
func TestCertReloadOnSignal(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem")
	t0 := time.Now().Add(-time.Hour).Truncate(time.Second)
	writeSelfSigned(t, certFile, keyFile, "first", t0)
	r, err := newCertReloader(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	cn := func() string {
		t.Helper()
		c, err := r.get()
		if err != nil {
			t.Fatal(err)
		}
		leaf, err := x509.ParseCertificate(c.Certificate[0])
		if err != nil {
			t.Fatal(err)
		}
		return leaf.Subject.CommonName
	}
	writeSelfSigned(t, certFile, keyFile, "second", t0) // same times
	if got := cn(); got != "first" {
		t.Fatalf("before the reload serving %q, want first (times unchanged)", got)
	}
	if err := r.reload(); err != nil {
		t.Fatal(err)
	}
	if got := cn(); got != "second" {
		t.Fatalf("after the reload serving %q, want second", got)
	}
	if err := os.WriteFile(keyFile, []byte("-----BEGIN KEY"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := r.reload(); err == nil {
		t.Fatal("reload of a broken key succeeded")
	}
	if got := cn(); got != "second" {
		t.Fatalf("after a failed reload serving %q, want second kept", got)
	}
}
