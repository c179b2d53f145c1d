package scheduler

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dpe-engine/dpe/internal/model"
)

var t0 = utc("2026-11-25T00:00:00Z")

// TestMisfireAfterOutage restarts a per-minute schedule whose last fire was
// at t0, one hour later: 60 fire times are due.
func TestMisfireAfterOutage(t *testing.T) {
	tests := []struct {
		name    string
		misfire string
		limit   int
		restart time.Duration // after t0
		started []time.Time   // instances, in order
		skipped map[string]string
		nSkip   int
	}{
		{name: "skip", misfire: MisfireSkip, restart: 60*time.Minute + 30*time.Second,
			nSkip: 60, skipped: map[string]string{fireKey(t0.Add(time.Minute)): ReasonMisfireSkipped, fireKey(t0.Add(time.Hour)): ReasonMisfireSkipped}},
		{name: "once", misfire: MisfireOnce, restart: 60*time.Minute + 30*time.Second,
			started: minutes(t0, 60, 60),
			nSkip:   59, skipped: map[string]string{fireKey(t0.Add(time.Minute)): ReasonMisfireCoalesced, fireKey(t0.Add(59 * time.Minute)): ReasonMisfireCoalesced}},
		{name: "once, latest on time", misfire: MisfireOnce, restart: 60*time.Minute + 500*time.Millisecond,
			started: minutes(t0, 59, 60), // the latest late one, and the on-time one
			nSkip:   58, skipped: map[string]string{fireKey(t0.Add(58 * time.Minute)): ReasonMisfireCoalesced}},
		{name: "all", misfire: MisfireAll, restart: 60*time.Minute + 30*time.Second,
			started: minutes(t0, 1, 60)},
		{name: "all over limit", misfire: MisfireAll, limit: 10, restart: 60*time.Minute + 30*time.Second,
			started: minutes(t0, 51, 60),
			nSkip:   2, skipped: map[string]string{
				fireKey(t0.Add(50 * time.Minute)): ReasonMisfireOverLimit,
				fireKey(t0.Add(time.Minute)):      ReasonMisfireOverLimit + " (as is every later fire before 2026-11-25T00:50:00Z)",
			}},
		{name: "skip over limit", misfire: MisfireSkip, limit: 10, restart: 60*time.Minute + 30*time.Second,
			nSkip: 12, skipped: map[string]string{
				fireKey(t0.Add(time.Minute)): ReasonMisfireSkipped + " (as is every later fire before 2026-11-25T00:50:00Z)",
				fireKey(t0.Add(time.Hour)):   ReasonMisfireSkipped,
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newFakeServer(t)
			srv.setLast("purge", t0)
			clk := newFakeClock(t0.Add(tt.restart))
			cfg := Config{Name: "purge", Cron: "* * * * *", Template: "purge", Misfire: tt.misfire, MisfireLimit: tt.limit}
			startScheduler(t, Options{Client: srv.newClient(t), Schedules: []Config{cfg}, Mode: concurrent(), Clock: clk})
			clk.waitIdle(t, 1)

			if got, want := srv.instanceNames(), names("purge", tt.started...); !slices.Equal(got, want) {
				t.Errorf("instances:\n%s\nwant:\n%s", join(got), join(want))
			}
			skips := srv.recordsOf(model.RecordSkipped)
			if len(skips) != tt.nSkip {
				t.Errorf("%d skipped records, want %d:\n%s", len(skips), tt.nSkip, join(keysOf(skips)))
			}
			for key, reason := range tt.skipped {
				i := slices.IndexFunc(skips, func(r model.TriggerRecord) bool { return r.Key == key })
				if i < 0 {
					t.Errorf("no skipped record for %s", key)
				} else if skips[i].Reason != reason || skips[i].Instance != "schedule/purge/"+key {
					t.Errorf("record %+v, want reason %q", skips[i], reason)
				}
			}
			if got := len(srv.recordsOf(model.RecordStarted)); got != len(tt.started) {
				t.Errorf("%d started records, want %d", got, len(tt.started))
			}
			if got, want := srv.last("purge"), t0.Add(time.Hour); !got.Equal(want) {
				t.Errorf("last %s, want %s", got, want)
			}

			// Back to normal: the next fire is on time and starts.
			clk.runUntil(t, 1, t0.Add(61*time.Minute))
			if got := srv.instanceNames(); len(got) == 0 || got[len(got)-1] != InstanceName("purge", t0.Add(61*time.Minute)) {
				t.Errorf("after the catch-up the 01:01 fire did not start: %v", got)
			}
		})
	}
}

func TestDueTimesBounded(t *testing.T) {
	cc, err := (&Config{Name: "x", Cron: "* * * * * *", Template: "t"}).compile()
	if err != nil {
		t.Fatal(err)
	}
	// A week of a per-second schedule: 604800 fire times, 11 judged.
	after := t0
	upto := t0.Add(7 * 24 * time.Hour)
	times, omitted := dueTimes(cc.sched, after, upto, 11)
	if len(times) != 11 || !times[10].Equal(upto) || !times[0].Equal(upto.Add(-10*time.Second)) {
		t.Errorf("times %v", times)
	}
	if !omitted.Equal(t0.Add(time.Second)) {
		t.Errorf("omitted %s, want %s", omitted, t0.Add(time.Second))
	}
	// Fewer than the limit: all of them, nothing omitted.
	times, omitted = dueTimes(cc.sched, after, t0.Add(3*time.Second), 11)
	if len(times) != 3 || !omitted.IsZero() {
		t.Errorf("times %v omitted %v", times, omitted)
	}
	// Nothing due.
	if times, _ := dueTimes(cc.sched, after, after, 11); len(times) != 0 {
		t.Errorf("times %v", times)
	}
}

func TestPlanKeepsPendingFires(t *testing.T) {
	cc, err := (&Config{Name: "x", Cron: "* * * * *", Template: "t", Misfire: MisfireSkip}).compile()
	if err != nil {
		t.Fatal(err)
	}
	// 00:01 was decided to fire; the call failed; an hour later it still
	// fires while the policy skips the rest.
	fires := plan(cc, t0, t0.Add(time.Hour+time.Minute+30*time.Second), []time.Time{t0.Add(time.Minute)})
	var fired []string
	for _, f := range fires {
		if !f.skip {
			fired = append(fired, fireKey(f.at))
		}
	}
	if strings.Join(fired, ",") != fireKey(t0.Add(time.Minute)) {
		t.Errorf("fired %v", fired)
	}
}
