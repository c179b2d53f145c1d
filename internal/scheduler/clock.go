package scheduler

import "time"

// Clock is the scheduler's view of time: every "what time is it" and
// every wait goes through it, so tests drive a fake one and never sleep.
// It has the method set of client.Clock, so one value can serve both.
type Clock interface {
	Now() time.Time
	// After fires once d has passed, like time.After.
	After(d time.Duration) <-chan time.Time
}

// realClock is the system clock.
type realClock struct{}

func (realClock) Now() time.Time                         { return time.Now() }
func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }
