package server

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"time"
)

// DefaultMaxConnsPerClient caps the open connections of one client
// address. It is high because a load balancer or a processor farm behind
// NAT is one address.
const DefaultMaxConnsPerClient = 512

// capListener closes, at once, a connection from an address that already
// holds max open ones: a client cannot exhaust the server's file
// descriptors or goroutines by opening connections and sending nothing.
type capListener struct {
	net.Listener
	max int

	mu   sync.Mutex
	open map[string]int
}

func newCapListener(ln net.Listener, max int) *capListener {
	return &capListener{Listener: ln, max: max, open: map[string]int{}}
}

// Accept returns the next connection within the cap.
func (l *capListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		host := c.RemoteAddr().String()
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		l.mu.Lock()
		if l.open[host] >= l.max {
			l.mu.Unlock()
			_ = c.Close()
			continue
		}
		l.open[host]++
		l.mu.Unlock()
		return &cappedConn{Conn: c, l: l, host: host}, nil
	}
}

type cappedConn struct {
	net.Conn
	l    *capListener
	host string
	once sync.Once
}

func (c *cappedConn) Close() error {
	c.once.Do(func() {
		c.l.mu.Lock()
		if c.l.open[c.host]--; c.l.open[c.host] <= 0 {
			delete(c.l.open, c.host)
		}
		c.l.mu.Unlock()
	})
	return c.Conn.Close()
}

// certReloader serves the certificate in certFile and keyFile, read again
// when either file's modification time changes and on reload (SIGHUP: a
// renewal copied with its old times kept), so a renewed certificate needs
// no restart.
type certReloader struct {
	certFile, keyFile string

	mu      sync.Mutex
	cert    *tls.Certificate
	modCert time.Time
	modKey  time.Time
}

func newCertReloader(certFile, keyFile string) (*certReloader, error) {
	r := &certReloader{certFile: certFile, keyFile: keyFile}
	if _, err := r.get(); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *certReloader) get() (*tls.Certificate, error) {
	ci, err := os.Stat(r.certFile)
	if err != nil {
		return nil, fmt.Errorf("tls certificate: %w", err)
	}
	ki, err := os.Stat(r.keyFile)
	if err != nil {
		return nil, fmt.Errorf("tls key: %w", err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cert != nil && ci.ModTime().Equal(r.modCert) && ki.ModTime().Equal(r.modKey) {
		return r.cert, nil
	}
	cert, err := tls.LoadX509KeyPair(r.certFile, r.keyFile)
	if err != nil {
		if r.cert != nil {
			return r.cert, nil // a half-written renewal: keep serving the old one
		}
		return nil, fmt.Errorf("tls: %w", err)
	}
	r.cert, r.modCert, r.modKey = &cert, ci.ModTime(), ki.ModTime()
	return r.cert, nil
}

// reload reads the pair now, whatever the files' times. A pair that does
// not load is an error and the one in service stays.
func (r *certReloader) reload() error {
	ci, err := os.Stat(r.certFile)
	if err != nil {
		return fmt.Errorf("tls certificate: %w", err)
	}
	ki, err := os.Stat(r.keyFile)
	if err != nil {
		return fmt.Errorf("tls key: %w", err)
	}
	cert, err := tls.LoadX509KeyPair(r.certFile, r.keyFile)
	if err != nil {
		return fmt.Errorf("tls: %w", err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.cert, r.modCert, r.modKey = &cert, ci.ModTime(), ki.ModTime()
	return nil
}

// tlsConfig builds the server's TLS configuration: its certificate, and
// with clientCA the CAs that sign the client certificates processors and
// triggers must present (verified when given; the API requires one for
// those roles).
func tlsConfig(certFile, keyFile, clientCA string) (*tls.Config, *certReloader, error) {
	if certFile == "" || keyFile == "" {
		return nil, nil, errors.New("tls: give both a certificate and a key")
	}
	r, err := newCertReloader(certFile, keyFile)
	if err != nil {
		return nil, nil, err
	}
	cfg := &tls.Config{
		MinVersion:     tls.VersionTLS12,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return r.get() },
		NextProtos:     []string{"h2", "http/1.1"},
	}
	if clientCA != "" {
		pool, err := LoadCertPool(clientCA)
		if err != nil {
			return nil, nil, fmt.Errorf("client CA: %w", err)
		}
		cfg.ClientCAs = pool
		cfg.ClientAuth = tls.VerifyClientCertIfGiven
	}
	return cfg, r, nil
}

// LoadCertPool reads PEM certificates from path into a pool.
func LoadCertPool(path string) (*x509.CertPool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("%s: no PEM certificate found", path)
	}
	return pool, nil
}
