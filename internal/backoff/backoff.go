// Package backoff computes the pauses between retries: capped exponential
// growth with jitter, so copies that failed together do not retry in
// lockstep. The pause itself is clock.Sleep.
package backoff

import (
	"math"
	"math/rand/v2"
	"time"
)

// Policy is a capped, jittered exponential back-off. The pause before
// retry attempt n (0-based) has the ceiling
//
//	min(Max, Initial·Multiplier^n)
//
// and is drawn uniformly from [ceiling·(1-Jitter), ceiling]. Jitter 1 is
// "full jitter" (anywhere from 0 to the ceiling), 0.5 keeps at least half
// the ceiling, 0 is no jitter. A Policy is a value; Delay is safe for
// concurrent use unless Source is set.
type Policy struct {
	// Initial is the ceiling of the first pause.
	Initial time.Duration
	// Max caps every ceiling. Zero: no cap (besides the largest Duration).
	Max time.Duration
	// Multiplier grows the ceiling per attempt. Zero: 2. 1: constant.
	Multiplier float64
	// Jitter is the fraction of the ceiling that is random, in [0, 1];
	// values outside are clamped.
	Jitter float64
	// Source, when set, draws the jitter (tests seed it for a repeatable
	// sequence; a Source is not safe for concurrent use). Nil: the
	// goroutine-safe global generator of math/rand/v2.
	Source rand.Source
}

// Ceiling returns the pause before attempt n without jitter.
func (p Policy) Ceiling(n int) time.Duration {
	if p.Initial <= 0 {
		return 0
	}
	m := p.Multiplier
	if m == 0 {
		m = 2
	}
	limit := time.Duration(math.MaxInt64)
	if p.Max > 0 {
		limit = p.Max
	}
	d := float64(p.Initial) * math.Pow(m, float64(max(n, 0)))
	if d >= float64(limit) || math.IsNaN(d) {
		return limit
	}
	return time.Duration(d)
}

// Delay returns the jittered pause before attempt n.
func (p Policy) Delay(n int) time.Duration {
	return p.Jittered(p.Ceiling(n))
}

// Jittered returns d less a random part of up to Jitter·d: a pause in
// [d·(1-Jitter), d].
func (p Policy) Jittered(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	j := min(max(p.Jitter, 0), 1)
	span := d // j == 1; and float64(d) may round above the largest Duration
	if j < 1 {
		span = min(time.Duration(float64(d)*j), d)
	}
	if span <= 0 {
		return d
	}
	if span == math.MaxInt64 {
		span-- // rand's bound is span+1
	}
	var r int64
	if p.Source != nil {
		r = rand.New(p.Source).Int64N(int64(span) + 1)
	} else {
		r = rand.Int64N(int64(span) + 1)
	}
	return d - time.Duration(r)
}
