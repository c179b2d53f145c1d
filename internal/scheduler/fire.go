package scheduler

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/dpe-engine/dpe/internal/client"
	"github.com/dpe-engine/dpe/internal/model"
	"github.com/dpe-engine/dpe/internal/trigger"
)

// InstanceName is the deterministic name of the instance a fire starts,
// e.g. "schedule/nightly-purge/2026-11-25T01:00:00Z". Instance names are
// unique in the core DB, so copies firing the same time start one instance.
func InstanceName(schedule string, at time.Time) string {
	return "schedule/" + schedule + "/" + fireKey(at)
}

// ManualInstanceName is the name of the instance a manual fire requested
// at at starts: "schedule/<name>/manual/<RFC3339Nano, UTC>".
func ManualInstanceName(schedule string, at time.Time) string {
	return "schedule/" + schedule + "/manual/" + at.UTC().Format(time.RFC3339Nano)
}

// fireKey is a fire time as records and instance names show it.
func fireKey(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// state is the trigger's state in the core DB.
type state struct {
	// Last is the latest fire time consumed (RFC3339Nano, UTC): fired,
	// skipped or coalesced. The server keeps the maximum it was sent.
	Last string `json:"last"`
	// Spec is the schedule's config as the server shows it (next fire
	// times) and fires it now; the server keeps the latest sent.
	Spec *model.ScheduleSpec `json:"spec,omitempty"`
}

// stateJSON is the state sent with a fire: last and the spec.
func (c *compiled) stateJSON(last time.Time) json.RawMessage {
	spec := c.spec()
	b, _ := json.Marshal(state{Last: last.UTC().Format(time.RFC3339Nano), Spec: &spec}) // args were marshalled at compile
	return b
}

// parseState returns the stored last fire time; ok is false when there is
// none yet.
func parseState(raw json.RawMessage) (last time.Time, ok bool, err error) {
	if len(raw) == 0 || string(raw) == "null" {
		return time.Time{}, false, nil
	}
	var st state
	if err := json.Unmarshal(raw, &st); err != nil {
		return time.Time{}, false, fmt.Errorf("decode state %s: %w", raw, err)
	}
	if st.Last == "" {
		return time.Time{}, false, nil
	}
	last, err = time.Parse(time.RFC3339Nano, st.Last)
	if err != nil {
		return time.Time{}, false, fmt.Errorf("state: last %q: %w", st.Last, err)
	}
	return last, true, nil
}

// start is what the server is asked to do with one fire.
func (c *compiled) start(at time.Time, skip bool, reason string) model.Start {
	return model.Start{
		Key:   fireKey(at),
		Event: "fire",
		Instance: model.InstanceSpec{
			Name:     InstanceName(c.cfg.Name, at),
			Template: c.cfg.Template,
			Args:     c.args,
			Priority: c.cfg.Priority,
		},
		Skip:   skip,
		Reason: reason,
		Data:   map[string]any{"fire_time": fireKey(at), "schedule": c.cfg.Name},
	}
}

// request wraps starts in the schedule's FireRequest.
func (c *compiled) request(starts []model.Start, st json.RawMessage) model.FireRequest {
	req := model.FireRequest{
		Kind:    model.TriggerSchedule,
		Fires:   starts,
		State:   st,
		Overlap: c.cfg.Overlap,
	}
	if t := c.cfg.Throttle; t != nil {
		req.Throttle, req.ThrottleMode = t.MaxRunning, t.WhenFull
	}
	return req
}

// FireNow starts one instance of the schedule now, for
// `dpe schedule fire NAME`: instance ManualInstanceName(name, now), event
// "manual", data {"fire_time", "schedule", "manual": true}. It leaves the
// schedule's state ("last") alone, so the regular fires go on as planned.
// An operator's explicit request: it runs even when the schedule is
// disabled, and asks neither the approval hook nor the overlap and throttle
// rules.
func FireNow(ctx context.Context, c *client.Client, cfg Config, now time.Time) (model.TriggerResult, error) {
	req, err := ManualFire(cfg, now)
	if err != nil {
		return model.TriggerResult{}, err
	}
	res, err := trigger.Fire(ctx, c, cfg.Name, req)
	if err != nil {
		return res, fmt.Errorf("schedule %s: fire now: %w", cfg.Name, err)
	}
	return res, nil
}

// ManualFire is the request of a manual fire of cfg at now (see FireNow):
// the server sends it for an operator's "fire now" from the spec the
// scheduler reported.
func ManualFire(cfg Config, now time.Time) (model.FireRequest, error) {
	cc, err := cfg.compile() // cfg is a copy: the caller's is left alone
	if err != nil {
		return model.FireRequest{}, err
	}
	s := cc.start(now, false, "")
	s.Key = "manual/" + now.UTC().Format(time.RFC3339Nano)
	s.Event = "manual"
	s.Instance.Name = ManualInstanceName(cfg.Name, now)
	s.Data["manual"] = true
	return model.FireRequest{Kind: model.TriggerSchedule, Fires: []model.Start{s}}, nil
}
