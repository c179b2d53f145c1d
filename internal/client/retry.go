package client

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/dpe-engine/dpe/internal/backoff"
)

// The rules applied here are written on Client.do.

// retryableTransport says whether an attempt that failed with err (no HTTP
// answer) may be retried.
func retryableTransport(err error, idempotent bool) bool {
	if notSent(err) {
		return true
	}
	if !idempotent {
		return false
	}
	return !configError(err)
}

// notSent reports an error that proves the request never left: no
// connection could be made.
func notSent(err error) bool {
	var op *net.OpError
	if errors.As(err, &op) && (op.Op == "dial" || op.Op == "proxyconnect") {
		return true
	}
	var dns *net.DNSError
	return errors.As(err, &dns)
}

// configError reports failures that come from how the client or server is
// set up, which retrying cannot fix.
func configError(err error) bool {
	var (
		unknownCA   x509.UnknownAuthorityError
		hostname    x509.HostnameError
		invalid     x509.CertificateInvalidError
		verify      *tls.CertificateVerificationError
		recordHdr   tls.RecordHeaderError
		unsupported x509.UnhandledCriticalExtension
	)
	if errors.As(err, &unknownCA) || errors.As(err, &hostname) || errors.As(err, &invalid) ||
		errors.As(err, &verify) || errors.As(err, &recordHdr) || errors.As(err, &unsupported) {
		return true
	}
	if errors.Is(err, errTooLarge) {
		return true
	}
	// The redirect policy refused (http.Client.CheckRedirect).
	return errors.Is(err, http.ErrUseLastResponse) || strings.Contains(err.Error(), "stopped after 10 redirects")
}

// retryableStatus lists the answers that say "not now" rather than "no".
func retryableStatus(status int) bool {
	switch status {
	case http.StatusBadGateway, http.StatusServiceUnavailable,
		http.StatusGatewayTimeout, http.StatusTooManyRequests:
		return true
	}
	return false
}

// backoffFor is the pause before retry round r (0-based): full jitter
// under the ceiling Backoff·2^r capped at BackoffMax, or Config.Jitter
// applied to that ceiling when the caller gave one.
func (c *Client) backoffFor(r int) time.Duration {
	p := backoff.Policy{Initial: c.backoff, Max: c.backoffMax, Multiplier: 2, Jitter: 1}
	if c.jitter != nil {
		return c.jitter(p.Ceiling(r))
	}
	return p.Delay(r)
}

// parseRetryAfter reads a Retry-After header: delay seconds or an HTTP
// date. Zero when absent or unreadable.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil {
		if s <= 0 {
			return 0
		}
		return time.Duration(min(s, 3600)) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}
