package wake_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/dpe-engine/dpe/internal/server/wake"
)

// poll runs hub.Poll in a goroutine; the channel gets its error and how
// many times try ran.
type pollResult struct {
	err   error
	tries int32
}

func startPoll(ctx context.Context, h *wake.Hub, keys []string, wait, tick time.Duration, doneAfter int32) <-chan pollResult {
	out := make(chan pollResult, 1)
	go func() {
		var tries atomic.Int32
		err := h.Poll(ctx, keys, wait, tick, func() (bool, error) {
			return tries.Add(1) >= doneAfter && doneAfter > 0, nil
		})
		out <- pollResult{err, tries.Load()}
	}()
	return out
}

// TestPoll covers what ends a long-poll, in a bubble whose clock only
// moves when every goroutine is blocked: a signal of a key waited on, a
// tick, the wait, the context, and the hub closing.
func TestPoll(t *testing.T) {
	cases := []struct {
		name      string
		keys      []string
		wait      time.Duration
		tick      time.Duration
		doneAfter int32 // try reports done on this call; 0 never
		act       func(h *wake.Hub, cancel context.CancelFunc)
		wantErr   error
		wantTries int32
		wantTook  time.Duration
	}{
		{"done at once", []string{"a"}, time.Minute, time.Hour, 1, nil, nil, 1, 0},
		{"signal of a waited key", []string{"a", "b"}, time.Minute, time.Hour, 2,
			func(h *wake.Hub, _ context.CancelFunc) { h.Signal("b") }, nil, 2, 0},
		{"signal of another key is ignored", []string{"a"}, 10 * time.Second, time.Hour, 0,
			func(h *wake.Hub, _ context.CancelFunc) { h.Signal("z") }, nil, 2, 10 * time.Second},
		{"tick re-checks", []string{"a"}, time.Minute, time.Second, 3, nil, nil, 3, 2 * time.Second},
		{"wait ends it empty", []string{"a"}, 5 * time.Second, 2 * time.Second, 0, nil, nil, 4, 5 * time.Second},
		{"context ends it", []string{"a"}, time.Minute, time.Hour, 0,
			func(_ *wake.Hub, cancel context.CancelFunc) { cancel() }, context.Canceled, 1, 0},
		{"hub close ends it", []string{"a"}, time.Minute, time.Hour, 0,
			func(h *wake.Hub, _ context.CancelFunc) { h.Close() }, nil, 1, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				h := wake.NewHub()
				defer h.Close()
				ctx, cancel := context.WithCancel(t.Context())
				defer cancel()
				start := time.Now()
				res := startPoll(ctx, h, c.keys, c.wait, c.tick, c.doneAfter)
				synctest.Wait() // the poll tried once and sleeps
				if c.act != nil {
					c.act(h, cancel)
				}
				r := <-res
				if !errors.Is(r.err, c.wantErr) || r.tries != c.wantTries {
					t.Fatalf("err %v tries %d, want %v and %d", r.err, r.tries, c.wantErr, c.wantTries)
				}
				if took := time.Since(start); took != c.wantTook {
					t.Errorf("took %v, want %v", took, c.wantTook)
				}
			})
		})
	}
}

// TestSignalBeforeSleepIsKept: a signal that lands between a try and the
// sleep still wakes the poll (the waiter registers before each try).
func TestSignalBeforeSleepIsKept(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := wake.NewHub()
		defer h.Close()
		var tries int
		start := time.Now()
		err := h.Poll(t.Context(), []string{"a"}, time.Minute, time.Hour, func() (bool, error) {
			tries++
			if tries == 1 {
				h.Signal("a") // as if a submit committed right after the query
				return false, nil
			}
			return true, nil
		})
		if err != nil || tries != 2 || time.Since(start) != 0 {
			t.Fatalf("err %v tries %d after %v: the signal was lost", err, tries, time.Since(start))
		}
	})
}

// TestClosedHubPollsOnce: after Close a poll tries once and returns.
func TestClosedHubPollsOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := wake.NewHub()
		h.Close()
		h.Close() // idempotent
		var tries int
		err := h.Poll(t.Context(), []string{"a"}, time.Minute, time.Hour, func() (bool, error) { tries++; return false, nil })
		if err != nil || tries != 1 {
			t.Fatalf("err %v tries %d, want one try", err, tries)
		}
	})
}

// TestTryError ends the poll with the error.
func TestTryError(t *testing.T) {
	h := wake.NewHub()
	defer h.Close()
	boom := errors.New("database down")
	if err := h.Poll(t.Context(), []string{"a"}, time.Minute, time.Hour, func() (bool, error) { return false, boom }); !errors.Is(err, boom) {
		t.Fatalf("err %v, want %v", err, boom)
	}
}
