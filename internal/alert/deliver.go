package alert

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/dpe-engine/dpe/internal/model"
	"github.com/dpe-engine/dpe/internal/wire"
)

// MaxNotices caps the alerts listed in one summary call (More counts the
// rest).
const MaxNotices = 100

// due is one delivery owed now: alert a, its delivery i.
type due struct {
	a *model.Alert
	i int
}

// deliver sends what is due, per rule and receiver within the rule's
// rate: when more is due than calls are left in the minute, the last
// allowed call carries all the rest. Each call's outcome is stored on the
// alerts it carried.
func (e *Evaluator) deliver(ctx context.Context, byKey map[string]*model.Alert) error {
	now := e.o.Clock.Now()
	var owed []*model.Alert
	for _, a := range byKey {
		if a.Notify != "" {
			owed = append(owed, a)
		}
	}
	sortAlerts(owed)
	groups := map[[2]string][]due{}
	for _, a := range owed {
		for i, d := range a.Deliveries {
			if d.SentAt == nil && !d.GaveUp && (d.NextAt == nil || !d.NextAt.After(now)) {
				k := [2]string{a.Rule, d.Receiver}
				groups[k] = append(groups[k], due{a, i})
			}
		}
	}
	keys := make([][2]string, 0, len(groups))
	for k := range groups {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(x, y [2]string) int { return strings.Compare(x[0]+"\x00"+x[1], y[0]+"\x00"+y[1]) })
	for _, k := range keys {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		rule, recv := e.o.Config.rule(k[0]), e.o.Config.receiver(k[1])
		if rule == nil {
			continue
		}
		if recv == nil {
			for _, d := range groups[k] {
				dl := &d.a.Deliveries[d.i]
				dl.GaveUp, dl.LastError = true, "receiver "+k[1]+" is no longer configured"
				if err := e.settle(ctx, d.a); err != nil {
					return err
				}
			}
			continue
		}
		for _, call := range e.plan(k, rule.MaxPerMinute, groups[k], now) {
			if err := e.call(ctx, rule, recv, call); err != nil {
				return err
			}
		}
	}
	return nil
}

// plan splits the due deliveries of one (rule, receiver) into the calls
// the rate allows now: one each, or, past the rate, the rest in the last.
func (e *Evaluator) plan(k [2]string, perMinute int, dues []due, now time.Time) [][]due {
	recent := e.calls[k][:0]
	for _, t := range e.calls[k] {
		if now.Sub(t) < time.Minute {
			recent = append(recent, t)
		}
	}
	e.calls[k] = recent
	left := perMinute - len(recent)
	if left <= 0 {
		return nil
	}
	var calls [][]due
	for len(dues) > 0 {
		if left == 1 {
			calls = append(calls, dues)
			break
		}
		calls = append(calls, dues[:1])
		dues, left = dues[1:], left-1
	}
	return calls
}

// call sends one notification carrying the deliveries of call and stores
// its outcome on their alerts.
func (e *Evaluator) call(ctx context.Context, r *Rule, recv *Receiver, call []due) error {
	n := notification(r.Name, recv.Name, e.o.Holder, call, e.o.Clock.Now())
	err := send(ctx, e.o.HTTP, recv, n)
	if ctx.Err() != nil {
		return ctx.Err() // lost the lease or stopping: the next holder sends it
	}
	now := e.o.Clock.Now()
	e.seq++
	id := fmt.Sprintf("%s/%d", e.o.Holder, e.seq)
	e.calls[[2]string{r.Name, recv.Name}] = append(e.calls[[2]string{r.Name, recv.Name}], now)
	e.o.Metrics.Notified(recv.Name, err == nil)
	if err != nil {
		e.o.Log.Warn("alerts: notification failed", "rule", r.Name, "receiver", recv.Name, "alerts", len(call), "err", err)
	}
	for _, d := range call {
		dl := &d.a.Deliveries[d.i]
		dl.Attempts++
		dl.LastAt, dl.LastCall, dl.Batch = &now, id, 0
		if len(call) > 1 {
			dl.Batch = len(call)
		}
		if err == nil {
			dl.SentAt, dl.NextAt, dl.LastError = &now, nil, ""
		} else {
			dl.LastError = clip(err.Error(), 500)
			if dl.Attempts >= e.o.Config.Retry.Attempts {
				dl.GaveUp, dl.NextAt = true, nil
			} else {
				next := now.Add(e.retry.Delay(dl.Attempts - 1))
				dl.NextAt = &next
			}
		}
		if err := e.settle(ctx, d.a); err != nil {
			return err
		}
	}
	return nil
}

