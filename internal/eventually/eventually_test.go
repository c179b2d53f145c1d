package eventually_test

import (
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dpe-engine/dpe/internal/eventually"
)

// recorder is a testing.TB that records a failure instead of stopping the
// test, so the helpers' own failures can be checked.
type recorder struct {
	testing.TB
	failed  bool
	message string
}

func (r *recorder) Helper() {}

// Fatalf records the failure. The real one calls runtime.Goexit; the
// helpers return right after it, so recording is enough here.
func (r *recorder) Fatalf(format string, args ...any) {
	r.failed = true
	r.message = fmt.Sprintf(format, args...)
}

func TestTrue(t *testing.T) {
	cases := []struct {
		name     string
		after    int32 // the condition holds from this check on; -1 never
		timeout  time.Duration
		wantFail string
	}{
		{"holds at once", 0, time.Second, ""},
		{"holds on the third check", 3, time.Second, ""},
		{"never holds", -1, 100 * time.Millisecond, "timed out after 100ms waiting for the job to finish"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var checks atomic.Int32
			r := &recorder{TB: t}
			start := time.Now()
			eventually.True(r, c.timeout, func() bool {
				n := checks.Add(1)
				return c.after >= 0 && n > c.after
			}, "the job to finish")
			if c.wantFail == "" {
				if r.failed {
					t.Fatalf("failed: %s", r.message)
				}
				if got := checks.Load(); c.after > 0 && got != c.after+1 {
					t.Errorf("checks = %d, want %d", got, c.after+1)
				}
				return
			}
			if !r.failed || r.message != c.wantFail {
				t.Fatalf("failed %v with %q, want %q", r.failed, r.message, c.wantFail)
			}
			if waited := time.Since(start); waited < c.timeout {
				t.Errorf("gave up after %v, before the timeout %v", waited, c.timeout)
			}
			if checks.Load() < 2 {
				t.Errorf("checked %d times: the helper must poll", checks.Load())
			}
		})
	}
}

type state struct{ Phase string }

func TestValue(t *testing.T) {
	t.Run("returns the value that satisfied it", func(t *testing.T) {
		var n atomic.Int32
		r := &recorder{TB: t}
		got := eventually.Value(r, time.Second, func() (int32, error) { return n.Add(1), nil },
			func(v int32) bool { return v >= 3 }, "three checks")
		if r.failed || got != 3 {
			t.Fatalf("got %d failed %v %q, want 3", got, r.failed, r.message)
		}
	})
	t.Run("an error counts as not yet", func(t *testing.T) {
		var n atomic.Int32
		r := &recorder{TB: t}
		got := eventually.Value(r, time.Second, func() (string, error) {
			if n.Add(1) < 3 {
				return "", errors.New("connection refused")
			}
			return "ready", nil
		}, func(s string) bool { return s == "ready" }, "the server")
		if r.failed || got != "ready" {
			t.Fatalf("got %q failed %v %q", got, r.failed, r.message)
		}
	})
	t.Run("timeout names the last value", func(t *testing.T) {
		r := &recorder{TB: t}
		eventually.Value(r, 60*time.Millisecond, func() (state, error) { return state{Phase: "running"}, nil },
			func(s state) bool { return s.Phase == "succeeded" }, "the instance to succeed")
		want := "timed out after 60ms waiting for the instance to succeed: last seen: {Phase:running}"
		if !r.failed || r.message != want {
			t.Fatalf("failed %v with %q, want %q", r.failed, r.message, want)
		}
	})
	t.Run("timeout names the last error", func(t *testing.T) {
		r := &recorder{TB: t}
		eventually.Value(r, 60*time.Millisecond, func() (int, error) { return 0, errors.New("503 not ready") },
			func(int) bool { return true }, "readiness")
		if !r.failed || !strings.HasSuffix(r.message, "last error: 503 not ready") {
			t.Fatalf("failed %v with %q", r.failed, r.message)
		}
	})
}

func TestNoError(t *testing.T) {
	r := &recorder{TB: t}
	var n atomic.Int32
	eventually.NoError(r, time.Second, func() error {
		if n.Add(1) < 2 {
			return errors.New("not yet")
		}
		return nil
	}, "success")
	if r.failed {
		t.Fatalf("failed: %s", r.message)
	}
	r = &recorder{TB: t}
	eventually.NoError(r, 40*time.Millisecond, func() error { return errors.New("disk full") }, "the write")
	if want := "timed out after 40ms waiting for the write: last error: disk full"; r.message != want {
		t.Fatalf("message %q, want %q", r.message, want)
	}
}

func TestWithin(t *testing.T) {
	var n atomic.Int32
	if !eventually.Within(time.Second, func() bool { return n.Add(1) >= 3 }) {
		t.Fatal("a condition that holds on the third check: false")
	}
	start := time.Now()
	if eventually.Within(50*time.Millisecond, func() bool { return false }) {
		t.Fatal("a condition that never holds: true")
	}
	if waited := time.Since(start); waited < 50*time.Millisecond {
		t.Errorf("gave up after %v, before the timeout", waited)
	}
}
