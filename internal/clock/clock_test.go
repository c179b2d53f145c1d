package clock

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"
)

var t0 = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)

func TestFakeAdvanceFiresDueWaits(t *testing.T) {
	f := NewFake(t0)
	early, late := f.After(time.Second), f.After(3*time.Second)
	if n := f.Waiting(); n != 2 {
		t.Fatalf("Waiting = %d, want 2", n)
	}
	if at, ok := f.Next(); !ok || !at.Equal(t0.Add(time.Second)) {
		t.Fatalf("Next = %v, %v; want %v", at, ok, t0.Add(time.Second))
	}
	f.Advance(999 * time.Millisecond)
	select {
	case <-early:
		t.Fatal("a 1s wait fired after 999ms")
	default:
	}
	f.Advance(time.Millisecond)
	if got := <-early; !got.Equal(t0.Add(time.Second)) {
		t.Errorf("early fired with %v", got)
	}
	f.Set(t0.Add(time.Hour))
	if got := <-late; !got.Equal(t0.Add(time.Hour)) {
		t.Errorf("late fired with %v", got)
	}
	if n := f.Waiting(); n != 0 {
		t.Errorf("Waiting = %d after all fired", n)
	}
	if _, ok := f.Next(); ok {
		t.Error("Next reports a wait when none is left")
	}
	select {
	case got := <-f.After(0):
		if !got.Equal(t0.Add(time.Hour)) {
			t.Errorf("After(0) fired with %v", got)
		}
	default:
		t.Error("After(0) did not fire at once")
	}
}

func TestFakeNowAndSet(t *testing.T) {
	f := NewFake(t0)
	f.Advance(90 * time.Second)
	if got := f.Now(); !got.Equal(t0.Add(90 * time.Second)) {
		t.Errorf("Now = %v after Advance", got)
	}
	f.Set(t0)
	if got := f.Now(); !got.Equal(t0) {
		t.Errorf("Now = %v after Set", got)
	}
}

func TestSleepOnFake(t *testing.T) {
	f := NewFake(t0)
	done := make(chan error, 1)
	go func() { done <- Sleep(t.Context(), f, 5*time.Second) }()
	if err := f.BlockUntil(t.Context(), 1); err != nil {
		t.Fatal(err)
	}
	f.Advance(5 * time.Second)
	if err := <-done; err != nil {
		t.Errorf("Sleep = %v, want nil", err)
	}
}

func TestSleepCancel(t *testing.T) {
	f := NewFake(t0)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- Sleep(ctx, f, time.Hour) }()
	if err := f.BlockUntil(t.Context(), 1); err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("Sleep after cancel = %v, want context.Canceled", err)
	}
	// An ended ctx wins even over a zero wait.
	if err := Sleep(ctx, f, 0); !errors.Is(err, context.Canceled) {
		t.Errorf("Sleep(ended ctx, 0) = %v, want context.Canceled", err)
	}
	if err := Sleep(t.Context(), f, -time.Second); err != nil {
		t.Errorf("Sleep(negative) = %v, want nil", err)
	}
}

// Real waits on the time package, so synctest's fake time drives it.
func TestRealInBubble(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var c Clock = Real{}
		start := c.Now()
		if start.Location() != time.UTC {
			t.Errorf("Real.Now location = %v, want UTC", start.Location())
		}
		if err := Sleep(t.Context(), c, time.Minute); err != nil {
			t.Fatal(err)
		}
		if got := c.Now().Sub(start); got != time.Minute {
			t.Errorf("slept %v, want 1m", got)
		}
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		if err := Sleep(ctx, c, time.Hour); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Sleep past the deadline = %v, want DeadlineExceeded", err)
		}
		if got := c.Now().Sub(start); got != time.Minute+time.Second {
			t.Errorf("now %v after start, want 1m1s", got)
		}
	})
}

func TestBlockUntilCancel(t *testing.T) {
	f := NewFake(t0)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := f.BlockUntil(ctx, 1); !errors.Is(err, context.Canceled) {
		t.Errorf("BlockUntil = %v, want context.Canceled", err)
	}
}

// Real's stopwatch runs on the time package's monotonic reading, so inside
// a bubble it measures the bubble's fake time exactly.
func TestRealStopwatch(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var c Clock = Real{}
		elapsed := c.Stopwatch()
		if got := elapsed(); got != 0 {
			t.Errorf("elapsed at once = %v, want 0", got)
		}
		time.Sleep(90 * time.Second)
		if got := elapsed(); got != 90*time.Second {
			t.Errorf("elapsed = %v, want 1m30s", got)
		}
	})
}

func TestFakeStopwatch(t *testing.T) {
	tests := []struct {
		name string
		move func(f *Fake)
		want time.Duration
	}{
		{"none", func(*Fake) {}, 0},
		{"advance", func(f *Fake) { f.Advance(5 * time.Second) }, 5 * time.Second},
		{"set forward", func(f *Fake) { f.Set(t0.Add(time.Hour)) }, time.Hour},
		{"set back", func(f *Fake) { f.Set(t0.Add(-time.Minute)) }, -time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := NewFake(t0)
			elapsed := f.Stopwatch()
			tt.move(f)
			if got := elapsed(); got != tt.want {
				t.Errorf("elapsed = %v, want %v", got, tt.want)
			}
		})
	}
}
