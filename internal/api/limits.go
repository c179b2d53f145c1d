package api

import (
	"fmt"
	"math"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/dpe-engine/dpe/internal/wire"
)

// Limits are the per-caller limits of the API. A caller is a token (by
// its name) or, when the server requires no token, a client address.
// Zero values switch a limit off.
type Limits struct {
	// Rate is how many changes (POST, PUT, PATCH, DELETE) per second one
	// caller may make on average; 0: no limit. Machine traffic (see
	// unthrottled) is never limited.
	Rate float64
	// Burst is how many changes a caller may make at once, beyond Rate
	// (default: Rate rounded up).
	Burst int
	// MaxWaits caps the calls one caller may keep waiting for work at once
	// (the long-polls: job and workflow claims); 0: no cap.
	MaxWaits int
}

// unthrottled are the mutating routes Limits.Rate does not apply to: the
// traffic of processors, workflow workers and triggers, which paces
// itself by its own quota and which, throttled, would stall the work (a
// late heartbeat loses a lease, a late completion runs a job twice). They
// are the routes only machine roles (processor, trigger) call besides
// admin. TestUnthrottledRoutes keeps the list and the route table in step.
var unthrottled = map[string]bool{
	"POST /v1/claims":                        true, // job claims
	"POST /v1/heartbeats":                    true, // lease renewals
	"POST /v1/jobs/{id}/progress":            true,
	"POST /v1/jobs/{id}/complete":            true, // completion reports
	"POST /v1/completions":                   true,
	"POST /v1/jobs/{id}/release":             true,
	"POST /v1/jobs/{id}/logs":                true, // a job's log lines
	"PUT /v1/processors/{id}":                true, // a processor's registration
	"POST /v1/worker/claims":                 true, // workflow worker calls
	"POST /v1/worker/instances/{id}/advance": true,
	"POST /v1/worker/advances":               true,
	"POST /v1/worker/heartbeats":             true,
	"POST /v1/worker/releases":               true,
	"POST /v1/leases/acquire":                true, // standby leases
	"POST /v1/leases/release":                true,
	"POST /v1/triggers/{name}/fire":          true, // trigger fire and observe
	"POST /v1/triggers/{name}/observe":       true,
	"POST /v1/triggers/{name}/error":         true,
}

// longPolls are the routes whose calls may wait for work (a claim's
// "wait"): Limits.MaxWaits caps them. Every GET answers at once.
var longPolls = map[string]bool{
	"POST /v1/claims":        true,
	"POST /v1/worker/claims": true,
}

// maxBuckets bounds the rate buckets kept at once: past it, the one idle
// longest is dropped for a newcomer.
const maxBuckets = 10000

// limiter enforces Limits.
type limiter struct {
	cfg   Limits
	rates *buckets // nil: no rate limit
	waits *gates   // nil: no cap on waits
}

func newLimiter(cfg Limits) *limiter {
	l := &limiter{cfg: cfg}
	if cfg.Rate > 0 {
		if cfg.Burst <= 0 {
			cfg.Burst = int(math.Ceil(cfg.Rate))
			l.cfg.Burst = cfg.Burst
		}
		l.rates = newBuckets(rate.Limit(cfg.Rate), cfg.Burst, maxBuckets)
	}
	if cfg.MaxWaits > 0 {
		l.waits = &gates{max: cfg.MaxWaits, n: map[string]int{}}
	}
	return l
}

// limit wraps the handler of pattern with the limits that apply to it.
func (a *API) limit(pattern string, h http.HandlerFunc) http.HandlerFunc {
	method, _, _ := strings.Cut(pattern, " ")
	l := a.limits
	throttle := l.rates != nil && mutating(method) && !unthrottled[pattern]
	wait := l.waits != nil && longPolls[pattern]
	if !throttle && !wait {
		return h
	}
	return func(w http.ResponseWriter, r *http.Request) {
		who := callerOf(r)
		if throttle {
			if d := l.rates.take(who, a.clock.Now()); d > 0 {
				tooMany(w, d, fmt.Sprintf("%s may make %s changes (at most %d at once); retry in %s",
					who, perSecond(l.cfg.Rate), l.cfg.Burst, retryText(d)))
				return
			}
		}
		if wait {
			if !l.waits.enter(who) {
				tooMany(w, time.Second, fmt.Sprintf("%s already has %d calls waiting for work, the most it may have at once; finish or cancel one first",
					who, l.cfg.MaxWaits))
				return
			}
			defer l.waits.leave(who)
		}
		h(w, r)
	}
}

// mutating reports whether a method changes something.
func mutating(method string) bool {
	switch method {
	case http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
		return true
	}
	return false
}

