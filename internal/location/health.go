package location

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Sentinel errors.
var (
	// ErrUnknown: no location has the name.
	ErrUnknown = errors.New("unknown location")
	// ErrNoHealthyRoot: every root of the location failed its probe. It
	// is usually temporary (a mount being restored), so callers should
	// retry rather than give up.
	ErrNoHealthyRoot = errors.New("no healthy root")
)

// ProbeFunc checks one root. readErr is nil when the root exists, is a
// directory and can be listed; writeErr is nil when, in addition, files can
// be created in it. A root that cannot be read cannot be written either.
type ProbeFunc func(root string) (readErr, writeErr error)

// RootHealth is the state of one root as a probe found it.
type RootHealth struct {
	Location string `json:"location"`
	Root     string `json:"root"`
	// Index is the root's position in the location: 0 is the master.
	Index int `json:"index"`
	// Healthy: the root can be read (it exists, is a directory, lists).
	Healthy bool `json:"healthy"`
	// Writable: the root can also be written (copy targets, sync).
	Writable bool `json:"writable"`
	// Err says why the root is unhealthy or read-only; nil when it is
	// neither.
	Err error `json:"-"`
	// Latency is how long the probe took.
	Latency time.Duration `json:"latency"`
}

// Master reports whether the root is its location's master.
func (h RootHealth) Master() bool { return h.Index == 0 }

// Role is "master" or "replica".
func (h RootHealth) Role() string {
	if h.Master() {
		return "master"
	}
	return "replica"
}

// result is one probe's outcome.
type result struct {
	readErr, writeErr error
	latency           time.Duration
}

// root is one root of a location with its cached probe result.
type root struct {
	path  string
	index int

	mu      sync.Mutex
	probed  bool      // res and at are set
	at      time.Time // Clock time of res
	res     result
	pending chan struct{} // closed when the running probe ends; nil if none runs
	hung    bool          // the running probe outlived Timeout
}

// health returns the root's probe result: the cached one while it is
// younger than the TTL (unless fresh is set), else a new probe's. A probe
// that outlives the timeout counts as failed; while it is still running
// (a hung mount), later calls get that failure at once instead of waiting
// for it again, and its eventual result replaces the failure. ctx ends the
// wait, not the probe.
func (r *root) health(ctx context.Context, o *Options, fresh bool) result {
	r.mu.Lock()
	if r.probed && (r.hung || !fresh && o.Clock.Now().Sub(r.at) < o.TTL) {
		res := r.res
		r.mu.Unlock()
		return res
	}
	if r.pending == nil {
		r.pending = make(chan struct{})
		go r.probe(o, r.pending)
	}
	done := r.pending
	r.mu.Unlock()

	timer := time.NewTimer(o.Timeout)
	defer timer.Stop()
	select {
	case <-done:
		r.mu.Lock()
		defer r.mu.Unlock()
		return r.res
	case <-timer.C:
		r.mu.Lock()
		defer r.mu.Unlock()
		if r.pending == done { // still running: the root hangs
			err := fmt.Errorf("%s: probe timed out after %s", r.path, o.Timeout)
			r.probed, r.hung, r.at = true, true, o.Clock.Now()
			r.res = result{readErr: err, writeErr: err, latency: o.Timeout}
		}
		return r.res
	case <-ctx.Done():
		err := fmt.Errorf("%s: probe: %w", r.path, ctx.Err())
		return result{readErr: err, writeErr: err}
	}
}

// probe runs o.Probe on the root and stores the result; it closes done
// when finished.
func (r *root) probe(o *Options, done chan struct{}) {
	// Latency is measured with the monotonic clock: it is a duration,
	// not a time of day, and must be real even under a fake Clock.
	start := time.Now()
	readErr, writeErr := o.Probe(r.path)
	if readErr != nil && writeErr == nil {
		writeErr = readErr
	}
	res := result{readErr: readErr, writeErr: writeErr, latency: time.Since(start)}
	r.mu.Lock()
	r.probed, r.hung, r.at, r.res, r.pending = true, false, o.Clock.Now(), res, nil
	r.mu.Unlock()
	close(done)
}

// report turns a probe result into a RootHealth.
func (r *root) report(loc string, res result) RootHealth {
	h := RootHealth{
		Location: loc, Root: r.path, Index: r.index,
		Healthy: res.readErr == nil, Writable: res.writeErr == nil,
		Latency: res.latency,
	}
	switch {
	case res.readErr != nil:
		h.Err = res.readErr
	case res.writeErr != nil:
		h.Err = fmt.Errorf("read-only: %w", res.writeErr)
	}
	return h
}

// Check probes every root of every location afresh, in parallel, and
// returns their health ordered by location name and root index (for
// `dpe locations check`). The cache is refreshed as a side effect.
func (s *Set) Check(ctx context.Context) []RootHealth {
	var out []RootHealth
	for _, n := range s.names {
		out = append(out, s.check(ctx, s.locs[n])...)
	}
	return out
}

// CheckLocation probes the roots of one location afresh, like Check.
func (s *Set) CheckLocation(ctx context.Context, name string) ([]RootHealth, error) {
	l, err := s.lookup(name)
	if err != nil {
		return nil, err
	}
	return s.check(ctx, l), nil
}

// check probes the roots of l in parallel.
func (s *Set) check(ctx context.Context, l *loc) []RootHealth {
	out := make([]RootHealth, len(l.roots))
	var wg sync.WaitGroup
	for i, r := range l.roots {
		wg.Go(func() { out[i] = r.report(l.name, r.health(ctx, &s.opts, true)) })
	}
	wg.Wait()
	return out
}
