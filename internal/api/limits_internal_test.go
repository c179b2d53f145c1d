package api

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dpe-engine/dpe/internal/model"
)

// TestBucketsRate: a caller may make Burst changes at once, then one per
// 1/Rate; the refusal says when the next is due; callers do not share a
// bucket. Times are explicit: no clock runs.
func TestBucketsRate(t *testing.T) {
	b := newBuckets(2, 3, 100) // 2 per second, 3 at once
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	steps := []struct {
		who  string
		at   time.Duration
		want time.Duration // 0: allowed
	}{
		{"a", 0, 0}, {"a", 0, 0}, {"a", 0, 0},
		{"a", 0, 500 * time.Millisecond},
		{"a", 0, 500 * time.Millisecond}, // a refusal took nothing
		{"b", 0, 0},
		{"a", 400 * time.Millisecond, 100 * time.Millisecond},
		{"a", 500 * time.Millisecond, 0},
		{"a", 500 * time.Millisecond, 500 * time.Millisecond},
		{"a", 2 * time.Second, 0},
	}
	for i, s := range steps {
		// The limiter computes in float seconds: within a microsecond.
		if got := b.take(s.who, t0.Add(s.at)); (got == 0) != (s.want == 0) || (got-s.want).Abs() > time.Microsecond {
			t.Fatalf("step %d (%s at %v): wait %v, want %v", i, s.who, s.at, got, s.want)
		}
	}
}

// TestBucketsBounded: buckets idle long enough to be full again are
// dropped, and no more than max are ever held, whatever the number of
// callers.
func TestBucketsBounded(t *testing.T) {
	b := newBuckets(10, 20, 50) // full after 2 s
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range 1000 {
		b.take(fmt.Sprintf("address 10.0.%d.%d", i/256, i%256), t0.Add(time.Duration(i)*time.Millisecond))
		if n := b.len(); n > 50 {
			t.Fatalf("after %d callers: %d buckets, want at most 50", i+1, n)
		}
	}
	// An active caller survives the newcomers that fill the map.
	for range 20 {
		b.take("token busy", t0.Add(time.Second))
	}
	if d := b.take("token busy", t0.Add(time.Second)); d == 0 {
		t.Fatal("busy caller: allowed past its burst")
	}
	if n := b.len(); n > 50 {
		t.Fatalf("%d buckets, want at most 50", n)
	}
	// Idle for the time a bucket takes to fill: all dropped on the next call.
	b.take("token late", t0.Add(time.Hour))
	if n := b.len(); n != 1 {
		t.Fatalf("after every caller went idle: %d buckets, want 1", n)
	}
}

// TestGatesBounded: the wait counts hold no entry for a caller with no
// call waiting.
func TestGatesBounded(t *testing.T) {
	g := &gates{max: 2, n: map[string]int{}}
	got := []bool{g.enter("a"), g.enter("a"), g.enter("a"), g.enter("b")}
	if want := []bool{true, true, false, true}; !slices.Equal(got, want) {
		t.Fatalf("enter a, a, a, b = %v, want %v (two for a, a third refused, b apart)", got, want)
	}
	g.leave("a")
	g.leave("a")
	g.leave("b")
	if len(g.n) != 0 {
		t.Fatalf("counts %v, want none", g.n)
	}
}

func TestParseRate(t *testing.T) {
	tests := []struct {
		in   string
		want float64
		bad  bool
	}{
		{"50/s", 50, false}, {"50", 50, false}, {"600/m", 10, false}, {"7200/h", 2, false},
		{"0", 0, false}, {"0.5/s", 0.5, false},
		{"-1/s", 0, true}, {"x", 0, true}, {"5/d", 0, true}, {"", 0, true}, {"Inf", 0, true}, {"NaN", 0, true},
	}
	for _, tc := range tests {
		got, err := ParseRate(tc.in)
		if (err != nil) != tc.bad || got != tc.want {
			t.Errorf("ParseRate(%q) = %v, %v; want %v, error %v", tc.in, got, err, tc.want, tc.bad)
		}
	}
}

// TestUnthrottledRoutes: the rate limit spares exactly the mutating
// routes of machine roles (processor, trigger): every one of them, and no
// route an operator or a viewer may call. The long-poll routes exist and
// mutate.
func TestUnthrottledRoutes(t *testing.T) {
	machine := func(roles []model.Role) bool {
		return slices.Contains(roles, processor) || slices.Contains(roles, trig)
	}
	for p, roles := range routeRoles {
		method, _, _ := strings.Cut(p, " ")
		if !mutating(method) {
			if unthrottled[p] {
				t.Errorf("%s: listed as unthrottled but does not change anything", p)
			}
			continue
		}
		people := slices.Contains(roles, operator) || slices.Contains(roles, viewer)
		if want := machine(roles) && !people; unthrottled[p] != want {
			t.Errorf("%s (roles %v): unthrottled %v, want %v", p, roles, unthrottled[p], want)
		}
	}
	for p := range unthrottled {
		if routeRoles[p] == nil {
			t.Errorf("unthrottled %s: no such route", p)
		}
	}
	for p := range longPolls {
		if routeRoles[p] == nil || !unthrottled[p] {
			t.Errorf("long-poll %s: not a route, or rate limited", p)
		}
	}
}

// BenchmarkBucketsTake: the cost the rate limit adds to a change, with
// 1000 callers taking turns.
func BenchmarkBucketsTake(b *testing.B) {
	bk := newBuckets(100, 200, maxBuckets)
	who := make([]string, 1000)
	for i := range who {
		who[i] = fmt.Sprintf("token t%d", i)
	}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	i := 0
	for b.Loop() {
		bk.take(who[i%len(who)], t0.Add(time.Duration(i)*time.Microsecond))
		i++
	}
}
