package backoff

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

func TestCeiling(t *testing.T) {
	tests := []struct {
		name string
		p    Policy
		want []time.Duration // attempts 0, 1, 2, ...
	}{
		{"doubling to the cap", Policy{Initial: time.Second, Max: 30 * time.Second},
			[]time.Duration{1 * time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second, 30 * time.Second, 30 * time.Second}},
		{"client defaults", Policy{Initial: 50 * time.Millisecond, Max: 2 * time.Second, Multiplier: 2},
			[]time.Duration{50 * time.Millisecond, 100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond, 800 * time.Millisecond, 1600 * time.Millisecond, 2 * time.Second}},
		{"constant", Policy{Initial: 3 * time.Second, Max: 3 * time.Second, Multiplier: 1},
			[]time.Duration{3 * time.Second, 3 * time.Second, 3 * time.Second}},
		{"triple", Policy{Initial: time.Millisecond, Max: time.Second, Multiplier: 3},
			[]time.Duration{time.Millisecond, 3 * time.Millisecond, 9 * time.Millisecond}},
		{"no initial", Policy{Max: time.Second}, []time.Duration{0, 0}},
		{"max below initial caps the first too", Policy{Initial: time.Second, Max: time.Millisecond},
			[]time.Duration{time.Millisecond, time.Millisecond}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for n, want := range tt.want {
				if got := tt.p.Ceiling(n); got != want {
					t.Errorf("Ceiling(%d) = %v, want %v", n, got, want)
				}
			}
		})
	}
}

// Huge attempt numbers and no cap saturate instead of overflowing.
func TestCeilingSaturates(t *testing.T) {
	p := Policy{Initial: time.Second}
	for _, n := range []int{62, 100, 1 << 20, math.MaxInt} {
		if got := p.Ceiling(n); got != math.MaxInt64 {
			t.Errorf("uncapped Ceiling(%d) = %v, want the largest Duration", n, got)
		}
	}
	capped := Policy{Initial: time.Second, Max: time.Minute}
	if got := capped.Ceiling(math.MaxInt); got != time.Minute {
		t.Errorf("capped Ceiling(MaxInt) = %v, want 1m", got)
	}
	if got := capped.Ceiling(-5); got != time.Second {
		t.Errorf("Ceiling(-5) = %v, want the initial 1s", got)
	}
	if got := capped.Delay(math.MaxInt); got != time.Minute {
		t.Errorf("unjittered Delay(MaxInt) = %v, want 1m", got)
	}
	full := Policy{Initial: time.Second, Jitter: 1}
	if got := full.Delay(1000); got < 0 {
		t.Errorf("full jitter on the largest Duration = %v, want >= 0", got)
	}
}

func TestDelayJitterRange(t *testing.T) {
	tests := []struct {
		jitter float64
		lo     time.Duration // as a fraction of the 1s ceiling
	}{
		{0, time.Second},
		{0.5, 500 * time.Millisecond},
		{1, 0},
		{2, 0},            // clamped to 1
		{-1, time.Second}, // clamped to 0
	}
	for _, tt := range tests {
		p := Policy{Initial: time.Second, Max: time.Second, Jitter: tt.jitter, Source: rand.NewPCG(1, 2)}
		var seenLow, seenHigh bool
		for range 2000 {
			d := p.Delay(3)
			if d < tt.lo || d > time.Second {
				t.Fatalf("jitter %v: Delay = %v, outside [%v, 1s]", tt.jitter, d, tt.lo)
			}
			// The draws cover the range: some in its lowest and some in
			// its highest tenth.
			span := time.Second - tt.lo
			seenLow = seenLow || d <= tt.lo+span/10
			seenHigh = seenHigh || d >= time.Second-span/10
		}
		if !seenLow || !seenHigh {
			t.Errorf("jitter %v: 2000 draws missed an end of the range (low %v, high %v)", tt.jitter, seenLow, seenHigh)
		}
	}
}

// A seeded source gives a repeatable sequence; the global one is used
// when none is set.
func TestDelayDeterministicWithSource(t *testing.T) {
	draw := func() []time.Duration {
		p := Policy{Initial: 100 * time.Millisecond, Max: 5 * time.Second, Jitter: 0.5, Source: rand.NewPCG(7, 9)}
		var out []time.Duration
		for n := range 10 {
			out = append(out, p.Delay(n))
		}
		return out
	}
	a, b := draw(), draw()
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("draw %d: %v then %v with the same seed", i, a[i], b[i])
		}
	}
	p := Policy{Initial: time.Second, Jitter: 1}
	if d := p.Delay(0); d < 0 || d > time.Second {
		t.Errorf("global source: Delay = %v, outside [0, 1s]", d)
	}
}