// callerOf names who the limits count a request against: its token, or
// with no token its client address.
func callerOf(r *http.Request) string {
	if p, ok := PrincipalOf(r.Context()); ok {
		return "token " + p.Name
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	return "address " + host
}

// tooMany answers 429 with Retry-After, before reading the body.
func tooMany(w http.ResponseWriter, after time.Duration, detail string) {
	refuse(w)
	w.Header().Set("Retry-After", strconv.Itoa(retrySeconds(after)))
	writeProblem(w, wire.Problem{Title: "too many requests", Status: http.StatusTooManyRequests, Detail: detail})
}

// retrySeconds rounds d up to whole seconds, at least 1 (Retry-After has
// no fractions).
func retrySeconds(d time.Duration) int {
	return max(1, int(math.Ceil(d.Seconds())))
}

func retryText(d time.Duration) string {
	if s := retrySeconds(d); s != 1 {
		return strconv.Itoa(s) + " seconds"
	}
	return "1 second"
}

// perSecond writes a rate for people: "50 per second", "6 per minute".
func perSecond(r float64) string {
	if r >= 1 {
		return strconv.FormatFloat(r, 'f', -1, 64) + " per second"
	}
	return strconv.FormatFloat(r*60, 'f', -1, 64) + " per minute"
}

// ParseRate reads a rate as the --rate-limit flag takes it: N, N/s, N/m
// or N/h (N a non-negative number; 0: no limit). It returns changes per
// second.
func ParseRate(s string) (float64, error) {
	num, unit, _ := strings.Cut(strings.TrimSpace(s), "/")
	n, err := strconv.ParseFloat(num, 64)
	if err != nil || n < 0 || math.IsInf(n, 0) || math.IsNaN(n) {
		return 0, fmt.Errorf("want a number of requests such as 50/s, 600/m or 0 for no limit, got %q", s)
	}
	switch unit {
	case "", "s":
		return n, nil
	case "m":
		return n / 60, nil
	case "h":
		return n / 3600, nil
	}
	return 0, fmt.Errorf("want a rate per second (/s), minute (/m) or hour (/h), got %q", s)
}

// buckets are the token buckets of the callers, bounded in memory: a
// bucket idle long enough to be full again is dropped (a new one is the
// same), and past max buckets the one idle longest goes.
type buckets struct {
	limit rate.Limit
	burst int
	max   int
	// full is how long an empty bucket takes to fill: an idle bucket is
	// dropped after it, and buckets are swept for idle ones at most once
	// per full.
	full time.Duration

	mu    sync.Mutex
	m     map[string]*bucket
	swept time.Time
}

type bucket struct {
	lim  *rate.Limiter
	last time.Time // last request
}

func newBuckets(limit rate.Limit, burst, size int) *buckets {
	full := time.Duration(float64(burst) / float64(limit) * float64(time.Second))
	return &buckets{limit: limit, burst: burst, max: size, full: max(full, time.Second), m: map[string]*bucket{}}
}

// take takes one request from who's bucket at now: 0 when it may go on,
// else how long until the bucket holds one again.
func (b *buckets) take(who string, now time.Time) time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	if now.Sub(b.swept) >= b.full {
		b.sweep(now)
	}
	e := b.m[who]
	if e == nil {
		if len(b.m) >= b.max {
			b.sweep(now)
		}
		if len(b.m) >= b.max {
			b.dropOldest()
		}
		e = &bucket{lim: rate.NewLimiter(b.limit, b.burst)}
		b.m[who] = e
	}
	e.last = now
	res := e.lim.ReserveN(now, 1)
	if !res.OK() {
		return b.full
	}
	if d := res.DelayFrom(now); d > 0 {
		res.CancelAt(now) // a refused request costs nothing
		return d
	}
	return 0
}

// sweep drops the buckets idle for b.full: they are full again.
func (b *buckets) sweep(now time.Time) {
	b.swept = now
	for k, e := range b.m {
		if now.Sub(e.last) >= b.full {
			delete(b.m, k)
		}
	}
}

// dropOldest drops the bucket idle longest (a linear scan: it runs only
// with max callers active within b.full).
func (b *buckets) dropOldest() {
	var oldest string
	var at time.Time
	for k, e := range b.m {
		if oldest == "" || e.last.Before(at) {
			oldest, at = k, e.last
		}
	}
	delete(b.m, oldest)
}

// len is the number of buckets held.
func (b *buckets) len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.m)
}

// gates count the calls each caller has waiting, up to max. A caller
// with none holds no entry.
type gates struct {
	max int

	mu sync.Mutex
	n  map[string]int
}

// enter counts one more waiting call of who, or reports false at the cap.
func (g *gates) enter(who string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.n[who] >= g.max {
		return false
	}
	g.n[who]++
	return true
}

// leave counts one waiting call of who less.
func (g *gates) leave(who string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.n[who]--; g.n[who] <= 0 {
		delete(g.n, who)
	}
}
