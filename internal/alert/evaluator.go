package alert

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/dpe-engine/dpe/internal/backoff"
	"github.com/dpe-engine/dpe/internal/clock"
	"github.com/dpe-engine/dpe/internal/lease"
	"github.com/dpe-engine/dpe/internal/metrics"
	"github.com/dpe-engine/dpe/internal/model"
	"github.com/dpe-engine/dpe/internal/store"
	"github.com/dpe-engine/dpe/internal/wire"
)

// LeaseName is the lease whose holder evaluates alerts.
const LeaseName = "server/alerts"

// LeaseTTL is that lease's TTL: a standby server takes over within it.
const LeaseTTL = 15 * time.Second

// Retention: settled alerts are purged this long after their last change.
const Retention = 7 * 24 * time.Hour

// Store is what the evaluator reads and writes: the alerts, and the state
// of the plant the rules watch.
type Store interface {
	store.AlertStore
	store.QueueCounter
	LeaseList(ctx context.Context, prefix string) ([]model.Lease, error)
	ProcessorList(ctx context.Context, seenSince time.Time) ([]model.Processor, error)
}

// Options configure an Evaluator.
type Options struct {
	Store  Store
	Config Config // validated
	// Leases elect the one evaluating server (the store on a server).
	Leases  lease.Acquirer
	Holder  string // this server's id
	Clock   clock.Clock
	Log     *slog.Logger
	Metrics *metrics.Alerts
	HTTP    *http.Client // default: a client without redirects' surprises
	// SeenWithin is how recent a processor's presence must be for it to
	// serve its types (default 1m, as dpe status lists processors).
	SeenWithin time.Duration
}

// Evaluator evaluates the rules and delivers the notifications.
type Evaluator struct {
	o     Options
	retry backoff.Policy

	mu    sync.Mutex                // one evaluation at a time
	calls map[[2]string][]time.Time // (rule, receiver) → recent calls
	purge time.Time                 // last purge of settled alerts
	seq   int64                     // calls made, for their ids
}

