// Package scheduler is the scheduler role (`dpe scheduler`): named cron
// schedules that start workflow instances (DESIGN §5, §9).
//
// The scheduler owns no state. Each schedule's last consumed fire time
// lives in the core DB as its trigger's state; every fire time has a
// deterministic instance name (InstanceName), and the server applies a
// batch of fires and the new state in one transaction, creating each
// instance at most once. So copies can run as a standby pair (one lease per
// schedule group) or concurrently, restart at any moment, and still start
// each fire exactly once, with misfires after an outage handled by the
// schedule's policy and recorded.
package scheduler

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/dpe-engine/dpe/internal/client"
	"github.com/dpe-engine/dpe/internal/clock"
	"github.com/dpe-engine/dpe/internal/holder"
	"github.com/dpe-engine/dpe/internal/model"
	"github.com/dpe-engine/dpe/internal/trigger"
)

const (
	// retryInterval is the pause after a failed call, and between offers
	// of fires a full throttle ("when_full: wait") holds back.
	retryInterval = time.Second
	// maxWait caps one sleep, so a wall clock that jumps (NTP step, a
	// resumed VM) delays a fire by at most this much.
	maxWait = time.Minute
)

// Options configure a Scheduler.
type Options struct {
	// Client talks to the servers (required).
	Client *client.Client
	// Schedules to run; disabled ones are left out. New validates them
	// (filling their defaults in place).
	Schedules []Config
	// Mode: standby or concurrent. In standby mode each schedule competes
	// for the lease "trigger/<name>"; with Mode.Group set, all of them run
	// under the one lease "trigger/<group>".
	Mode trigger.Mode
	// Clock is the time source for every "what time is it" and every
	// wait, so tests drive a fake one and never sleep. Nil: clock.Real.
	Clock clock.Clock
	// Log receives a record per fire outcome. Nil: slog.Default().
	Log *slog.Logger
	// HTTP asks approval hooks. Nil: http.DefaultClient.
	HTTP *http.Client
}

// Scheduler runs schedules. Create it with New.
type Scheduler struct {
	client *client.Client
	mode   trigger.Mode
	log    *slog.Logger
	groups []group
}

// group is the schedules that run under one standby lease.
type group struct {
	name    string
	runners []*runner
}

// New validates the options and returns a Scheduler.
func New(o Options) (*Scheduler, error) {
	if o.Client == nil {
		return nil, errors.New("scheduler: no client")
	}
	if err := o.Mode.Validate("scheduler"); err != nil {
		return nil, err
	}
	if err := ValidateAll(o.Schedules); err != nil {
		return nil, fmt.Errorf("scheduler: %w", err)
	}
	s := &Scheduler{client: o.Client, mode: o.Mode, log: cmp.Or(o.Log, slog.Default())}
	if s.mode.Mode == trigger.Standby && s.mode.Holder == "" {
		s.mode.Holder = holder.New("scheduler")
	}
	ap := &approver{hc: cmp.Or(o.HTTP, http.DefaultClient), clock: cmp.Or[clock.Clock](o.Clock, clock.Real{})}
	byName := map[string]int{}
	for i := range o.Schedules {
		cfg := o.Schedules[i] // Validate filled its defaults in place
		if !cfg.IsEnabled() {
			s.log.Info("schedule disabled", "schedule", cfg.Name)
			continue
		}
		cc, err := cfg.compile()
		if err != nil { // cannot happen after ValidateAll
			return nil, err
		}
		r := &runner{c: cc, client: o.Client, clock: ap.clock, ap: ap,
			log: s.log.With("schedule", cfg.Name)}
		name := cmp.Or(o.Mode.Group, cfg.Name)
		if _, ok := byName[name]; !ok {
			byName[name] = len(s.groups)
			s.groups = append(s.groups, group{name: name})
		}
		g := &s.groups[byName[name]]
		g.runners = append(g.runners, r)
	}
	return s, nil
}

