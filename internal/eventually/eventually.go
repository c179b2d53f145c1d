// Package eventually waits in tests for a state that other goroutines or
// processes reach on their own: it polls a condition at a short interval
// until it holds or a deadline passes, and then fails the test with what
// was awaited and the last state seen. It replaces hand-written loops
// around time.Sleep, so a test waits exactly as long as it must and no
// test can hang.
package eventually

import (
	"fmt"
	"testing"
	"time"
)

// The pause between two checks starts at FirstInterval and grows by half
// after each check up to MaxInterval: a state reached at once is seen at
// once, and a long wait on an expensive check (listing thousands of rows
// of a server under test) does not load what it waits for.
const (
	FirstInterval = 10 * time.Millisecond
	MaxInterval   = 250 * time.Millisecond
)

// True polls cond until it returns true; after timeout it fails t with
// "timed out after <timeout> waiting for <what>".
func True(t testing.TB, timeout time.Duration, cond func() bool, what string) {
	t.Helper()
	if !poll(timeout, cond) {
		t.Fatalf("timed out after %v waiting for %s", timeout, what)
	}
}

// Value polls get until ok returns true for the value it gave, and returns
// that value. A call that returns an error counts as not yet. After timeout
// it fails t naming what was awaited and the last value or error seen, so
// the failure says where the state got stuck.
func Value[V any](t testing.TB, timeout time.Duration, get func() (V, error), ok func(V) bool, what string) V {
	t.Helper()
	var (
		last    V
		lastErr error
		seen    bool
	)
	done := poll(timeout, func() bool {
		v, err := get()
		seen = true
		last, lastErr = v, err
		return err == nil && ok(v)
	})
	if done {
		return last
	}
	switch {
	case !seen:
		t.Fatalf("timed out after %v waiting for %s: never checked", timeout, what)
	case lastErr != nil:
		t.Fatalf("timed out after %v waiting for %s: last error: %v", timeout, what, lastErr)
	default:
		t.Fatalf("timed out after %v waiting for %s: last seen: %s", timeout, what, show(last))
	}
	return last
}

// NoError polls f until it returns nil; after timeout it fails t with the
// last error f returned.
func NoError(t testing.TB, timeout time.Duration, f func() error, what string) {
	t.Helper()
	Value(t, timeout, func() (struct{}, error) { return struct{}{}, f() },
		func(struct{}) bool { return true }, what)
}

// Within polls cond as True does and reports whether it held within
// timeout, failing nothing: for a caller whose failure needs more than a
// message (diagnostics gathered, a non-fatal error, a check that goes on).
func Within(timeout time.Duration, cond func() bool) bool { return poll(timeout, cond) }

// poll checks cond at once and then at growing intervals until it holds
// (true) or timeout has passed (false). The last check is made at the
// deadline, so a slow check does not lose its last chance.
func poll(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	interval := FirstInterval
	for {
		if cond() {
			return true
		}
		left := time.Until(deadline)
		if left <= 0 {
			return false
		}
		time.Sleep(min(interval, left))
		interval = min(interval*3/2, MaxInterval)
	}
}

// show prints v with its field names, for a failure message.
func show(v any) string {
	if s, ok := v.(fmt.Stringer); ok {
		return s.String()
	}
	return fmt.Sprintf("%+v", v)
}
