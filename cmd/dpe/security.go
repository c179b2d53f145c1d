package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/dpe-engine/dpe/internal/api"
	"github.com/dpe-engine/dpe/internal/server"
)

// readTokenFile reads a token from a file, trimmed. A file others may
// read is refused: the token is a password.
func readTokenFile(path string) (string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return "", err
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return "", fmt.Errorf("%s: mode %v lets others read the token; chmod 600 it", path, fi.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	t := strings.TrimSpace(string(b))
	if t == "" || strings.ContainsAny(t, " \t\r\n") {
		return "", fmt.Errorf("%s: want one token", path)
	}
	return t, nil
}

// tlsConfig is the client's TLS: --ca as the roots, --cert/--key as its
// certificate. Nil when neither is given (system roots).
func (g *globals) tlsConfig() (*tls.Config, error) {
	if g.ca == "" && g.cert == "" {
		return nil, nil
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if g.ca != "" {
		pool, err := server.LoadCertPool(g.ca)
		if err != nil {
			return nil, usagef("--ca: %v", err)
		}
		tc.RootCAs = pool
	}
	if g.cert != "" {
		c, err := tls.LoadX509KeyPair(g.cert, g.key)
		if err != nil {
			return nil, usagef("--cert/--key: %v", err)
		}
		tc.Certificates = []tls.Certificate{c}
	}
	return tc, nil
}

// listenFlags are the server's network flags, shared by `dpe server` and
// `dpe up`.
type listenFlags struct {
	tlsCert, tlsKey, clientCA string
	hosts                     listFlag
	readTimeout               time.Duration
	maxConns                  int
	rateLimit                 string
	rateBurst, maxWaits       int
}

// Defaults of the per-token limits: far above what people type or
// scripts of a few calls send; machine traffic is never rate limited.
const (
	defaultRateLimit = "100/s"
	defaultRateBurst = 200
	defaultMaxWaits  = 256
)

func (l *listenFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&l.tlsCert, "tls-cert", "", "PEM certificate: serve https only (re-read when the file changes and on SIGHUP)")
	fs.StringVar(&l.tlsKey, "tls-key", "", "PEM key of --tls-cert")
	fs.StringVar(&l.clientCA, "client-ca", "", "PEM CAs of client certificates: processor and trigger tokens then work only with one (mutual TLS)")
	fs.Var(&l.hosts, "allow-host", "a name the server answers to besides IPs and localhost (repeatable; a loopback server refuses mutating requests for other names)")
	fs.DurationVar(&l.readTimeout, "read-timeout", 60*time.Second, "longest time to read one request, body included")
	fs.IntVar(&l.maxConns, "max-conns-per-client", server.DefaultMaxConnsPerClient, "open connections one client address may hold")
	fs.StringVar(&l.rateLimit, "rate-limit", defaultRateLimit, "changes (POST, PUT, DELETE) one token, or with no tokens one address, may make: N/s, N/m or N/h; 0: no limit (processor, worker and trigger calls are never limited)")
	fs.IntVar(&l.rateBurst, "rate-burst", defaultRateBurst, "changes a token may make at once beyond --rate-limit")
	fs.IntVar(&l.maxWaits, "max-waits", defaultMaxWaits, "claims one token may keep waiting for work at once (processors sharing a token share it); 0: no cap")
}

// apply sets the flags' fields of cfg; with a certificate, SIGHUP reloads
// it until ctx ends.
func (l *listenFlags) apply(ctx context.Context, cfg *server.Config) error {
	cfg.TLSCert, cfg.TLSKey, cfg.ClientCA = l.tlsCert, l.tlsKey, l.clientCA
	if l.tlsCert != "" {
		cfg.ReloadTLS = hangups(ctx)
	}
	cfg.Hosts = l.hosts
	cfg.ReadTimeout = l.readTimeout
	cfg.MaxConnsPerClient = l.maxConns
	r, err := api.ParseRate(l.rateLimit)
	if err != nil {
		return usagef("--rate-limit: %v", err)
	}
	if l.rateBurst < 0 {
		return usagef("--rate-burst: want 0 or more, got %d", l.rateBurst)
	}
	if l.maxWaits < 0 {
		return usagef("--max-waits: want 0 or more, got %d", l.maxWaits)
	}
	cfg.Limits = api.Limits{Rate: r, Burst: l.rateBurst, MaxWaits: l.maxWaits}
	return nil
}

// The local token: `dpe up` keeps its admin token in DATA/admin.token
// (mode 0600) and notes where in the user's config directory, under the
// address it listens on, so the CLI of the same user finds it for a
// loopback --server without DPE_TOKEN.
const localTokenName = "admin.token"

// localPointer is the file naming the token file of the dpe up at addr.
func localPointer(addr string) (string, error) {
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, "dpe", "local", strings.NewReplacer(":", "_", "[", "", "]", "").Replace(addr)), nil
}

// noteLocalToken records that the dpe up at addr keeps its token in path.
func noteLocalToken(addr, path string) error {
	p, err := localPointer(addr)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return err
	}
	return os.WriteFile(p, []byte(path+"\n"), 0o600)
}

// localToken returns the token of a dpe up on this machine serving the
// first loopback URL in urls, or "".
func localToken(urls []string) string {
	for _, raw := range urls {
		u, err := url.Parse(raw)
		if err != nil {
			continue
		}
		host := u.Hostname()
		if ip := net.ParseIP(host); !(host == "localhost" || ip != nil && ip.IsLoopback()) {
			continue
		}
		port := u.Port()
		if port == "" {
			port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
		}
		for _, h := range []string{host, "127.0.0.1"} {
			p, err := localPointer(net.JoinHostPort(h, port))
			if err != nil {
				return ""
			}
			b, err := os.ReadFile(p)
			if err != nil {
				continue
			}
			if t, err := readTokenFile(strings.TrimSpace(string(b))); err == nil {
				return t
			}
		}
	}
	return ""
}

// errNoTokenStore: the core database cannot hold tokens.
var errNoTokenStore = errors.New("this core database does not store tokens")
