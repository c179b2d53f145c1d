package triggers

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/dpe-engine/dpe/internal/model"
	"github.com/dpe-engine/dpe/internal/scheduler"
	"github.com/dpe-engine/dpe/internal/store"
)

// Keys of a trigger's state that the server owns: pausedKey (the time an
// operator paused it) and specKey (a schedule's reported config).
const (
	pausedKey = "paused_at"
	specKey   = "spec"
	// nextShown is how many next fire times a schedule lists.
	nextShown = 3
	// pausedReason is the reason of the records of a paused trigger's
	// events.
	pausedReason = "trigger paused"
)

// pausedAt returns when the trigger was paused, or nil.
func pausedAt(raw json.RawMessage) *time.Time {
	var at time.Time
	if err := json.Unmarshal(readState(raw)[pausedKey], &at); err != nil || at.IsZero() {
		return nil
	}
	return &at
}

// Pause pauses (paused true) or resumes a trigger. While paused its
// events start nothing: create records each as skipped ("trigger
// paused") and the event is consumed (a schedule's last fire time, a
// watcher's mirror move on), so resuming starts nothing for what happened
// meanwhile. Pausing a paused trigger (or resuming a running one) changes
// nothing.
func (s *Service) Pause(ctx context.Context, name string, paused bool) (model.Trigger, error) {
	if err := checkName(name); err != nil {
		return model.Trigger{}, err
	}
	t, err := s.Get(ctx, name) // 404 for a trigger the core DB does not know
	if err != nil {
		return model.Trigger{}, err
	}
	now := s.clock.Now()
	changed := false
	err = s.store.TriggerDo(ctx, name, t.Kind, now, func(tx store.TriggerTx) error {
		st := readState(tx.Trigger().State)
		if _, was := st[pausedKey]; was == paused {
			return nil
		}
		changed = true
		if paused {
			st[pausedKey], _ = json.Marshal(now.UTC())
		} else {
			delete(st, pausedKey)
		}
		return tx.SetState(st.json())
	})
	if err != nil {
		return model.Trigger{}, fmt.Errorf("trigger %s: %w", name, err)
	}
	if changed {
		s.log.Info("trigger paused or resumed", "trigger", name, "paused", paused)
	}
	return s.Get(ctx, name)
}

// FireNow starts one instance of a schedule now on an operator's request,
// as `dpe schedule fire` does, from the config its scheduler reported. A
// paused schedule fires nothing: resume it first.
func (s *Service) FireNow(ctx context.Context, name string) (model.TriggerResult, error) {
	t, err := s.Get(ctx, name)
	if err != nil {
		return model.TriggerResult{}, err
	}
	switch {
	case t.Kind != model.TriggerSchedule:
		return model.TriggerResult{}, model.Invalid("name", "%s is a %s trigger: only schedules fire now", name, t.Kind)
	case t.Paused:
		return model.TriggerResult{}, fmt.Errorf("schedule %s is paused: resume it to fire it: %w", name, model.ErrConflict)
	case t.Schedule == nil:
		return model.TriggerResult{}, model.Invalid("name", "schedule %s has not reported its config yet (a scheduler reports it at start): fire it with dpe schedule fire", name)
	}
	req, err := scheduler.ManualFire(scheduler.ConfigOf(name, *t.Schedule), s.clock.Now())
	if err != nil {
		return model.TriggerResult{}, err
	}
	return s.Fire(ctx, name, req)
}

// decorate fills what the server derives from a trigger's state: whether
// it is paused, a schedule's config and its next fire times.
func (s *Service) decorate(t *model.Trigger) {
	t.PausedAt = pausedAt(t.State)
	t.Paused = t.PausedAt != nil
	if t.Kind != model.TriggerSchedule {
		return
	}
	var spec model.ScheduleSpec
	if err := json.Unmarshal(readState(t.State)[specKey], &spec); err != nil || spec.Cron == "" {
		return
	}
	t.Schedule = &spec
	if spec.Disabled || t.Paused {
		return
	}
	// The next fire times from now: a schedule whose last fire lies
	// further back is catching up (its misfire policy decides).
	next, err := scheduler.NextFires(spec, s.clock.Now(), nextShown)
	if err != nil {
		s.log.Warn("schedule's reported cron unreadable", "trigger", t.Name, "err", err)
		return
	}
	t.Next = next
}

// sentSpec returns the spec a scheduler sent in its state (it reports its
// config there), or nil; a spec the server cannot read is refused, naming
// the field.
func sentSpec(sent json.RawMessage) (json.RawMessage, error) {
	raw, ok := readState(sent)[specKey]
	if !ok || string(raw) == "null" {
		return nil, nil
	}
	var spec model.ScheduleSpec
	if err := json.Unmarshal(raw, &spec); err != nil {
		return nil, model.Invalid("state.spec", "want a schedule's config: %v", err)
	}
	if _, err := scheduler.NextFires(spec, time.Time{}, 1); err != nil {
		return nil, model.Invalid("state.spec", "%v", err)
	}
	return raw, nil
}

// keepSpec stores a sent spec in st; it reports whether st changed.
func keepSpec(st state, spec json.RawMessage) bool {
	if spec == nil || string(spec) == string(st[specKey]) {
		return false
	}
	st[specKey] = spec
	return true
}
