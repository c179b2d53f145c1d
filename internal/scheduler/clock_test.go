package scheduler

import (
	"sync"
	"testing"
	"time"
)

// fakeClock is a Clock that moves only when the test says so. The code
// under test blocks in After when it is idle, so "every goroutine waits on
// the clock" is how a test knows it is quiescent.
type fakeClock struct {
	mu      sync.Mutex
	now     time.Time
	waiters []fakeWaiter
	changed chan struct{} // closed (and replaced) when a waiter is added
}

type fakeWaiter struct {
	at time.Time
	ch chan time.Time
}

func newFakeClock(t time.Time) *fakeClock {
	return &fakeClock{now: t, changed: make(chan struct{})}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan time.Time, 1)
	if d <= 0 {
		ch <- c.now
		return ch
	}
	c.waiters = append(c.waiters, fakeWaiter{at: c.now.Add(d), ch: ch})
	close(c.changed)
	c.changed = make(chan struct{})
	return ch
}

// set moves the time to t and wakes the waiters due by then.
func (c *fakeClock) set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
	kept := c.waiters[:0]
	for _, w := range c.waiters {
		if w.at.After(t) {
			kept = append(kept, w)
			continue
		}
		w.ch <- t
	}
	c.waiters = kept
}

// waitIdle blocks until n goroutines wait on the clock. The deadline is
// real time, but it only bounds a failing test: a passing one never waits
// for it.
func (c *fakeClock) waitIdle(t testing.TB, n int) {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		c.mu.Lock()
		k, ch := len(c.waiters), c.changed
		c.mu.Unlock()
		if k >= n {
			return
		}
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("fake clock at %s: %d of %d goroutines waiting after 20s", c.Now(), k, n)
		}
	}
}

// runUntil drives the time to end, stopping at every wake-up asked for,
// with n goroutines that wait on the clock when idle. It returns with them
// idle at end.
func (c *fakeClock) runUntil(t testing.TB, n int, end time.Time) {
	t.Helper()
	for {
		c.waitIdle(t, n)
		c.mu.Lock()
		now, next := c.now, end
		for _, w := range c.waiters {
			if w.at.Before(next) {
				next = w.at
			}
		}
		c.mu.Unlock()
		if !now.Before(end) {
			return
		}
		c.set(next)
	}
}