// Run runs every enabled schedule until ctx ends (then it returns nil), in
// the mode of Options.Mode. Call it once. Errors reaching the servers are
// logged and retried, never returned; fires decided but not yet accepted
// by a server are kept in memory and offered again (after a restart, the
// misfire policy judges them anew from the stored "last").
func (s *Scheduler) Run(ctx context.Context) error {
	if len(s.groups) == 0 {
		s.log.Warn("no enabled schedules: idle")
		<-ctx.Done()
		return nil
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make([]error, len(s.groups))
	var wg sync.WaitGroup
	for i, g := range s.groups {
		wg.Go(func() {
			m := s.mode
			m.Group = g.name
			err := trigger.Run(ctx, s.client, g.name, m, s.log.With("group", g.name), g.run)
			if err != nil && ctx.Err() == nil {
				errs[i] = fmt.Errorf("schedule group %s: %w", g.name, err)
				cancel()
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// run runs the group's schedules while this copy is active.
func (g group) run(ctx context.Context) error {
	var wg sync.WaitGroup
	for _, r := range g.runners {
		wg.Go(func() { r.run(ctx) })
	}
	wg.Wait()
	return nil
}

// runner drives one schedule.
type runner struct {
	c      *compiled
	client *client.Client
	clock  clock.Clock
	ap     *approver
	log    *slog.Logger

	// last is the latest fire time the server consumed, as far as this
	// copy knows; only ever moves forward.
	last time.Time
	// synced: last was read from the server since the last error.
	synced bool
	// pending are fire times decided to fire (and approved) that the
	// server has not consumed yet: a failed call or a full throttle keeps
	// them here, and they fire however late they become.
	pending []time.Time
	// denied caches the approval hook's no, by fire time, so a fire held
	// back is not asked about again.
	denied map[time.Time]string
	// failures counts the failed steps in a row, to keep an outage from
	// flooding the log.
	failures int
}

// run is the schedule's loop while this copy is active.
func (r *runner) run(ctx context.Context) {
	r.synced = false // a take-over continues from the core DB, not from memory
	for {
		wait, err := r.step(ctx)
		if ctx.Err() != nil {
			return
		}
		r.noteResult(ctx, err)
		if err != nil {
			r.synced = false
			wait = retryInterval
		}
		if wait <= 0 {
			continue
		}
		select {
		case <-ctx.Done():
			return
		case <-r.clock.After(wait):
		}
	}
}

// noteResult logs a failed step at warn the first time and once a minute
// after that (debug in between), and the recovery at info.
func (r *runner) noteResult(ctx context.Context, err error) {
	if err == nil {
		if r.failures > 0 {
			r.log.Info("schedule: server reachable again", "failures", r.failures)
		}
		r.failures = 0
		return
	}
	level := slog.LevelDebug
	if r.failures%60 == 0 {
		level = slog.LevelWarn
	}
	r.failures++
	r.log.Log(ctx, level, "schedule: retrying", "err", err, "in", retryInterval, "failures", r.failures)
}

// step reads the state when needed, hands every due fire to the server
// and returns how long to wait before the next step.
func (r *runner) step(ctx context.Context) (time.Duration, error) {
	if !r.synced {
		if err := r.sync(ctx); err != nil {
			return 0, fmt.Errorf("read state: %w", err)
		}
	}
	now := r.clock.Now()
	fires := plan(r.c, r.last, now, r.pending)
	if len(fires) == 0 {
		return r.untilNext(now), nil
	}
	starts, err := r.decide(ctx, fires)
	if err != nil {
		return 0, err
	}
	req := r.c.request(starts, r.c.stateJSON(fires[len(fires)-1].at))
	res, err := trigger.Fire(ctx, r.client, r.c.cfg.Name, req)
	if err != nil {
		return 0, fmt.Errorf("hand %d fire times to the server: %w", len(fires), err)
	}
	held := r.consume(ctx, fires, req, res)
	if held || len(r.pending) > 0 {
		return retryInterval, nil
	}
	return r.untilNext(r.clock.Now()), nil
}

// untilNext is the wait until the next fire time after last.
func (r *runner) untilNext(now time.Time) time.Duration {
	next := r.c.sched.Next(r.last)
	if next.IsZero() {
		return maxWait
	}
	return min(max(next.Sub(now), 0), maxWait)
}

// sync reads the schedule's state from the core DB; before its first fire
// ever it records a baseline instead, so nothing from the past fires.
func (r *runner) sync(ctx context.Context) error {
	t, err := trigger.Get(ctx, r.client, r.c.cfg.Name)
	if errors.Is(err, model.ErrNotFound) {
		return r.baseline(ctx)
	}
	if err != nil {
		return err
	}
	if t.Kind != "" && t.Kind != model.TriggerSchedule {
		return fmt.Errorf("trigger %s is a %s trigger, not a schedule", r.c.cfg.Name, t.Kind)
	}
	last, ok, err := parseState(t.State)
	if err != nil {
		return err
	}
	if !ok {
		return r.baseline(ctx)
	}
	if err := r.reportSpec(ctx, t.State, last); err != nil {
		return err
	}
	r.advance(last)
	r.synced = true
	r.log.Debug("schedule state read", "last", last)
	return nil
}

// baseline records last = now with no fire.
func (r *runner) baseline(ctx context.Context) error {
	now := r.clock.Now()
	req := r.c.request([]model.Start{}, r.c.stateJSON(now))
	res, err := trigger.Fire(ctx, r.client, r.c.cfg.Name, req)
	if err != nil {
		return fmt.Errorf("record baseline: %w", err)
	}
	r.advance(now)
	r.advanceTo(res)
	for _, rec := range res.Records {
		r.logRecord(ctx, rec)
	}
	r.synced = true
	r.log.Info("schedule baseline: fires from now on", "last", r.last)
	return nil
}

// decide turns the plan into starts, asking the approval hook about each
// new fire; fires decided to start join pending.
func (r *runner) decide(ctx context.Context, fires []fire) ([]model.Start, error) {
	starts := make([]model.Start, 0, len(fires))
	for _, f := range fires {
		if f.skip {
			starts = append(starts, r.c.start(f.at, true, f.reason))
			continue
		}
		if !f.decided {
			if ok, reason, err := r.approve(ctx, f.at); err != nil {
				return nil, err
			} else if !ok {
				starts = append(starts, r.c.start(f.at, true, reason))
				continue
			}
			r.pending = append(r.pending, f.at)
		}
		starts = append(starts, r.c.start(f.at, false, ""))
	}
	return starts, nil
}

// approve asks the hook, once per fire time.
func (r *runner) approve(ctx context.Context, at time.Time) (bool, string, error) {
	a := r.c.cfg.Approval
	if a == nil {
		return true, "", nil
	}
	if reason, ok := r.denied[at.UTC()]; ok {
		return false, reason, nil
	}
	ok, reason, err := r.ap.approve(ctx, a, r.c.cfg.Name, at)
	if err != nil || ok {
		return ok, reason, err
	}
	if r.denied == nil {
		r.denied = map[time.Time]string{}
	}
	r.denied[at.UTC()] = reason
	return false, reason, nil
}

// consume logs the server's records and moves last past what it
// consumed. It reports whether a full throttle in wait mode held a fire
// back: then the fires before it were consumed, it stays pending, and the
// later ones are judged again next time (so the misfire policy coalesces
// what piles up behind it). The server stored no state in that case.
func (r *runner) consume(ctx context.Context, fires []fire, req model.FireRequest, res model.TriggerResult) (held bool) {
	heldKey := ""
	for _, rec := range res.Records {
		r.logRecord(ctx, rec)
		if heldKey == "" && rec.Action == model.RecordThrottled && req.ThrottleMode == ThrottleWait {
			heldKey = rec.Key
		}
	}
	if heldKey == "" {
		r.advance(fires[len(fires)-1].at)
		r.advanceTo(res)
		return false
	}
	h := slices.IndexFunc(fires, func(f fire) bool { return fireKey(f.at) == heldKey })
	if h < 0 {
		// Not one of ours: assume nothing was consumed and offer all again.
		r.log.Warn("schedule: throttled record names no fire of the request", "key", heldKey)
		h = 0
	}
	if h > 0 {
		r.advance(fires[h-1].at)
	}
	head := fires[h].at
	r.pending = slices.DeleteFunc(r.pending, func(t time.Time) bool { return t.After(head) })
	r.advanceTo(res)
	return true
}

// advanceTo moves last to the state the server answered with (another
// copy may be ahead).
func (r *runner) advanceTo(res model.TriggerResult) {
	last, ok, err := parseState(res.Trigger.State)
	if err != nil {
		r.log.Warn("schedule: server state unreadable", "err", err)
		return
	}
	if ok {
		r.advance(last)
	}
}

// advance moves last forward to t and forgets what it consumed.
func (r *runner) advance(t time.Time) {
	if !t.After(r.last) {
		return
	}
	r.last = t
	r.pending = slices.DeleteFunc(r.pending, func(p time.Time) bool { return !p.After(t) })
	for at := range r.denied {
		if !at.After(t) {
			delete(r.denied, at)
		}
	}
}

func (r *runner) logRecord(ctx context.Context, rec model.TriggerRecord) {
	level := slog.LevelInfo
	if rec.Action == model.RecordFailed {
		level = slog.LevelWarn
	}
	r.log.Log(ctx, level, "schedule fire",
		"action", rec.Action, "key", rec.Key, "instance", rec.Instance,
		"instance_id", rec.InstanceID, "reason", rec.Reason)
}
