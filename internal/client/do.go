package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"slices"
	"strings"
	"time"

	"go.opentelemetry.io/otel/propagation"

	"github.com/dpe-engine/dpe/internal/clock"
	"github.com/dpe-engine/dpe/internal/wire"
)

// maxBody bounds a response body the client reads into memory.
const maxBody = 64 << 20

// errTooLarge: the answer exceeds maxBody. Asking again would not help.
var errTooLarge = fmt.Errorf("answer larger than %d bytes", maxBody)

// request is one logical call; its bytes are kept so every attempt re-sends
// the same body.
type request struct {
	method, path string
	body         []byte
	contentType  string // default application/json
	key          string
}

// response is what one attempt got back from a server.
type response struct {
	status int
	header http.Header
	body   []byte
}

// do performs one logical call: method on path (which may carry a query,
// e.g. "/v1/jobs?state=queued"), with in encoded by encoding/json as the
// body (nil: no body; a json.RawMessage is sent as is) and a 2xx answer
// decoded into out (nil: ignored). Every typed method of Client is a call
// of do; a new route is a new method, the retry logic stays here.
//
// # Idempotency
//
// Every call whose method is not GET, HEAD or OPTIONS carries an
// Idempotency-Key header: the one given by WithIdempotencyKey, otherwise a
// fresh random one (128 bits) made once per logical call and sent again
// unchanged on every retry, so the server applies the call at most once and
// answers every repeat with its first answer.
//
// # When a call is retried
//
// A call is idempotent when its method is GET, HEAD or OPTIONS, or when it
// carries an Idempotency-Key (every mutating call made by do does). A
// failed attempt is retried exactly when one of these holds:
//
//  1. The request provably did not reach a server: the connection could
//     not be made (a dial error: refused, unreachable, DNS failure, dial
//     timeout). This holds for any call, idempotent or not.
//  2. The call is idempotent and the attempt failed at the transport
//     level: the connection was reset or closed early (EOF), the attempt
//     timed out, or the answer could not be read in full. Certificate and
//     TLS record errors, a refused redirect and an answer over 64 MiB are
//     not retried: no retry can fix them.
//  3. The call is idempotent and the server answered 502, 503, 504 or 429.
//
// Nothing else is retried: not other 4xx answers (the request is wrong and
// stays wrong), not 500 (the server failed in a way it did not call
// temporary), not an answer whose 2xx body fails to decode, not an error
// encoding in.
//
// # How
//
// Attempts go round-robin over Config.URLs, starting at the URL that last
// worked; a failed attempt moves on to the next URL at once, so a dead
// server among several live ones costs one fast failed dial and never an
// error. After each full round of failures the call sleeps a capped
// exponential back-off with full jitter: a random time in
// [0, min(BackoffMax, Backoff·2^round)], or the server's Retry-After when
// longer, itself capped at BackoffMax. Sleeps end early when ctx ends.
//
// Each attempt is bounded by Config.AttemptTimeout (WithAttemptTimeout;
// long polls use their wait plus LongPollSlack). The whole call is bounded
// by the sooner of ctx's deadline and Config.Deadline (plus the wait, for
// a long poll, see WithLongPoll): a retry that could
// not start before then is not made, and the call returns a *RetryError
// naming the attempts, the time spent and the URLs, wrapping the last
// error. A cancelled ctx stops the call at once with an error wrapping
// ctx.Err().
//
// # Errors
//
// A non-2xx answer that is not retried (or is the last) is an *APIError,
// wrapped with the method and path.
func (c *Client) do(ctx context.Context, method, path string, in, out any, opts ...CallOption) error {
	var o callOptions
	for _, opt := range opts {
		opt(&o)
	}
	r := &request{method: method, path: path, key: o.key, contentType: o.contentType, body: o.body}
	if in != nil && o.body == nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("%s %s: encode request: %w", method, path, err)
		}
		r.body = b
	}
	if r.key == "" && !safeMethod(method) {
		r.key = NewIdempotencyKey()
	}
	res, err := c.call(ctx, r, &o)
	if o.status != nil {
		*o.status = res.status
	}
	if err != nil {
		return err
	}
	if out == nil || len(bytes.TrimSpace(res.body)) == 0 {
		return nil
	}
	if err := json.Unmarshal(res.body, out); err != nil {
		return fmt.Errorf("%s %s: decode %d answer: %w", method, path, res.status, err)
	}
	return nil
}

