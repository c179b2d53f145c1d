package scheduler

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/dpe-engine/dpe/internal/model"
	"github.com/dpe-engine/dpe/internal/trigger"
)

// spec is what the scheduler reports of its config in the trigger's
// state.
func (c *compiled) spec() model.ScheduleSpec {
	return model.ScheduleSpec{
		Cron: c.cfg.Cron, Timezone: c.cfg.Timezone, Template: c.cfg.Template,
		Args: c.cfg.Args, Priority: c.cfg.Priority, Disabled: !c.cfg.IsEnabled(),
	}
}

// ConfigOf is the config a reported spec stands for, with the defaults of
// everything it does not carry: what the server fires now from.
func ConfigOf(name string, spec model.ScheduleSpec) Config {
	enabled := !spec.Disabled
	return Config{Name: name, Cron: spec.Cron, Timezone: spec.Timezone, Template: spec.Template,
		Args: spec.Args, Priority: spec.Priority, Enabled: &enabled}
}

// NextFires returns the first n fire times after t of a reported spec,
// DST-safe exactly as the scheduler fires them (fewer when the schedule
// ends within five years).
func NextFires(spec model.ScheduleSpec, after time.Time, n int) ([]time.Time, error) {
	loc, err := loadZone(spec.Timezone)
	if err != nil {
		return nil, fmt.Errorf("timezone: %w", err)
	}
	sched, err := parseCron(spec.Cron, loc)
	if err != nil {
		return nil, fmt.Errorf("cron %q: %w", spec.Cron, err)
	}
	out := make([]time.Time, 0, n)
	for t := after; len(out) < n; {
		t = sched.Next(t)
		if t.IsZero() {
			break
		}
		out = append(out, t.UTC())
	}
	return out, nil
}

// reportSpec sends the spec with the stored last fire time (an empty
// fire: last never goes backwards) when the core DB holds another one,
// so the monitor shows the config that runs.
func (r *runner) reportSpec(ctx context.Context, stored json.RawMessage, last time.Time) error {
	var st state
	_ = json.Unmarshal(stored, &st) // parseState read it already
	ours := r.c.spec()
	if st.Spec != nil {
		a, errA := json.Marshal(st.Spec)
		b, errB := json.Marshal(ours)
		if errA == nil && errB == nil && bytes.Equal(a, b) {
			return nil
		}
	}
	if _, err := trigger.Fire(ctx, r.client, r.c.cfg.Name, r.c.request([]model.Start{}, r.c.stateJSON(last))); err != nil {
		return fmt.Errorf("report the schedule's config: %w", err)
	}
	return nil
}
