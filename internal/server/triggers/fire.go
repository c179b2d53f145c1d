package triggers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/dpe-engine/dpe/internal/model"
	"github.com/dpe-engine/dpe/internal/store"
	"github.com/dpe-engine/dpe/internal/template"
)

// Fire applies a scheduler's due fires and its new state in one
// transaction. The state's "last" fire time never goes backwards, so
// copies of a scheduler cannot make each other fire a time again.
func (s *Service) Fire(ctx context.Context, name string, req model.FireRequest) (model.TriggerResult, error) {
	if err := checkName(name); err != nil {
		return model.TriggerResult{}, err
	}
	if req.Kind == "" {
		req.Kind = model.TriggerSchedule
	}
	if req.Kind != model.TriggerSchedule {
		return model.TriggerResult{}, model.Invalid("kind", "fire is for schedules, got %q", req.Kind)
	}
	if len(req.Fires) > MaxFires {
		return model.TriggerResult{}, model.Invalid("fires", "at most %d per request", MaxFires)
	}
	switch req.Overlap {
	case "", "allow", "skip":
	default:
		return model.TriggerResult{}, model.Invalid("overlap", "want allow or skip, got %q", req.Overlap)
	}
	switch req.ThrottleMode {
	case "", "skip", "wait":
	default:
		return model.TriggerResult{}, model.Invalid("throttle_mode", "want skip or wait, got %q", req.ThrottleMode)
	}
	if req.Throttle < 0 {
		return model.TriggerResult{}, model.Invalid("throttle", "must not be negative")
	}
	var newLast time.Time
	if len(req.State) > 0 {
		var st struct {
			Last time.Time `json:"last"`
		}
		if err := json.Unmarshal(req.State, &st); err != nil {
			return model.TriggerResult{}, model.Invalid("state", "want {\"last\": RFC 3339 time}: %v", err)
		}
		newLast = st.Last
	}
	spec, err := sentSpec(req.State)
	if err != nil {
		return model.TriggerResult{}, err
	}

	preps := make([]prepared, len(req.Fires))
	for i, f := range req.Fires {
		field := fmt.Sprintf("fires[%d]", i)
		if f.Key == "" {
			return model.TriggerResult{}, model.Invalid(field+".key", "required")
		}
		if f.Skip {
			continue
		}
		if f.Instance.Template == "" || f.Instance.Name == "" {
			return model.TriggerResult{}, model.Invalid(field+".instance", "template and name are required")
		}
		var raw map[string]any
		if len(f.Instance.Args) > 0 {
			if err := json.Unmarshal(f.Instance.Args, &raw); err != nil {
				return model.TriggerResult{}, model.Invalid(field+".instance.args", "want a JSON object: %v", err)
			}
		}
		args, err := template.CompileData(raw, field+".instance.args")
		if err != nil {
			return model.TriggerResult{}, err
		}
		env := template.Env{Event: f.Data}
		if ft, ok := f.Data["fire_time"].(string); ok {
			if t, err := time.Parse(time.RFC3339Nano, ft); err == nil {
				env.FireTime = t
			}
		}
		preps[i] = s.prepare(ctx, name, f.Instance, args, env)
	}

	var recs []model.TriggerRecord
	started := false
	now := s.clock.Now()
	err = s.store.TriggerDo(ctx, name, req.Kind, now, func(tx store.TriggerTx) error {
		recs = recs[:0]
		active := 0
		if req.Overlap == "skip" || req.Throttle > 0 {
			var err error
			if active, err = tx.ActiveInstances(); err != nil {
				return err
			}
		}
		waiting := false
		for i, f := range req.Fires {
			rec := model.TriggerRecord{Trigger: name, Key: f.Key, Event: "fire", Instance: f.Instance.Name, At: now}
			// A fire another copy already started is "existing", whatever
			// overlap and throttle say now. The read goes through the
			// store, outside this transaction: holding the trigger's lock,
			// it sees what the other copy committed.
			var prior model.Instance
			if !f.Skip && f.Instance.Name != "" {
				inst, err := s.flows.GetByName(ctx, f.Instance.Name)
				if err != nil && !errors.Is(err, model.ErrNotFound) {
					return err
				}
				prior = inst
			}
			switch {
			case prior.ID != 0:
				rec.Action, rec.InstanceID = model.RecordExisting, prior.ID
			case f.Skip:
				rec.Action, rec.Reason = model.RecordSkipped, f.Reason
			case req.DryRun:
				rec.Action, rec.Reason = model.RecordSkipped, "dry run: would start "+f.Instance.Name
			case req.Overlap == "skip" && active > 0:
				rec.Action, rec.Reason = model.RecordOverlap, fmt.Sprintf("%d instance(s) of this schedule still running", active)
			case req.Throttle > 0 && active >= req.Throttle:
				rec.Action, rec.Reason = model.RecordThrottled, fmt.Sprintf("%d running, throttle %d", active, req.Throttle)
				waiting = req.ThrottleMode == "wait"
			default:
				r, created, err := create(tx, rec, preps[i])
				if err != nil {
					return err
				}
				if created {
					active++
					started = true
				}
				recs = append(recs, r)
				continue
			}
			if _, err := tx.Record(rec); err != nil {
				return err
			}
			recs = append(recs, rec)
			if waiting {
				break
			}
		}
		if !waiting && !newLast.IsZero() {
			st := readState(tx.Trigger().State)
			var old time.Time
			if b, ok := st["last"]; ok {
				_ = json.Unmarshal(b, &old)
			}
			changed := keepSpec(st, spec)
			if newLast.After(old) {
				st["last"], _ = json.Marshal(newLast.UTC())
				changed = true
			}
			if changed {
				if err := tx.SetState(st.json()); err != nil {
					return err
				}
			}
		}
		if req.DryRun {
			return store.ErrRollback
		}
		return nil
	})
	if err != nil && !errors.Is(err, store.ErrRollback) {
		return model.TriggerResult{}, fmt.Errorf("fire %s: %w", name, err)
	}
	if started {
		s.flows.Created()
	}
	if err == nil { // not a dry run, whose records were rolled back
		s.metrics.Recorded(req.Kind, recs)
	}
	return s.result(ctx, name, recs)
}

func (s *Service) result(ctx context.Context, name string, recs []model.TriggerRecord) (model.TriggerResult, error) {
	t, err := s.store.TriggerGet(ctx, name)
	if err != nil && !errors.Is(err, model.ErrNotFound) {
		return model.TriggerResult{}, fmt.Errorf("trigger %s: %w", name, err)
	}
	if recs == nil {
		recs = []model.TriggerRecord{}
	}
	return model.TriggerResult{Records: recs, Trigger: t, Seq: readState(t.State).seq()}, nil
}
