package scheduler

import (
	"time"

	"github.com/robfig/cron/v3"
)

// allHours is the bit set of a cron hour field that matches every hour.
const allHours = 1<<24 - 1

// dstSafe is a cron schedule read in a zone with daylight saving time,
// corrected so that a change of the clocks neither skips nor doubles a
// fire of a schedule with fixed hours — the rule of Vixie cron, and what an
// operator of a nightly "30 2 * * *" in Europe/Berlin expects:
//
//   - Spring forward (last Sunday of March, 02:00 CET becomes 03:00 CEST):
//     robfig/cron finds no 02:30 that day and silently skips to the next
//     day. Here, when the schedule matches any wall time in the gap, it
//     fires once at the instant of the change (03:00 CEST = 01:00 UTC).
//   - Fall back (last Sunday of October, 03:00 CEST becomes 02:00 CET):
//     robfig/cron matches 02:30 twice, an hour apart (00:30 and 01:30
//     UTC). Here the second occurrence of a wall time is dropped.
//
// Schedules whose hour field matches every hour ("0 * * * *",
// "*/10 * * * * *") run by elapsed time and are left alone: they fire every
// real hour through either change, as Vixie cron does for wildcard jobs.
type dstSafe struct {
	spec *cron.SpecSchedule
	// naive holds the same fields read in UTC: it answers "does the
	// schedule match this wall-clock time", gaps or not.
	naive *cron.SpecSchedule
	fixed bool // the hour field does not match every hour
}

func newDSTSafe(spec *cron.SpecSchedule) *dstSafe {
	naive := *spec
	naive.Location = time.UTC
	return &dstSafe{spec: spec, naive: &naive, fixed: spec.Hour&allHours != allHours}
}

// Next returns the first fire time after t, or the zero time when there is
// none within five years (robfig/cron's horizon).
func (d *dstSafe) Next(t time.Time) time.Time {
	if !d.fixed {
		return d.spec.Next(t)
	}
	for {
		n := d.spec.Next(t)
		if n.IsZero() {
			return n
		}
		if g, ok := d.gapFire(t, n); ok {
			return g
		}
		if !d.repeated(n) {
			return n
		}
		t = n
	}
}

// gapFire finds a spring-forward change in (t, n] whose skipped wall times
// the schedule matches; the fire moves to the instant of the change.
func (d *dstSafe) gapFire(t, n time.Time) (time.Time, bool) {
	loc := d.spec.Location
	for cur := t; ; {
		_, end := cur.In(loc).ZoneBounds()
		if !end.IsZero() && !end.After(cur) {
			// Go reports an end before the instant on the last UTC day of
			// a leap year served by the zone's TZ footer rule (2040-12-31
			// in Europe/Berlin; golang/go#81583). No real change happens
			// then: look again from the next UTC midnight.
			y, m, d := cur.UTC().Date()
			cur = time.Date(y, m, d+1, 0, 0, 0, 0, time.UTC)
			continue
		}
		if end.IsZero() || end.After(n) {
			return time.Time{}, false
		}
		_, before := end.Add(-time.Nanosecond).In(loc).Zone()
		_, after := end.In(loc).Zone()
		if after > before {
			// Wall times [gapStart, gapEnd) never happened that day.
			gapStart := wall(end, before)
			gapEnd := gapStart.Add(time.Duration(after-before) * time.Second)
			if m := d.naive.Next(gapStart.Add(-time.Second)); !m.IsZero() && m.Before(gapEnd) {
				return end, true
			}
		}
		cur = end
	}
}

// repeated reports whether n's wall-clock time already happened once, in
// the hour before a fall-back change.
func (d *dstSafe) repeated(n time.Time) bool {
	loc := d.spec.Location
	start, _ := n.In(loc).ZoneBounds()
	if start.IsZero() {
		return false
	}
	_, prev := start.Add(-time.Nanosecond).In(loc).Zone()
	_, cur := n.In(loc).Zone()
	return prev > cur && n.Sub(start) < time.Duration(prev-cur)*time.Second
}

// wall returns t's wall-clock reading at the given UTC offset, as a UTC
// time (arithmetic without zone rules).
func wall(t time.Time, offset int) time.Time {
	return t.Add(time.Duration(offset) * time.Second).UTC()
}
