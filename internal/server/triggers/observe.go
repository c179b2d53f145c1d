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

// Events a watcher can map to templates.
const (
	EventCreated = "created"
	EventUpdated = "updated"
	EventDeleted = "deleted"
)

// action is one compiled event mapping of an observation.
type action struct {
	cfg  model.EventAction
	args template.Value
}

// Observe compares one page of a watcher's observation with the mirror and
// starts the instances of the changes, all in one transaction.
func (s *Service) Observe(ctx context.Context, name string, o model.Observation) (model.TriggerResult, error) {
	if err := checkName(name); err != nil {
		return model.TriggerResult{}, err
	}
	if o.Kind != model.TriggerFolder && o.Kind != model.TriggerTable {
		return model.TriggerResult{}, model.Invalid("kind", "observe is for folder and table watchers, got %q", o.Kind)
	}
	if len(o.Items) > MaxItems {
		return model.TriggerResult{}, model.Invalid("items", "at most %d per page", MaxItems)
	}
	switch o.FirstStart {
	case "", "fire", "baseline":
	default:
		return model.TriggerResult{}, model.Invalid("first_start", "want fire or baseline, got %q", o.FirstStart)
	}
	if !o.Incremental && o.Pass == "" {
		return model.TriggerResult{}, model.Invalid("pass", "a full-pass page needs a pass id")
	}
	actions := map[string]action{}
	for ev, a := range o.On {
		if ev != EventCreated && ev != EventUpdated && ev != EventDeleted {
			return model.TriggerResult{}, model.Invalid("on", "unknown event %q: want created, updated or deleted", ev)
		}
		if a.Template == "" {
			return model.TriggerResult{}, model.Invalid("on."+ev+".template", "required")
		}
		args, err := template.CompileData(a.Args, "on."+ev+".args")
		if err != nil {
			return model.TriggerResult{}, err
		}
		actions[ev] = action{cfg: a, args: args}
	}
	seen := map[string]bool{}
	for i, it := range o.Items {
		if it.Key == "" {
			return model.TriggerResult{}, model.Invalid(fmt.Sprintf("items[%d].key", i), "required")
		}
		if seen[it.Key] {
			return model.TriggerResult{}, model.Invalid(fmt.Sprintf("items[%d].key", i), "%q appears twice in the page", it.Key)
		}
		seen[it.Key] = true
	}
	var clientState state
	if len(o.State) > 0 {
		if err := json.Unmarshal(o.State, &clientState); err != nil {
			return model.TriggerResult{}, model.Invalid("state", "want a JSON object: %v", err)
		}
	}

	var (
		recs     []model.TriggerRecord
		deferred []string
	)
	started := false
	// One time for the whole request: the store stamps mirror entries
	// with TriggerDo's now, and a pass's start must be on the same clock
	// reading, or entries this very page touched would look stale.
	now := s.clock.Now()
	err := s.store.TriggerDo(ctx, name, o.Kind, now, func(tx store.TriggerTx) error {
		recs = recs[:0]
		st := readState(tx.Trigger().State)
		var baselined bool
		_ = json.Unmarshal(st["baselined"], &baselined)
		// Baseline: until the first full pass completes, remember what exists
		// without starting anything.
		baseline := o.FirstStart == "baseline" && !baselined
		ob := observer{s: s, tx: tx, name: name, kind: o.Kind, actions: actions, dry: o.DryRun || baseline, baseline: baseline, now: now,
			readAfter: o.ReadAfter, seq: st.seq() + 1}

		if err := ob.page(ctx, o.Items); err != nil {
			return err
		}
		if ob.baseN > 0 {
			rec := model.TriggerRecord{Trigger: name, Key: "baseline/" + now.Format(time.RFC3339Nano), Action: model.RecordBaseline,
				Reason: fmt.Sprintf("first start: %d existing items remembered without starting anything", ob.baseN), At: now}
			if _, err := tx.Record(rec); err != nil {
				return err
			}
			ob.recs = append(ob.recs, rec)
		}
		passes := map[string]time.Time{}
		_ = json.Unmarshal(st["passes"], &passes)
		if !o.Incremental {
			if _, ok := passes[o.Pass]; !ok {
				// The pass began when its first page arrived; an entry not
				// seen since then by any copy is gone.
				passes[o.Pass] = now
			}
			if o.Complete {
				if err := ob.deleteStale(ctx, passes[o.Pass]); err != nil {
					return err
				}
				delete(passes, o.Pass)
				if baseline {
					st["baselined"] = json.RawMessage("true")
				}
			}
		}
		for id, at := range passes {
			if now.Sub(at) > passMaxAge {
				delete(passes, id) // abandoned by a copy that died mid-pass
			}
		}
		st["passes"], _ = json.Marshal(passes)
		if ob.changed {
			st["seq"], _ = json.Marshal(ob.seq)
		}
		// A page with deferred items does not move the watcher's state
		// (its cursor) on: the state would claim they were handled.
		for k, v := range clientState {
			if !serverKey(k) && len(ob.deferred) == 0 {
				st[k] = v
			}
		}
		if err := tx.SetState(st.json()); err != nil {
			return err
		}
		recs, started, deferred = ob.recs, ob.started, ob.deferred
		if o.DryRun {
			return store.ErrRollback
		}
		return nil
	})
	if err != nil && !errors.Is(err, store.ErrRollback) {
		return model.TriggerResult{}, fmt.Errorf("observe %s: %w", name, err)
	}
	if started {
		s.flows.Created()
	}
	if err == nil { // not a dry run, whose records were rolled back
		s.metrics.Recorded(o.Kind, recs)
	}
	res, err := s.result(ctx, name, recs)
	res.Deferred = deferred
	return res, err
}

