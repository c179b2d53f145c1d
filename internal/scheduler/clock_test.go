package scheduler

import (
	"context"
	"testing"
	"time"

	"github.com/dpe-engine/dpe/internal/clock"
)

// fakeClock is a clock.Fake with the scheduler tests' driving helpers.
// The code under test blocks in After when it is idle, so "every goroutine
// waits on the clock" is how a test knows it is quiescent.
type fakeClock struct{ *clock.Fake }

func newFakeClock(t time.Time) *fakeClock { return &fakeClock{clock.NewFake(t)} }

// set moves the time to t and wakes the waiters due by then.
func (c *fakeClock) set(t time.Time) { c.Set(t) }

// waitIdle blocks until n goroutines wait on the clock. The deadline is
// real time, but it only bounds a failing test: a passing one never waits
// for it.
func (c *fakeClock) waitIdle(t testing.TB, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := c.BlockUntil(ctx, n); err != nil {
		t.Fatalf("fake clock at %s: %d of %d goroutines waiting after 20s", c.Now(), c.Waiting(), n)
	}
}

// runUntil drives the time to end, stopping at every wake-up asked for,
// with n goroutines that wait on the clock when idle. It returns with them
// idle at end.
func (c *fakeClock) runUntil(t testing.TB, n int, end time.Time) {
	t.Helper()
	for {
		c.waitIdle(t, n)
		now, next := c.Now(), end
		if at, ok := c.Next(); ok && at.Before(next) {
			next = at
		}
		if !now.Before(end) {
			return
		}
		c.set(next)
	}
}