// New returns an evaluator; Run starts it.
func New(o Options) *Evaluator {
	if o.Clock == nil {
		o.Clock = clock.Real{}
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	if o.HTTP == nil {
		o.HTTP = &http.Client{}
	}
	if o.SeenWithin <= 0 {
		o.SeenWithin = time.Minute
	}
	var rules [][2]string
	for _, r := range o.Config.Rules {
		rules = append(rules, [2]string{r.Name, string(r.Kind)})
	}
	var receivers []string
	for _, r := range o.Config.Receivers {
		receivers = append(receivers, r.Name)
	}
	o.Metrics.Configured(rules, receivers)
	return &Evaluator{
		o:     o,
		retry: backoff.Policy{Initial: o.Config.Retry.Backoff, Max: o.Config.Retry.MaxBackoff, Jitter: 0.2},
		calls: map[[2]string][]time.Time{},
	}
}

// Run evaluates the rules every Config.Every while this server holds the
// lease LeaseName, until ctx ends. Without rules it returns at once.
func (e *Evaluator) Run(ctx context.Context) error {
	if len(e.o.Config.Rules) == 0 {
		return nil
	}
	el := &lease.Elector{Acquirer: e.o.Leases, Name: LeaseName, Holder: e.o.Holder, TTL: LeaseTTL, Log: e.o.Log, Clock: e.o.Clock}
	return el.Run(ctx, func(ctx context.Context, _ model.Lease) error {
		// A server that stands by reports no firing alerts: the series
		// aggregate across servers with max.
		defer e.o.Metrics.Firing(e.zeros())
		if err := e.seed(ctx); err != nil && ctx.Err() == nil {
			e.o.Log.Warn("alerts: read recent notifications", "err", err)
		}
		for {
			if err := e.Evaluate(ctx); err != nil && ctx.Err() == nil {
				e.o.Log.Warn("alerts: evaluation failed", "err", err)
			}
			if clock.Sleep(ctx, e.o.Clock, e.o.Config.Every) != nil {
				return nil
			}
		}
	})
}

// seed counts the calls of the last minute from the stored deliveries,
// so a server taking over keeps the rate limits.
func (e *Evaluator) seed(ctx context.Context) error {
	now := e.o.Clock.Now()
	list, err := e.o.Store.AlertList(ctx, model.AlertFilter{UpdatedSince: now.Add(-time.Minute), Limit: 10000})
	if err != nil {
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	seen := map[string]bool{}
	for _, a := range list {
		for _, d := range a.Deliveries {
			if d.LastAt == nil || d.LastCall == "" || now.Sub(*d.LastAt) >= time.Minute || seen[d.LastCall] {
				continue
			}
			seen[d.LastCall] = true // a batch: one call for many alerts
			k := [2]string{a.Rule, d.Receiver}
			e.calls[k] = append(e.calls[k], *d.LastAt)
		}
	}
	return nil
}

// plant is one reading of the state the rules watch, taken lazily.
type plant struct {
	failed []model.Instance
	groups map[string]condition
	types  map[string]condition
}

// condition is a subject in an alerting condition since a time.
type condition struct {
	since   time.Time
	summary string
}

// Evaluate runs one evaluation: reads the open alerts and the plant,
// moves alerts between pending, firing and resolved, stores them, then
// delivers what is due.
func (e *Evaluator) Evaluate(ctx context.Context) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	now := e.o.Clock.Now()
	open, err := e.o.Store.AlertList(ctx, model.AlertFilter{Open: true, Limit: 100000})
	if err != nil {
		return fmt.Errorf("read open alerts: %w", err)
	}
	byKey := make(map[string]*model.Alert, len(open))
	for i := range open {
		byKey[open[i].Key] = &open[i]
	}
	changed := map[string]bool{}
	put := func(a *model.Alert) {
		a.UpdatedAt = now
		byKey[a.Key] = a
		changed[a.Key] = true
	}
	var p plant
	for i := range e.o.Config.Rules {
		r := &e.o.Config.Rules[i]
		switch r.Kind {
		case model.AlertWorkflowFailed:
			if p.failed == nil {
				if p.failed, err = e.failedSince(ctx, now.Add(-Lookback)); err != nil {
					return err
				}
			}
			e.failures(r, p.failed, now, byKey, put)
		case model.AlertGroupInactive:
			if p.groups == nil {
				if p.groups, err = e.inactiveGroups(ctx, now); err != nil {
					return err
				}
			}
			e.conditions(r, p.groups, now, byKey, put)
		case model.AlertNoProcessor:
			if p.types == nil {
				if p.types, err = e.unservedTypes(ctx, now); err != nil {
					return err
				}
			}
			e.conditions(r, p.types, now, byKey, put)
		}
	}
	for _, a := range byKey {
		r := e.o.Config.rule(a.Rule)
		switch {
		case r == nil || r.Kind != a.Kind:
			// The rule is gone from the configuration: settle its alerts.
			if a.State != model.AlertResolved || a.Notify != "" {
				a.State, a.ResolvedAt, a.Notify = model.AlertResolved, &now, ""
				put(a)
			}
		case a.Kind == model.AlertWorkflowFailed && a.State == model.AlertFiring && a.Notify == "" && now.Sub(a.Since) > Lookback+5*time.Minute:
			// A failure stays firing for the lookback (plus a margin for
			// clocks), so the failure rule does not see it again as new.
			a.State, a.ResolvedAt = model.AlertResolved, &now
			put(a)
		}
	}
	for _, k := range slices.Sorted(mapKeys(changed)) {
		if err := e.o.Store.AlertPut(ctx, *byKey[k]); err != nil {
			return fmt.Errorf("store alert %s: %w", k, err)
		}
	}
	err = e.deliver(ctx, byKey)
	firing := e.zeros()
	for _, a := range byKey {
		if a.State == model.AlertFiring {
			firing[[2]string{a.Rule, string(a.Kind)}]++
		}
	}
	e.o.Metrics.Firing(firing)
	if now.Sub(e.purge) > time.Hour {
		e.purge = now
		if n, perr := e.o.Store.AlertPurge(ctx, now.Add(-Retention)); perr != nil {
			err = errors.Join(err, perr)
		} else if n > 0 {
			e.o.Log.Info("alerts: purged settled alerts", "count", n)
		}
	}
	if err == nil {
		e.o.Metrics.Evaluated()
	}
	return err
}

// zeros is a firing count of 0 for every configured rule.
func (e *Evaluator) zeros() map[[2]string]int {
	out := map[[2]string]int{}
	for _, r := range e.o.Config.Rules {
		out[[2]string{r.Name, string(r.Kind)}] = 0
	}
	return out
}

// failedSince pages through the failed instances finished since the time.
func (e *Evaluator) failedSince(ctx context.Context, since time.Time) ([]model.Instance, error) {
	const page = 1000
	out := []model.Instance{}
	for range 20 {
		list, err := e.o.Store.InstanceFailedSince(ctx, since, page)
		if err != nil {
			return nil, fmt.Errorf("read failed instances: %w", err)
		}
		out = append(out, list...)
		if len(list) < page || list[len(list)-1].FinishedAt.Equal(since) {
			break
		}
		since = *list[len(list)-1].FinishedAt // inclusive: repeats are dropped by key
	}
	return out, nil
}

// failures fires one alert per top-level failed instance the rule matches
// that has none yet. (A failed sub-workflow fails its parent unless the
// parent handles it, so only the parent alerts.)
func (e *Evaluator) failures(r *Rule, failed []model.Instance, now time.Time, byKey map[string]*model.Alert, put func(*model.Alert)) {
	for _, in := range failed {
		if in.ParentID != 0 || in.FinishedAt == nil || !matches(r.Match, in.Template) {
			continue
		}
		key := fmt.Sprintf("%s/%d@%d", r.Name, in.ID, in.FinishedAt.UnixMilli())
		if byKey[key] != nil {
			continue
		}
		a := &model.Alert{Key: key, Rule: r.Name, Kind: r.Kind, Subject: in.Name, Since: in.FinishedAt.UTC(),
			Summary: fmt.Sprintf("workflow %s (template %s) failed: %s", in.Name, in.Template, clip(in.Error, 300))}
		e.fire(r, a, now)
		put(a)
	}
}

// conditions moves the rule's alerts after the subjects now in its
// condition: new ones pending, pending ones past `for` firing, ones no
// longer in it resolved (notified when they had fired).
func (e *Evaluator) conditions(r *Rule, conds map[string]condition, now time.Time, byKey map[string]*model.Alert, put func(*model.Alert)) {
	for _, subject := range slices.Sorted(mapKeys(conds)) {
		if !matches(r.Match, subject) {
			continue
		}
		c := conds[subject]
		key := r.Name + "/" + subject
		a := byKey[key]
		if a == nil || a.State == model.AlertResolved {
			a = &model.Alert{Key: key, Rule: r.Name, Kind: r.Kind, Subject: subject, State: model.AlertPending, Since: c.since, Summary: c.summary}
			put(a)
		}
		if a.State == model.AlertPending && now.Sub(a.Since) >= r.For {
			a.Summary = c.summary
			e.fire(r, a, now)
			put(a)
		}
	}
	for _, a := range byKey {
		if a.Rule != r.Name || a.State == model.AlertResolved {
			continue
		}
		if _, still := conds[a.Subject]; still && matches(r.Match, a.Subject) {
			continue
		}
		if a.State == model.AlertFiring {
			a.Notify, a.Deliveries = "resolved", deliveries(r, "resolved")
		}
		a.State, a.ResolvedAt = model.AlertResolved, &now
		put(a)
	}
}

// fire makes a firing with a notification owed to each of r's receivers.
func (e *Evaluator) fire(r *Rule, a *model.Alert, now time.Time) {
	a.State, a.FiredAt, a.ResolvedAt = model.AlertFiring, &now, nil
	a.Notify, a.Deliveries = "firing", deliveries(r, "firing")
}

func deliveries(r *Rule, notification string) []model.AlertDelivery {
	out := make([]model.AlertDelivery, len(r.Receivers))
	for i, n := range r.Receivers {
		out[i] = model.AlertDelivery{Receiver: n, Notification: notification}
	}
	return out
}

// inactiveGroups reads the standby groups whose lease no copy holds: a
// released lease, or one that ran out.
func (e *Evaluator) inactiveGroups(ctx context.Context, now time.Time) (map[string]condition, error) {
	out := map[string]condition{}
	for _, prefix := range model.GroupLeasePrefixes {
		ls, err := e.o.Store.LeaseList(ctx, prefix)
		if err != nil {
			return nil, fmt.Errorf("read leases: %w", err)
		}
		for _, l := range ls {
			if !strings.HasPrefix(l.Name, prefix) || (l.Holder != "" && l.Until.After(now)) {
				continue
			}
			// An expired lease ended at its Until; a released one at a
			// time the leases do not keep: from when it is first seen.
			since := now
			if l.Holder != "" {
				since = l.Until.UTC()
			}
			out[l.Name] = condition{since: since, summary: fmt.Sprintf("standby group %s has no active copy", l.Name)}
		}
	}
	return out, nil
}

// unservedTypes reads the job types with queued jobs that no live,
// undrained processor serves.
func (e *Evaluator) unservedTypes(ctx context.Context, now time.Time) (map[string]condition, error) {
	counts, err := e.o.Store.JobQueueCounts(ctx)
	if err != nil {
		return nil, fmt.Errorf("count queued jobs: %w", err)
	}
	procs, err := e.o.Store.ProcessorList(ctx, now.Add(-e.o.SeenWithin))
	if err != nil {
		return nil, fmt.Errorf("read processors: %w", err)
	}
	served := map[string]bool{}
	for _, p := range procs {
		if p.Draining || now.Sub(p.LastSeen) > e.o.SeenWithin {
			continue
		}
		for t, q := range p.Quota {
			if _, off := p.Unavailable[t]; q > 0 && !off {
				served[t] = true
			}
		}
	}
	out := map[string]condition{}
	for t, c := range counts {
		if n := c[model.JobQueued]; n > 0 && !served[t] {
			out[t] = condition{since: now, summary: fmt.Sprintf("%s of type %s queued and no live processor serves the type", plural(n, "job"), t)}
		}
	}
	return out, nil
}

func mapKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// plural is "1 job", "2 jobs".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// sortAlerts orders alerts oldest condition first, then by key.
func sortAlerts(list []*model.Alert) {
	slices.SortFunc(list, func(a, b *model.Alert) int {
		return cmp.Or(a.Since.Compare(b.Since), strings.Compare(a.Key, b.Key))
	})
}

// List answers GET /v1/alerts.
func (e *Evaluator) List(ctx context.Context) (wire.AlertList, error) {
	return List(ctx, e.o.Store, e.o.Config, e.o.Clock.Now())
}

// List reads the open alerts and those changed in the last day from st,
// with the rules and receivers of cfg.
func List(ctx context.Context, st store.AlertStore, cfg Config, now time.Time) (wire.AlertList, error) {
	open, err := st.AlertList(ctx, model.AlertFilter{Open: true, Limit: 1000})
	if err != nil {
		return wire.AlertList{}, err
	}
	recent, err := st.AlertList(ctx, model.AlertFilter{UpdatedSince: now.Add(-24 * time.Hour), Limit: 100})
	if err != nil {
		return wire.AlertList{}, err
	}
	out := wire.AlertList{Items: open, Rules: []wire.AlertRule{}, Receivers: []string{}}
	seen := map[string]bool{}
	for _, a := range open {
		seen[a.Key] = true
	}
	for _, a := range recent {
		if !seen[a.Key] {
			out.Items = append(out.Items, a)
		}
	}
	slices.SortStableFunc(out.Items, func(a, b model.Alert) int { return b.UpdatedAt.Compare(a.UpdatedAt) })
	out.Total = len(out.Items)
	for _, a := range out.Items {
		switch a.State {
		case model.AlertFiring:
			out.Firing++
		case model.AlertPending:
			out.Pending++
		}
	}
	for _, r := range cfg.Rules {
		out.Rules = append(out.Rules, wire.AlertRule{Name: r.Name, Kind: r.Kind, Match: r.Match, For: model.Duration(r.For), Receivers: r.Receivers, MaxPerMinute: r.MaxPerMinute})
	}
	for _, r := range cfg.Receivers {
		out.Receivers = append(out.Receivers, r.Name)
	}
	return out, nil
}