// observer applies one page inside the trigger's transaction.
type observer struct {
	s        *Service
	tx       store.TriggerTx
	name     string
	kind     string
	actions  map[string]action
	dry      bool // record what would start, start nothing (dry run, baseline)
	baseline bool
	now      time.Time
	recs     []model.TriggerRecord
	started  bool
	baseN    int
	// readAfter is the change number the watcher knew before its read
	// (nil: compare everything); seq is the number this observation's
	// changes take, stored as the trigger's newest when changed.
	readAfter *int64
	seq       int64
	changed   bool
	deferred  []string
}

func (ob *observer) page(ctx context.Context, items []model.ObservedItem) error {
	keys := make([]string, 0, len(items))
	for _, it := range items {
		keys = append(keys, it.Key)
	}
	mirror, err := ob.tx.MirrorGet(keys)
	if err != nil {
		return err
	}
	var put []store.MirrorEntry
	var touch, del []string
	for _, it := range items {
		m, known := mirror[it.Key]
		switch {
		case known && ob.mayBeStale(m, it):
			ob.deferred = append(ob.deferred, it.Key)
			if !it.Deleted {
				touch = append(touch, it.Key) // it exists: no pass deletes it
			}
		case it.Deleted:
			if known {
				del = append(del, it.Key)
				if err := ob.event(ctx, EventDeleted, m.Key, m.Fingerprint, decodeData(m.Data)); err != nil {
					return err
				}
			}
		case it.Unstable:
			if known {
				touch = append(touch, it.Key)
			}
		case !known:
			put = append(put, ob.entry(it))
			if err := ob.event(ctx, EventCreated, it.Key, it.Fingerprint, it.Data); err != nil {
				return err
			}
		case m.Fingerprint != it.Fingerprint:
			put = append(put, ob.entry(it))
			if err := ob.event(ctx, EventUpdated, it.Key, it.Fingerprint, it.Data); err != nil {
				return err
			}
		default:
			touch = append(touch, it.Key)
		}
	}
	ob.changed = ob.changed || len(put) > 0 || len(del) > 0
	if err := ob.tx.MirrorPut(put); err != nil {
		return err
	}
	if err := ob.tx.MirrorTouch(touch); err != nil {
		return err
	}
	return ob.tx.MirrorDelete(del)
}

// mayBeStale reports whether item it, which differs from its mirror entry
// m, may have been read before the observation that wrote m: m changed
// after the last change the watcher had been told of before its read.
// Comparing then could undo a newer change and start an event for an
// older version (copy A reads a row, copy B reads it after an update and
// reports it, then A's page arrives). Such an item is deferred: the
// watcher reads it again, after this answer, and that read is newer than
// m for certain. Items equal to m need no such care.
func (ob *observer) mayBeStale(m store.MirrorEntry, it model.ObservedItem) bool {
	if ob.readAfter == nil || m.Seq <= *ob.readAfter {
		return false
	}
	return it.Deleted || (!it.Unstable && m.Fingerprint != it.Fingerprint)
}

// deleteStale reports every mirror entry not seen since the pass began as
// deleted.
func (ob *observer) deleteStale(ctx context.Context, passStart time.Time) error {
	for {
		stale, err := ob.tx.MirrorStale(passStart, staleBatch)
		if err != nil {
			return err
		}
		if len(stale) == 0 {
			return nil
		}
		keys := make([]string, len(stale))
		for i, m := range stale {
			keys[i] = m.Key
			if err := ob.event(ctx, EventDeleted, m.Key, m.Fingerprint, decodeData(m.Data)); err != nil {
				return err
			}
		}
		if err := ob.tx.MirrorDelete(keys); err != nil {
			return err
		}
		ob.changed = true
		if len(stale) < staleBatch {
			return nil
		}
	}
}

// event starts (or records) what one change maps to.
func (ob *observer) event(ctx context.Context, ev, key, fp string, data map[string]any) error {
	if ob.baseline {
		ob.baseN++
		return nil
	}
	a, ok := ob.actions[ev]
	if !ok {
		return nil // this watcher ignores the event
	}
	instName := fmt.Sprintf("%s/%s/%s/%s@%s", ob.kind, ob.name, ev, key, fp)
	rec := model.TriggerRecord{Trigger: ob.name, Key: ev + ":" + key + "@" + fp, Event: ev, Instance: instName, At: ob.now}
	if ob.dry {
		rec.Action, rec.Reason = model.RecordSkipped, "dry run: would start "+instName
		ob.recs = append(ob.recs, rec)
		return nil
	}
	d := make(map[string]any, len(data)+2)
	for k, v := range data {
		d[k] = v
	}
	d["event"], d["key"] = ev, key
	env := template.Env{Event: d}
	if ob.kind == "table" {
		env = template.Env{Row: d, Event: map[string]any{"event": ev, "key": key}}
	}
	spec := model.InstanceSpec{Template: a.cfg.Template, Name: instName, Priority: a.cfg.Priority}
	p := ob.s.prepare(ctx, ob.name, spec, a.args, env)
	r, created, err := create(ob.tx, rec, p)
	if err != nil {
		return err
	}
	ob.started = ob.started || created
	ob.recs = append(ob.recs, r)
	return nil
}

// entry is the mirror entry of it, as changed by this observation.
func (ob *observer) entry(it model.ObservedItem) store.MirrorEntry {
	var data json.RawMessage
	if len(it.Data) > 0 {
		data, _ = json.Marshal(it.Data)
	}
	return store.MirrorEntry{Key: it.Key, Fingerprint: it.Fingerprint, Data: data, Seq: ob.seq}
}

func decodeData(b json.RawMessage) map[string]any {
	m := map[string]any{}
	if len(b) > 0 {
		_ = json.Unmarshal(b, &m)
	}
	return m
}
