package server_test

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/dpe-engine/dpe/internal/client"
	"github.com/dpe-engine/dpe/internal/eventually"
	"github.com/dpe-engine/dpe/internal/model"
	"github.com/dpe-engine/dpe/internal/server"
	"github.com/dpe-engine/dpe/internal/wire"
)

// dial opens a raw connection to the server, closed when the test ends.
func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// closedWithin reports whether the server closes c (a read ends with EOF
// or a reset, having read anything it sent first) within d.
func closedWithin(c net.Conn, d time.Duration) error {
	_ = c.SetReadDeadline(time.Now().Add(d))
	_, err := io.Copy(io.Discard, c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return fmt.Errorf("still open after %v", d)
	}
	return nil
}

// TestAnonymousSlowBody (finding 6): with auth on, a POST without a token
// announcing a body it never sends is answered 401 at once, and the
// connection closed, long before the read timeout.
func TestAnonymousSlowBody(t *testing.T) {
	srv, _ := runServer(t, server.Config{Token: "s3cret", ReadTimeout: 30 * time.Second})
	c := dial(t, srv.Addr())
	start := time.Now()
	fmt.Fprintf(c, "POST /v1/jobs HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{", srv.Addr())
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("no answer: %v", err)
	}
	resp.Body.Close()
	took := time.Since(start)
	if resp.StatusCode != 401 || took > 5*time.Second {
		t.Fatalf("status %d after %v, want 401 well before the 30s read timeout", resp.StatusCode, took)
	}
	if err := closedWithin(c, 5*time.Second); err != nil {
		t.Fatalf("connection after 401: %v", err)
	}
	t.Logf("anonymous slow-body POST: 401 after %v, connection closed after %v (read timeout 30s)", took, time.Since(start))
}

// TestSlowConnectionsClosed (finding 6): 50 connections that trickle
// headers or a body (with a valid token) are all closed by the server
// within its read timeout.
func TestSlowConnectionsClosed(t *testing.T) {
	const readTimeout = time.Second
	srv, _ := runServer(t, server.Config{Token: "s3cret", ReadHeaderTimeout: readTimeout / 2, ReadTimeout: readTimeout})
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, 50)
	for i := range 50 {
		c := dial(t, srv.Addr())
		if i%2 == 0 {
			fmt.Fprintf(c, "POST /v1/jobs HTTP/1.1\r\nHost: %s\r\n", srv.Addr()) // headers never end
		} else {
			fmt.Fprintf(c, "POST /v1/jobs HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer s3cret\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{", srv.Addr())
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := closedWithin(c, readTimeout+5*time.Second); err != nil {
				errs <- fmt.Errorf("connection %d: %w", i, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	t.Logf("50 slow connections closed in %v (read timeout %v)", time.Since(start), readTimeout)
}

// TestConnectionCap (finding 6): a client holding MaxConnsPerClient open
// connections gets its next one closed at once; once one closes, it may
// connect again.
func TestConnectionCap(t *testing.T) {
	srv, _ := runServer(t, server.Config{MaxConnsPerClient: 4})
	held := make([]net.Conn, 4)
	for i := range held {
		held[i] = dial(t, srv.Addr())
		// A request answered proves the connection was accepted.
		fmt.Fprintf(held[i], "GET /healthz HTTP/1.1\r\nHost: %s\r\n\r\n", srv.Addr())
		resp, err := http.ReadResponse(bufio.NewReader(held[i]), nil)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("connection %d: %v", i, err)
		}
		resp.Body.Close()
	}
	extra := dial(t, srv.Addr())
	if err := closedWithin(extra, 5*time.Second); err != nil {
		t.Fatalf("fifth connection: %v, want closed at once", err)
	}
	held[0].Close()
	eventually.NoError(t, 10*time.Second, func() error {
		c, err := net.Dial("tcp", srv.Addr())
		if err != nil {
			return err
		}
		defer c.Close()
		fmt.Fprintf(c, "GET /healthz HTTP/1.1\r\nHost: %s\r\n\r\n", srv.Addr())
		_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			return err
		}
		resp.Body.Close()
		return nil
	}, "a new connection after one closed")
}

// pki is a CA made in the test, with a server certificate for 127.0.0.1
// and a client certificate, written as PEM files.
type pki struct {
	caFile, certFile, keyFile string
	clientCert                tls.Certificate
	pool                      *x509.CertPool
}

func newPKI(t *testing.T) pki {
	t.Helper()
	dir := t.TempDir()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "dpe test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	issue := func(serial int64, usage x509.ExtKeyUsage, ip bool) ([]byte, *ecdsa.PrivateKey) {
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: fmt.Sprint("leaf ", serial)},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
		}
		if ip {
			tmpl.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		return der, key
	}
	write := func(name, typ string, der []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	srvDER, srvKey := issue(2, x509.ExtKeyUsageServerAuth, true)
	srvKeyDER, _ := x509.MarshalECPrivateKey(srvKey)
	cliDER, cliKey := issue(3, x509.ExtKeyUsageClientAuth, false)
	p := pki{
		caFile:     write("ca.pem", "CERTIFICATE", caDER),
		certFile:   write("server.pem", "CERTIFICATE", srvDER),
		keyFile:    write("server.key", "EC PRIVATE KEY", srvKeyDER),
		clientCert: tls.Certificate{Certificate: [][]byte{cliDER}, PrivateKey: cliKey},
		pool:       x509.NewCertPool(),
	}
	p.pool.AddCert(ca)
	return p
}

