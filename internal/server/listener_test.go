package server

import (
	"crypto/x509"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/dpe-engine/dpe/internal/testpki"
)

// servedCN is the common name of the certificate r serves now.
func servedCN(t *testing.T, r *certReloader) string {
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

// TestCertReload: a renewed certificate is served without a restart; a
// half-written one (bad PEM) keeps the old one in service.
func TestCertReload(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem")
	t0 := time.Now().Add(-time.Hour).Truncate(time.Second)
	testpki.SelfSigned(t, certFile, keyFile, "first", t0)
	r, err := newCertReloader(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	if got := servedCN(t, r); got != "first" {
		t.Fatalf("serving %q, want first", got)
	}
	testpki.SelfSigned(t, certFile, keyFile, "second", t0.Add(time.Minute))
	if got := servedCN(t, r); got != "second" {
		t.Fatalf("after renewal serving %q, want second", got)
	}
	if err := os.WriteFile(certFile, []byte("-----BEGIN CERT"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(certFile, t0.Add(2*time.Minute), t0.Add(2*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if got := servedCN(t, r); got != "second" {
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
	testpki.SelfSigned(t, certFile, keyFile, "first", t0)
	r, err := newCertReloader(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	testpki.SelfSigned(t, certFile, keyFile, "second", t0) // same times
	if got := servedCN(t, r); got != "first" {
		t.Fatalf("before the reload serving %q, want first (times unchanged)", got)
	}
	if err := r.reload(); err != nil {
		t.Fatal(err)
	}
	if got := servedCN(t, r); got != "second" {
		t.Fatalf("after the reload serving %q, want second", got)
	}
	if err := os.WriteFile(keyFile, []byte("-----BEGIN KEY"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := r.reload(); err == nil {
		t.Fatal("reload of a broken key succeeded")
	}
	if got := servedCN(t, r); got != "second" {
		t.Fatalf("after a failed reload serving %q, want second kept", got)
	}
}
