package main

import (
	"crypto/tls"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/dpe-engine/dpe/internal/eventually"
	"github.com/dpe-engine/dpe/internal/testpki"
)

// TestServerReloadsCertificateOnSIGHUP runs `dpe server` with a
// certificate, replaces it with a renewal that keeps the old file times
// (as cp -p or tar do: the server cannot see the change), and checks that
// the server presents the renewal after SIGHUP, still serving.
func TestServerReloadsCertificateOnSIGHUP(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	mtime := time.Now().Add(-time.Hour).Truncate(time.Second)
	testpki.SelfSigned(t, certFile, keyFile, "first", mtime)
	addr := freeAddr(t)
	srv := startDPE(t, "server", dir, "server", "--db", "sqlite:"+filepath.Join(dir, "dpe.db"), "--listen", addr,
		"--tls-cert", certFile, "--tls-key", keyFile)
	served := func() (string, error) {
		conn, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true}) // only the name is read
		if err != nil {
			return "", err
		}
		defer conn.Close()
		return conn.ConnectionState().PeerCertificates[0].Subject.CommonName, nil
	}
	eventually.Value(t, 60*time.Second, served, func(cn string) bool { return cn == "first" }, "the server presents its certificate")

	testpki.SelfSigned(t, certFile, keyFile, "second", mtime)
	if cn, err := served(); err != nil || cn != "first" {
		t.Fatalf("before SIGHUP the server presents %q (%v), want first: the file times did not change", cn, err)
	}
	if err := srv.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	eventually.Value(t, 10*time.Second, served, func(cn string) bool { return cn == "second" }, "the renewal presented after SIGHUP")
	select {
	case <-srv.done:
		t.Fatalf("the server exited on SIGHUP: %v", srv.err)
	default:
	}
}
