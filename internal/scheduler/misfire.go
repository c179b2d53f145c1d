package scheduler

import (
	"fmt"
	"slices"
	"time"

	"github.com/robfig/cron/v3"
)

// Reasons of skipped fires.
const (
	ReasonMisfireSkipped   = "misfire: skipped"
	ReasonMisfireCoalesced = "misfire: coalesced"
	ReasonMisfireOverLimit = "misfire: over limit"
	ReasonApprovalNo       = "approval said no"
)

// fire is one due fire time and what becomes of it.
type fire struct {
	at     time.Time
	skip   bool
	reason string
	// decided: a fire decision made (and approved) earlier, kept as is.
	decided bool
}

// plan decides every fire time of c in (last, now], in time order.
//
// A fire is late when now - at > MisfireGrace; on-time fires always fire,
// late ones follow the misfire policy:
//
//   - skip: every late fire is skipped ("misfire: skipped");
//   - once: the latest late fire fires, the earlier ones are skipped
//     ("misfire: coalesced");
//   - all: the latest MisfireLimit late fires fire, older ones are skipped
//     ("misfire: over limit").
//
// To bound the work and the records after a long outage (a per-second
// schedule down for a week), only the latest MisfireLimit+1 fire times are
// judged one by one; the older ones share one skipped record, keyed by the
// earliest of them, whose reason names where the range ends.
//
// pending holds fire times decided to fire earlier whose Fire call has not
// been consumed yet: they fire whatever their lateness now (a decision is
// never dropped), and the policy judges only the others.
func plan(c *compiled, last, now time.Time, pending []time.Time) []fire {
	cfg := &c.cfg
	isPending := func(t time.Time) bool {
		return slices.ContainsFunc(pending, t.Equal)
	}
	times, omitted := dueTimes(c.sched, last, now, cfg.MisfireLimit+1)
	lateBefore := now.Add(-cfg.MisfireGrace)

	var out []fire
	var late []int // indexes in out of undecided late fires
	for _, t := range times {
		switch {
		case isPending(t):
			out = append(out, fire{at: t, decided: true})
		case t.Before(lateBefore):
			late = append(late, len(out))
			out = append(out, fire{at: t})
		default:
			out = append(out, fire{at: t})
		}
	}
	base := ReasonMisfireSkipped
	switch cfg.Misfire {
	case MisfireSkip:
		for _, i := range late {
			out[i].skip, out[i].reason = true, ReasonMisfireSkipped
		}
	case MisfireOnce:
		base = ReasonMisfireCoalesced
		for _, i := range late[:max(len(late)-1, 0)] {
			out[i].skip, out[i].reason = true, ReasonMisfireCoalesced
		}
	case MisfireAll:
		base = ReasonMisfireOverLimit
		for _, i := range late[:max(len(late)-cfg.MisfireLimit, 0)] {
			out[i].skip, out[i].reason = true, ReasonMisfireOverLimit
		}
	}
	if omitted.IsZero() {
		return out
	}

	// Fire times older than the window: pending ones still fire; the rest
	// share one record keyed by the earliest of them.
	first := times[0]
	for _, t := range pending {
		if t.After(last) && t.Before(first) {
			out = append(out, fire{at: t, decided: true})
		}
	}
	t := omitted
	for !t.IsZero() && t.Before(first) && isPending(t) {
		t = c.sched.Next(t)
	}
	if !t.IsZero() && t.Before(first) {
		out = append(out, fire{at: t, skip: true,
			reason: fmt.Sprintf("%s (as is every later fire before %s)", base, fireKey(first))})
	}
	slices.SortFunc(out, func(a, b fire) int { return a.at.Compare(b.at) })
	return out
}

// dueTimes returns the fire times of s in (after, upto]: all of them when
// there are at most limit, otherwise the latest limit ones and, as omitted,
// the earliest fire time left out. The work is bounded by the window, not
// by the length of the outage: it searches backwards from upto over
// growing spans.
func dueTimes(s cron.Schedule, after, upto time.Time, limit int) (times []time.Time, omitted time.Time) {
	first := s.Next(after)
	if first.IsZero() || first.After(upto) {
		return nil, time.Time{}
	}
	for span := time.Minute; ; span *= 4 {
		from := after
		if span < upto.Sub(after) {
			from = upto.Add(-span)
		}
		times = latest(s, from, upto, limit)
		if len(times) >= limit || from.Equal(after) {
			if first.Before(times[0]) {
				omitted = first
			}
			return times, omitted
		}
	}
}

// latest returns the latest limit fire times of s in (from, upto].
func latest(s cron.Schedule, from, upto time.Time, limit int) []time.Time {
	var buf []time.Time
	for t := s.Next(from); !t.IsZero() && !t.After(upto); t = s.Next(t) {
		buf = append(buf, t)
		if len(buf) >= 2*limit {
			buf = append(buf[:0], buf[len(buf)-limit:]...)
		}
	}
	if len(buf) > limit {
		buf = buf[len(buf)-limit:]
	}
	return buf
}