// call runs the attempts of r and returns the 2xx answer, or the error
// that ended the call (with the response that carried it, if any).
func (c *Client) call(ctx context.Context, r *request, o *callOptions) (response, error) {
	start := c.clock.Now()
	end := start.Add(c.deadline + o.longPoll)
	if d, ok := ctx.Deadline(); ok && d.Before(end) {
		end = d
	}
	attemptTimeout := cmpOr(o.attemptTimeout, c.attemptTimeout)
	idempotent := safeMethod(r.method) || r.key != ""
	n := len(c.urls)
	first := int(c.cur.Load()) % n

	var (
		last       error
		lastRes    response
		retryAfter time.Duration
		tried      []string
	)
	giveUp := func(attempts int, cause error) (response, error) {
		if last == nil { // ctx ended before any attempt failed on its own
			return lastRes, fmt.Errorf("%s %s: %w", r.method, r.path, cause)
		}
		return lastRes, &RetryError{
			Method: r.method, Path: r.path, Attempts: attempts,
			Elapsed: c.clock.Now().Sub(start), URLs: tried, Err: last, Cause: cause,
		}
	}
	for attempt := 0; ; attempt++ {
		if o.maxAttempts > 0 && attempt >= o.maxAttempts {
			return giveUp(attempt, nil)
		}
		if attempt > 0 && attempt%n == 0 {
			wait := c.backoffFor(attempt/n - 1)
			if ra := min(retryAfter, c.backoffMax); ra > wait {
				wait = ra
			}
			retryAfter = 0
			if c.clock.Now().Add(wait).After(end) {
				return giveUp(attempt, ctxBound(ctx, end))
			}
			if err := clock.Sleep(ctx, c.clock, wait); err != nil {
				return giveUp(attempt, err)
			}
		}
		if err := ctx.Err(); err != nil {
			return giveUp(attempt, err)
		}
		remaining := end.Sub(c.clock.Now())
		if remaining <= 0 {
			return giveUp(attempt, ctxBound(ctx, end))
		}
		idx := (first + attempt) % n
		base := c.urls[idx]
		if !slices.Contains(tried, base) {
			tried = append(tried, base)
		}

		res, err := c.once(ctx, min(attemptTimeout, remaining), base, r)
		if err == nil && res.status >= 200 && res.status < 300 {
			c.cur.Store(uint32(idx))
			return res, nil
		}
		if ctx.Err() != nil {
			// The attempt died with the caller's ctx. Cancelled: not the
			// attempt's failure. Out of time: the attempt's error is the
			// last one, so the call reads as "unavailable" like any call
			// that ran out of time.
			if last == nil && err != nil && errors.Is(ctx.Err(), context.DeadlineExceeded) {
				last = err
			}
			return giveUp(attempt+1, ctx.Err())
		}
		retry := false
		if err != nil {
			// err names the URL already (a *url.Error).
			retry = retryableTransport(err, idempotent)
		} else {
			apiErr := problemOf(res, c.clock.Now())
			apiErr.URL = base
			retry = idempotent && retryableStatus(res.status)
			retryAfter = max(retryAfter, apiErr.RetryAfter)
			err = apiErr
		}
		last, lastRes = err, res
		if !retry {
			if res.status != 0 {
				c.cur.Store(uint32(idx)) // the server answered: it is alive
			}
			return res, fmt.Errorf("%s %s: %w", r.method, r.path, err)
		}
		// Move the shared cursor past the URL that failed, unless another
		// call already moved it.
		c.cur.CompareAndSwap(uint32(idx), uint32((idx+1)%n))
		c.log.DebugContext(ctx, "call attempt failed; retrying",
			"method", r.method, "path", r.path, "url", base,
			"attempt", attempt+1, "err", err)
		if c.onRetry != nil {
			c.onRetry(RetryInfo{Method: r.method, Path: r.path, URL: base, Attempt: attempt + 1,
				Elapsed: c.clock.Now().Sub(start), Deadline: end.Sub(start), Err: err})
		}
	}
}

// once makes one attempt against base.
func (c *Client) once(ctx context.Context, timeout time.Duration, base string, r *request) (response, error) {
	actx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var body io.Reader
	if r.body != nil {
		body = bytes.NewReader(r.body) // a fresh reader per attempt
	}
	req, err := http.NewRequestWithContext(actx, r.method, base+r.path, body)
	if err != nil {
		return response{}, err
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.userAgent)
	if r.body != nil {
		ct := r.contentType
		if ct == "" {
			ct = "application/json"
		}
		req.Header.Set("Content-Type", ct)
	}
	if r.key != "" {
		// net/http also treats a request with this header as replayable
		// and retries it itself on a stale keep-alive connection.
		req.Header.Set("Idempotency-Key", r.key)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	// The W3C traceparent of ctx's span, if any (a processor's job span):
	// the server's span of the request joins that trace.
	propagation.TraceContext{}.Inject(ctx, propagation.HeaderCarrier(req.Header))
	resp, err := c.hc.Do(req)
	if err != nil {
		return response{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err != nil {
		// The answer was cut short: a transport failure like any other.
		return response{}, fmt.Errorf("read %d answer: %w", resp.StatusCode, err)
	}
	if len(b) > maxBody {
		return response{status: resp.StatusCode, header: resp.Header}, errTooLarge
	}
	return response{status: resp.StatusCode, header: resp.Header, body: b}, nil
}

// problemOf turns a non-2xx answer into an *APIError.
func problemOf(res response, now time.Time) *APIError {
	e := &APIError{Status: res.status, RetryAfter: parseRetryAfter(res.header.Get("Retry-After"), now)}
	ct, _, _ := mime.ParseMediaType(res.header.Get("Content-Type"))
	if ct == "application/problem+json" || ct == "application/json" {
		if json.Unmarshal(res.body, &e.Problem) == nil && e.Problem.Title != "" {
			e.Problem.Status = res.status
			return e
		}
	}
	e.Foreign = true
	e.Problem = wire.Problem{Title: http.StatusText(res.status), Status: res.status}
	if d := strings.TrimSpace(string(res.body)); d != "" && len(d) < 512 && !strings.HasPrefix(d, "<") {
		e.Problem.Detail = d
	}
	return e
}

// ctxBound is the cause to report when the time bound passed: the ctx's
// deadline error when the ctx set the bound, nil when Config.Deadline did.
func ctxBound(ctx context.Context, end time.Time) error {
	if d, ok := ctx.Deadline(); ok && !d.After(end) {
		return context.DeadlineExceeded
	}
	return nil
}

func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

func cmpOr(v, def time.Duration) time.Duration {
	if v > 0 {
		return v
	}
	return def
}
