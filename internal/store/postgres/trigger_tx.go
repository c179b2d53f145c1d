package postgres

import (
	"context"
	"encoding/json"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/dpe-engine/dpe/internal/model"
	"github.com/dpe-engine/dpe/internal/store"
)

// triggerTx is the store.TriggerTx of one TriggerDo attempt. Changes to
// the trigger's own row (state, mirror count, last event, updated_at) are
// collected here and written by finish in one UPDATE, so a page of
// observations makes one new version of the row, not one per call.
type triggerTx struct {
	ctx context.Context
	s   *Store
	tx  pgx.Tx
	now time.Time

	locked    model.Trigger   // the row as locked: what Trigger returns
	state     json.RawMessage // the state to store
	mirrored  int             // the mirror's size after the calls so far
	lastEvent *time.Time
	notify    bool // an instance was created: tell the workers
}

var _ store.TriggerTx = (*triggerTx)(nil)

func newTriggerTx(ctx context.Context, s *Store, tx pgx.Tx, t model.Trigger, now time.Time) *triggerTx {
	return &triggerTx{
		ctx: ctx, s: s, tx: tx, now: now,
		locked: t, state: t.State, mirrored: t.Mirrored, lastEvent: t.LastEventAt,
	}
}

// wrap prefixes err with "postgres: trigger: op" and translates it as the
// store's other methods do.
func (x *triggerTx) wrap(op string, err error) error {
	return x.s.wrap("trigger: "+op, err)
}

// Trigger returns the trigger's row as it was when TriggerDo locked it.
func (x *triggerTx) Trigger() model.Trigger {
	t := x.locked
	t.State = append(json.RawMessage(nil), t.State...)
	return t
}

// SetState replaces the trigger's state (empty: {}). It is written when fn
// returns.
func (x *triggerTx) SetState(state json.RawMessage) error {
	if len(state) == 0 {
		state = json.RawMessage(`{}`)
	}
	if !json.Valid(state) {
		return x.wrap("set state", model.Invalid("state", "not valid JSON"))
	}
	x.state = append(json.RawMessage(nil), state...)
	return nil
}

// InstanceCreate creates an instance as InstanceStore.InstanceCreate does
// (the same code, with its template and concurrency-key advisory locks),
// inside the trigger's transaction, storing spec.Trigger as given (the
// service sets it to this trigger; ActiveInstances counts only instances
// that carry it). A policy-skip conflict (model.ErrConflict) runs no
// failing statement, so the transaction stays usable.
func (x *triggerTx) InstanceCreate(spec model.InstanceSpec) (model.Instance, bool, error) {
	const op = "create instance"
	spec, err := normalizeSpec(spec, "")
	if err != nil {
		return model.Instance{}, false, x.wrap(op, err)
	}
	in, existing, err := createInstance(x.ctx, x.tx, spec, x.now)
	if err != nil {
		return model.Instance{}, false, x.wrap(op, err)
	}
	x.notify = x.notify || !existing
	return in, existing, nil
}

// activeInstancesSQL counts a trigger's live instances. The state
// predicate is the one of the partial index instances_live_trigger, so
// finished instances cost nothing.
const activeInstancesSQL = `SELECT count(*) FROM instances WHERE trigger = $1 AND state IN ` + liveStates

// ActiveInstances counts the pending and running instances this trigger
// started, those created earlier in this transaction included.
func (x *triggerTx) ActiveInstances() (int, error) {
	var n int
	err := x.tx.QueryRow(x.ctx, activeInstancesSQL, x.locked.Name).Scan(&n)
	if err != nil {
		return 0, x.wrap("active instances", err)
	}
	return n, nil
}

// finishSQL writes what the calls of fn changed on the trigger's row.
const finishSQL = `
UPDATE triggers SET
	state         = $2::json,
	mirrored      = $3,
	last_event_at = $4,
	updated_at    = $5
WHERE name = $1`

// finish writes the trigger's row and, when an instance was created, sends
// the "@instances" notification (delivered on commit only), in one round
// trip.
func (x *triggerTx) finish() error {
	b := &pgx.Batch{}
	b.Queue(finishSQL, x.locked.Name, string(x.state), x.mirrored, x.lastEvent, x.now)
	if x.notify {
		b.Queue(notifyInstancesSQL)
	}
	return x.tx.SendBatch(x.ctx, b).Close()
}
