// Package clock gives domain code an injectable notion of time: what time
// it is, how much time has passed, and waiting for a duration to pass. Lease expiry, back-off,
// schedules and deadlines all go through a Clock, so they can be tested
// with the Fake clock (moved by hand) or with the Real clock inside a
// testing/synctest bubble (whose fake time drives the time package).
package clock

import (
	"context"
	"sync"
	"time"
)

// Clock tells the time, measures time passing and waits.
type Clock interface {
	// Now returns the current time.
	Now() time.Time
	// Stopwatch starts measuring: the function it returns tells how much
	// time has passed since Stopwatch was called. Unlike the difference
	// of two Now readings, it does not move when the wall clock is set
	// (an NTP step): bounds that must hold, such as how long a lease is
	// still ours, are measured with it.
	Stopwatch() func() time.Duration
	// After sends the time on the returned channel once d has passed,
	// like time.After. A d <= 0 fires at once.
	After(d time.Duration) <-chan time.Time
}

// Real is the system clock, in UTC. Its waits are the time package's, so
// inside a testing/synctest bubble it runs on the bubble's fake time.
type Real struct{}

// Now returns the current UTC time.
func (Real) Now() time.Time { return time.Now().UTC() }

// Stopwatch measures with Go's monotonic clock reading (which the UTC
// time of Now drops), so setting the system clock does not move it.
func (Real) Stopwatch() func() time.Duration {
	start := time.Now()
	return func() time.Duration { return time.Since(start) }
}

// After is time.After.
func (Real) After(d time.Duration) <-chan time.Time { return time.After(d) }

// Sleep waits d on c, or until ctx ends: then it returns ctx.Err(). A
// d <= 0 returns at once (nil unless ctx has already ended).
func Sleep(ctx context.Context, c Clock, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if d <= 0 {
		return nil
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-c.After(d):
		return nil
	}
}

// Fake is a manually moved clock for tests: Advance and Set move its time
// and fire the waits (After) that are due by then. The zero value starts
// at the zero time; use NewFake for a useful start. A Fake is safe for
// concurrent use.
type Fake struct {
	mu      sync.Mutex
	now     time.Time
	waiters []waiter
	changed chan struct{} // closed (and replaced) when a waiter is added
}

type waiter struct {
	at time.Time
	ch chan time.Time
}

// NewFake returns a Fake clock set to t.
func NewFake(t time.Time) *Fake { return &Fake{now: t} }

// Now returns the fake time.
func (f *Fake) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

// Stopwatch measures the fake time: Advance moves it forward, and Set
// moves it by the difference between the old and the new time (so a Set
// backwards makes it go back: Fake has no separate wall clock).
func (f *Fake) Stopwatch() func() time.Duration {
	start := f.Now()
	return func() time.Duration { return f.Now().Sub(start) }
}

// After returns a channel that receives the fake time once the clock has
// been moved d past the current time (at once when d <= 0).
func (f *Fake) After(d time.Duration) <-chan time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	ch := make(chan time.Time, 1) // buffered: firing never blocks the mover
	if d <= 0 {
		ch <- f.now
		return ch
	}
	f.waiters = append(f.waiters, waiter{at: f.now.Add(d), ch: ch})
	if f.changed != nil {
		close(f.changed)
		f.changed = nil
	}
	return ch
}

// Advance moves the fake time forward by d and fires the waits due by
// then.
func (f *Fake) Advance(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.setLocked(f.now.Add(d))
}

// Set moves the fake time to t and fires the waits due by then.
func (f *Fake) Set(t time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.setLocked(t)
}

func (f *Fake) setLocked(t time.Time) {
	f.now = t
	kept := f.waiters[:0]
	for _, w := range f.waiters {
		if w.at.After(t) {
			kept = append(kept, w)
			continue
		}
		w.ch <- t
	}
	clear(f.waiters[len(kept):]) // drop the fired channels
	f.waiters = kept
}

// Waiting returns the number of waits not yet fired.
func (f *Fake) Waiting() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.waiters)
}

// Next returns the time of the earliest wait not yet fired; ok is false
// when there is none.
func (f *Fake) Next() (at time.Time, ok bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, w := range f.waiters {
		if !ok || w.at.Before(at) {
			at, ok = w.at, true
		}
	}
	return at, ok
}

// BlockUntil waits until at least n waits are pending on the clock (code
// under test blocked in After or Sleep), or ctx ends. It is how a test
// knows the code it drives has reached its next wait, without sleeping.
// A wait given up (a Sleep whose ctx ended) stays pending until the clock
// passes its time, and is counted until then.
func (f *Fake) BlockUntil(ctx context.Context, n int) error {
	for {
		f.mu.Lock()
		if len(f.waiters) >= n {
			f.mu.Unlock()
			return nil
		}
		if f.changed == nil {
			f.changed = make(chan struct{})
		}
		ch := f.changed
		f.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