// TestTLS: with a certificate the server speaks https only; a client
// without the CA is refused, with it works; with a client CA, a processor
// token is refused without a client certificate and accepted with one,
// while an admin token needs none.
func TestTLS(t *testing.T) {
	p := newPKI(t)
	srv, _ := runServer(t, server.Config{Token: "admin-secret", TLSCert: p.certFile, TLSKey: p.keyFile, ClientCA: p.caFile})
	if srv.URL() != "https://"+srv.Addr() {
		t.Fatalf("URL %s, want https", srv.URL())
	}
	ctx := t.Context()
	newClient := func(tc *tls.Config, tok string) *client.Client {
		c, err := client.New(client.Config{URLs: []string{srv.URL()}, Token: tok, TLS: tc, Deadline: 5 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.Close)
		return c
	}
	if _, err := newClient(nil, "admin-secret").Status(ctx, client.WithMaxAttempts(1)); err == nil {
		t.Fatal("a client without the CA reached the server")
	}
	// Plain HTTP on the TLS port gets no API (Go's server answers 400).
	plain := &http.Transport{}
	t.Cleanup(plain.CloseIdleConnections)
	if resp, err := (&http.Client{Transport: plain}).Get("http://" + srv.Addr() + "/v1/status"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Fatal("plain http served the API")
		}
	}
	admin := newClient(&tls.Config{RootCAs: p.pool}, "admin-secret")
	if _, err := admin.Status(ctx); err != nil {
		t.Fatalf("admin over TLS: %v", err)
	}
	tok, err := admin.CreateToken(ctx, wire.TokenRequest{Name: "farm-1", Role: model.RoleProcessor})
	if err != nil {
		t.Fatal(err)
	}
	noCert := newClient(&tls.Config{RootCAs: p.pool}, tok.Secret)
	var ae *client.APIError
	if _, err := noCert.ListLeases(ctx, ""); !errors.As(err, &ae) || ae.Status != 403 {
		t.Fatalf("processor without a client certificate: %v, want 403", err)
	}
	withCert := newClient(&tls.Config{RootCAs: p.pool, Certificates: []tls.Certificate{p.clientCert}}, tok.Secret)
	if _, err := withCert.ListLeases(ctx, ""); err != nil {
		t.Fatalf("processor with a client certificate: %v", err)
	}
}
