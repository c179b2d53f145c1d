package client

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"syscall"
	"time"

	"github.com/dpe-engine/dpe/internal/model"
	"github.com/dpe-engine/dpe/internal/wire"
)

// APIError is an HTTP error answer of the server: any status outside 2xx.
// Problem holds the problem+json body, or a synthesized one when the body
// was something else (a load balancer's HTML page, say).
//
// errors.Is maps statuses to the model sentinels: 404 → model.ErrNotFound,
// 409 → model.ErrConflict, 400/413/415/422 → model.ErrInvalid,
// 503 → model.ErrUnavailable.
type APIError struct {
	Status  int
	Problem wire.Problem
	// RetryAfter is the server's Retry-After hint, zero when absent.
	RetryAfter time.Duration
	// URL is the server that answered.
	URL string
	// Foreign is true when the answer was not a problem+json body of a
	// dpe server (a load balancer's page, Go's "404 page not found" for
	// a path no route serves): Problem was synthesized from the status.
	Foreign bool
}

// Error reads like "400 Bad Request: jobs[2].type: unknown job type".
func (e *APIError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d", e.Status)
	title := e.Problem.Title
	if title == "" {
		title = http.StatusText(e.Status)
	}
	if title != "" {
		b.WriteString(" " + title)
	}
	if e.Problem.Field != "" {
		b.WriteString(": " + e.Problem.Field)
	}
	if e.Problem.Detail != "" {
		b.WriteString(": " + e.Problem.Detail)
	}
	return b.String()
}

// Is reports whether the status maps to target (see APIError).
func (e *APIError) Is(target error) bool {
	switch target {
	case model.ErrNotFound:
		return e.Status == http.StatusNotFound
	case model.ErrConflict:
		return e.Status == http.StatusConflict
	case model.ErrInvalid:
		switch e.Status {
		case http.StatusBadRequest, http.StatusRequestEntityTooLarge,
			http.StatusUnsupportedMediaType, http.StatusUnprocessableEntity:
			return true
		}
	case model.ErrUnavailable:
		return e.Status == http.StatusServiceUnavailable
	}
	return false
}

// RetryError says a call gave up after retrying: its time ran out
// (Config.Deadline or the ctx deadline), its attempts ran out
// (WithMaxAttempts), or its ctx was cancelled (Cause). It wraps the last
// attempt's error and Cause, and matches model.ErrUnavailable unless the
// caller cancelled: the servers could not be reached in time. (A
// cancelled call still matches what its last error matches.)
type RetryError struct {
	Method, Path string
	Attempts     int
	Elapsed      time.Duration
	// URLs are the servers tried, in the order first tried.
	URLs []string
	// Err is the error of the last attempt.
	Err error
	// Cause is the ctx error that stopped the retries, or nil when the
	// client's own deadline or attempt limit did.
	Cause error
}

// Error names the call, the attempts, the time spent, the URLs and the last
// error.
func (e *RetryError) Error() string {
	stop := "gave up"
	if e.Cause != nil {
		stop = e.Cause.Error()
	}
	n := "attempts"
	if e.Attempts == 1 {
		n = "attempt"
	}
	return fmt.Sprintf("%s %s: %s after %d %s over %v against %s: last error: %v",
		e.Method, e.Path, stop, e.Attempts, n, e.Elapsed.Round(time.Millisecond),
		strings.Join(e.URLs, ", "), e.Err)
}

// Unwrap returns the cause (when the ctx stopped the call) and the last
// attempt's error.
func (e *RetryError) Unwrap() []error {
	if e.Cause != nil {
		return []error{e.Cause, e.Err}
	}
	return []error{e.Err}
}

// Is makes a call that ran out of time or attempts match
// model.ErrUnavailable.
func (e *RetryError) Is(target error) bool {
	return target == model.ErrUnavailable &&
		(e.Cause == nil || errors.Is(e.Cause, context.DeadlineExceeded))
}

// RetryInfo describes a failed attempt that is about to be retried
// (Config.OnRetry).
type RetryInfo struct {
	Method, Path string
	// URL is the server the attempt went to.
	URL string
	// Attempt counts the call's attempts so far, from 1.
	Attempt int
	// Elapsed is the time since the call began; Deadline the time the call
	// may take in all (Config.Deadline or the ctx deadline, the sooner).
	Elapsed, Deadline time.Duration
	// Err is the attempt's error: a transport error (no answer) or an
	// *APIError (a 502, 503, 504 or 429 answer).
	Err error
}

// Unreachable reports whether err is a call that gave up (its time or
// attempts ran out) without any server answering its last attempt: the
// servers could not be reached, as opposed to a server that answered
// "unavailable".
func Unreachable(err error) bool {
	var re *RetryError
	if !errors.As(err, &re) || !re.Is(model.ErrUnavailable) {
		return false
	}
	var ae *APIError
	return !errors.As(re.Err, &ae)
}

// Reason is a short, human text for a transport error: "connection
// refused", "no such host", "timed out", ...; the error's own text when
// none fits.
func Reason(err error) string {
	var dns *net.DNSError
	var errno syscall.Errno
	var ne net.Error
	switch {
	case errors.As(err, &dns):
		if dns.IsNotFound {
			return "no such host " + dns.Name
		}
		return "cannot resolve " + dns.Name
	case errors.As(err, &errno):
		return errno.Error()
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "timed out"
	}
	return err.Error()
}
