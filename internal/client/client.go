// Package client is the Go client of the dpe HTTP API (/v1), used by every
// role except the server. It has one typed method per route, taking and
// returning the bodies of package wire (the contract) and the entities of
// package model; it is the only code outside internal/api that knows a
// route's path. Every method accepts CallOptions (WithStatus,
// WithAttemptTimeout, WithIdempotencyKey, ...).
//
// It spreads calls over one or more server URLs, puts an Idempotency-Key
// on every mutating call and retries through outages under the rules
// written on the unexported do (do.go), so a caller rides out a server
// fail-over, a load-balancer switch or a database restart without an error
// and without a duplicate.
//
// A Client is safe for concurrent use by many goroutines.
package client

import (
	"cmp"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/dpe-engine/dpe/internal/clock"
	"github.com/dpe-engine/dpe/internal/wire"
)

// Defaults of Config.
const (
	DefaultDeadline       = 2 * time.Minute
	DefaultAttemptTimeout = 30 * time.Second
	DefaultBackoff        = 50 * time.Millisecond
	DefaultBackoffMax     = 2 * time.Second
	// LongPollSlack is added to a long-poll's Wait to get the timeout of
	// one attempt: the server answers after Wait, the slack covers the
	// network and a busy server.
	LongPollSlack = 15 * time.Second
	// MaxLongPoll is the longest Wait the server honours.
	MaxLongPoll = wire.MaxWait
)

// Config configures a Client. Only URLs is required.
type Config struct {
	// URLs are the servers or load balancers to talk to, e.g.
	// "http://dpe-a:8460". Each must be http or https with a host; a
	// trailing slash is trimmed; a path prefix is kept.
	URLs []string
	// Token, when set, is sent as "Authorization: Bearer TOKEN".
	Token string
	// TLS configures https connections of the client's own transport
	// (ignored with HTTP): RootCAs for a private CA, Certificates for
	// mutual TLS. Nil: the system roots, no client certificate.
	TLS *tls.Config
	// HTTP is the client used for requests. Nil: a client with its own
	// tuned transport (keep-alive, 64 idle connections per host); the
	// global http.DefaultTransport is never modified.
	HTTP *http.Client
	// Deadline bounds one logical call including its retries (the caller's
	// ctx deadline bounds it too, whichever is sooner). Zero: 2 minutes.
	Deadline time.Duration
	// AttemptTimeout bounds one attempt of a call that is not a long poll.
	// Zero: 30 seconds.
	AttemptTimeout time.Duration
	// Backoff and BackoffMax are the base and the cap of the exponential
	// back-off between retry rounds. Zero: 50ms and 2s.
	Backoff, BackoffMax time.Duration
	// Log receives debug records of failed attempts. Nil: discarded.
	Log *slog.Logger
	// Clock is the time source for deadlines and back-off sleeps. Nil:
	// clock.Real. Tests inject a fake one so back-off costs no real time.
	Clock clock.Clock
	// Jitter returns a random duration in [0, d] (full jitter). Nil:
	// uniform, by backoff.Policy. Tests may return d for determinism.
	Jitter func(d time.Duration) time.Duration
	// UserAgent is sent with every request. Empty: "dpe-client".
	UserAgent string
	// OnRetry, when set, is told of every failed attempt the rules allow
	// to retry, before the retry and its back-off (the call may still give
	// up instead when its time runs out). A command-line tool
	// uses it to say at once that a server cannot be reached instead of
	// staying silent until the call gives up. It must not block.
	OnRetry func(RetryInfo)
}

// Client calls the dpe HTTP API. Create it with New.
type Client struct {
	urls           []string
	token          string
	userAgent      string
	hc             *http.Client
	ownTransport   *http.Transport // nil when the caller gave Config.HTTP
	deadline       time.Duration
	attemptTimeout time.Duration
	backoff        time.Duration
	backoffMax     time.Duration
	log            *slog.Logger
	clock          clock.Clock
	jitter         func(time.Duration) time.Duration
	onRetry        func(RetryInfo)

	// cur is the index of the URL to try first: the last one that worked,
	// or the one after the last one that failed.
	cur atomic.Uint32
}

// New validates cfg and returns a Client.
func New(cfg Config) (*Client, error) {
	if len(cfg.URLs) == 0 {
		return nil, errors.New("client: no server URL given")
	}
	urls := make([]string, 0, len(cfg.URLs))
	for i, raw := range cfg.URLs {
		u, err := checkURL(raw)
		if err != nil {
			return nil, fmt.Errorf("client: urls[%d] %q: %w", i, raw, err)
		}
		urls = append(urls, u)
	}
	for name, d := range map[string]time.Duration{
		"deadline": cfg.Deadline, "attempt timeout": cfg.AttemptTimeout,
		"backoff": cfg.Backoff, "backoff max": cfg.BackoffMax,
	} {
		if d < 0 {
			return nil, fmt.Errorf("client: negative %s %v", name, d)
		}
	}
	c := &Client{
		urls:           urls,
		token:          cfg.Token,
		userAgent:      cmp.Or(cfg.UserAgent, "dpe-client"),
		hc:             cfg.HTTP,
		deadline:       cmp.Or(cfg.Deadline, DefaultDeadline),
		attemptTimeout: cmp.Or(cfg.AttemptTimeout, DefaultAttemptTimeout),
		backoff:        cmp.Or(cfg.Backoff, DefaultBackoff),
		backoffMax:     cmp.Or(cfg.BackoffMax, DefaultBackoffMax),
		log:            cfg.Log,
		clock:          cfg.Clock,
		jitter:         cfg.Jitter,
		onRetry:        cfg.OnRetry,
	}
	if c.backoffMax < c.backoff {
		return nil, fmt.Errorf("client: backoff max %v below backoff %v", c.backoffMax, c.backoff)
	}
	if c.hc == nil {
		c.ownTransport = newTransport()
		if cfg.TLS != nil {
			c.ownTransport.TLSClientConfig = cfg.TLS.Clone()
		}
		c.hc = &http.Client{Transport: c.ownTransport}
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if c.clock == nil {
		c.clock = clock.Real{}
	}
	return c, nil
}

// URLs returns the server URLs the client uses, normalised.
func (c *Client) URLs() []string { return append([]string(nil), c.urls...) }

// Close releases idle connections of the client's own transport. The
// client stays usable; Close only matters to leak checks and long-lived
// programs dropping a client.
func (c *Client) Close() {
	if c.ownTransport != nil {
		c.ownTransport.CloseIdleConnections()
	}
}

func checkURL(raw string) (string, error) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil {
		return "", err
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", errors.New("scheme must be http or https")
	}
	if u.Host == "" {
		return "", errors.New("no host")
	}
	if u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return "", errors.New("must not carry a query, a fragment or user info")
	}
	return strings.TrimRight(u.String(), "/"), nil
}

// newTransport is a keep-alive transport sized for a processor farm: many
// concurrent calls to few hosts. The short dial timeout makes a dead server
// among several cost little before the next URL is tried.
func newTransport() *http.Transport {
	d := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	return &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           d.DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          256,
		MaxIdleConnsPerHost:   64,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
}