// settle clears the alert's owed notification once every receiver has it
// (or gave up), and stores the alert.
func (e *Evaluator) settle(ctx context.Context, a *model.Alert) error {
	done := true
	for _, d := range a.Deliveries {
		if d.SentAt == nil && !d.GaveUp {
			done = false
		}
	}
	if done {
		a.Notify = ""
	}
	a.UpdatedAt = e.o.Clock.Now()
	if err := e.o.Store.AlertPut(ctx, *a); err != nil {
		return fmt.Errorf("store alert %s: %w", a.Key, err)
	}
	return nil
}

// notification is the body of one call.
func notification(rule, receiver, server string, call []due, now time.Time) wire.AlertNotification {
	n := wire.AlertNotification{Rule: rule, Receiver: receiver, Server: server, SentAt: now, Alerts: []wire.AlertNotice{}}
	counts := map[string]int{}
	for i, d := range call {
		a, dl := d.a, d.a.Deliveries[d.i]
		counts[dl.Notification]++
		if i >= MaxNotices {
			n.More++
			continue
		}
		at := a.Since
		if a.FiredAt != nil {
			at = *a.FiredAt
		}
		n.Alerts = append(n.Alerts, wire.AlertNotice{
			ID:  fmt.Sprintf("%s#%s@%d", a.Key, dl.Notification, at.UnixMilli()),
			Key: a.Key, Rule: a.Rule, Kind: a.Kind, Subject: a.Subject, State: a.State, Notification: dl.Notification,
			Summary: a.Summary, Since: a.Since, FiredAt: a.FiredAt, ResolvedAt: a.ResolvedAt,
		})
	}
	switch {
	case len(counts) > 1:
		n.Status = "mixed"
	default:
		for s := range counts {
			n.Status = s
		}
	}
	if len(call) == 1 {
		n.Summary = call[0].a.Summary
		if n.Status == "resolved" {
			n.Summary = "resolved: " + n.Summary
		}
		return n
	}
	subjects := make([]string, 0, 5)
	for _, d := range call[:min(len(call), 5)] {
		subjects = append(subjects, d.a.Subject)
	}
	more := ""
	if len(call) > 5 {
		more = fmt.Sprintf(" and %d more", len(call)-5)
	}
	n.Summary = fmt.Sprintf("%d alerts of rule %s (%d firing, %d resolved): %s%s",
		len(call), rule, counts["firing"], counts["resolved"], strings.Join(subjects, ", "), more)
	return n
}

// Test sends a test notification to every configured receiver at once and
// reports each outcome. It records nothing in the core database.
func (e *Evaluator) Test(ctx context.Context) (wire.AlertTestResults, error) {
	out := wire.AlertTestResults{Results: []wire.AlertTestResult{}}
	if len(e.o.Config.Receivers) == 0 {
		return out, model.Invalid("alerts.receivers", "no alert receivers are configured: add them to the alerts section of the server's configuration file (dpe server --config)")
	}
	for i := range e.o.Config.Receivers {
		r := &e.o.Config.Receivers[i]
		sw := e.o.Clock.Stopwatch()
		n := wire.AlertNotification{Status: "test", Receiver: r.Name, Server: e.o.Holder, SentAt: e.o.Clock.Now(),
			Summary: "dpe test notification from " + e.o.Holder, Alerts: []wire.AlertNotice{}}
		err := send(ctx, e.o.HTTP, r, n)
		e.o.Metrics.Notified(r.Name, err == nil)
		res := wire.AlertTestResult{Receiver: r.Name, OK: err == nil, Duration: model.Duration(sw())}
		if err != nil {
			res.Error = err.Error()
		}
		out.Results = append(out.Results, res)
	}
	return out, nil
}
