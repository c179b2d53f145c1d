package store

import (
	"slices"
	"testing"
	"time"
)

func TestLatency(t *testing.T) {
	var l Latency
	for _, d := range []time.Duration{0, 250 * time.Microsecond, 300 * time.Microsecond, time.Millisecond, time.Minute} {
		l.Observe(d)
	}
	s := l.Snapshot()
	if s.Count != 5 {
		t.Errorf("count %d, want 5", s.Count)
	}
	if want := time.Minute + 1550*time.Microsecond; s.Sum != want {
		t.Errorf("sum %v, want %v", s.Sum, want)
	}
	// ≤250µs: 2; ≤500µs: 3; ≤1ms and up: 4; the minute only in Count.
	want := []uint64{2, 3, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4}
	if !slices.Equal(s.Cumulative, want) {
		t.Errorf("cumulative %v, want %v", s.Cumulative, want)
	}
	if len(l.counts) != len(CommitBuckets)+1 {
		t.Errorf("%d counters for %d buckets", len(l.counts), len(CommitBuckets))
	}
}
