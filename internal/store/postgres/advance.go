package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/dpe-engine/dpe/internal/model"
)

// InstanceAdvance applies a worker's decision in one transaction, under the
// epoch of its lease (see store.InstanceStore for the contract). Details of
// this engine:
//
//   - fencing: the instance must be held by a.Worker with a.Epoch; an
//     expired lease nobody took still counts as held. Otherwise
//     model.ErrConflict (model.ErrNotFound for a missing instance) and
//     nothing changes.
//   - jobs are inserted exactly as JobInsert does; children are created as
//     InstanceCreate does (ParentID defaults to this instance). Their ids
//     go into the step of a.Steps whose path is the job's Step (the child's
//     ParentStep), or else into the stored step of that path, if any.
//   - cancels of missing or final jobs and children are ignored. A cancel
//     the advance makes itself is no event for this instance (the decision
//     knows of it), but a child it cancels is woken.
//   - StartedAt is set by the first advance (an instance that ends at its
//     first look has started then too); Vars, Output and Error are stored
//     as given; Progress is clamped to 0–100.
func (s *Store) InstanceAdvance(ctx context.Context, a model.Advance, now time.Time) (model.Instance, error) {
	const op = "advance"
	in, err := prepareAdvance(a, now)
	if err != nil {
		return model.Instance{}, s.wrap(op, err)
	}
	var out model.Instance
	err = s.tx(ctx, op, func(tx pgx.Tx) error {
		var err error
		out, err = in.apply(ctx, tx)
		return err
	})
	if err != nil {
		return model.Instance{}, err
	}
	return out, nil
}

// advance is a validated model.Advance with its parameters prepared.
type advance struct {
	model.Advance
	now      time.Time
	jobs     *insertColumns // nil: no jobs
	children []model.InstanceSpec
	current  *string
}

// prepareAdvance validates a and fills its defaults, before any
// transaction starts.
func prepareAdvance(a model.Advance, now time.Time) (*advance, error) {
	if !a.State.Valid() {
		return nil, model.Invalid("state", "unknown state %q", a.State)
	}
	a.Progress = min(max(a.Progress, 0), 100)
	for _, f := range []struct {
		name string
		v    json.RawMessage
	}{{"vars", a.Vars}, {"output", a.Output}} {
		if len(f.v) > 0 && !json.Valid(f.v) {
			return nil, model.Invalid(f.name, "not valid JSON")
		}
	}
	in := &advance{Advance: a, now: now}
	var err error
	if in.current, err = currentJSON(a.Current); err != nil {
		return nil, model.Invalid("current", "%v", err)
	}
	if len(a.Jobs) > 0 {
		if in.jobs, err = newInsertColumns(a.Jobs, now); err != nil {
			return nil, err
		}
	}
	for i, c := range a.Children {
		if c.ParentID == 0 {
			c.ParentID = a.InstanceID
		}
		if c, err = normalizeSpec(c, fmt.Sprintf("children[%d].", i)); err != nil {
			return nil, err
		}
		in.children = append(in.children, c)
	}
	// One record per path, the last given winning: an upsert may not
	// touch a row twice in one statement.
	byPath := make(map[string]int, len(a.Steps))
	var steps []model.Step
	for i, st := range a.Steps {
		switch {
		case st.Path == "":
			return nil, model.Invalid(fmt.Sprintf("steps[%d].path", i), "required")
		case len(st.Result) > 0 && !json.Valid(st.Result):
			return nil, model.Invalid(fmt.Sprintf("steps[%d].result", i), "not valid JSON")
		}
		if st.StartedAt.IsZero() {
			st.StartedAt = now
		}
		if j, ok := byPath[st.Path]; ok {
			steps[j] = st
			continue
		}
		byPath[st.Path] = len(steps)
		steps = append(steps, st)
	}
	in.Steps = steps
	return in, nil
}

// apply runs the advance in tx. It may run more than once (a transaction
// retried after a deadlock), so it changes nothing in a but the copy of the
// steps it fills ids into.
func (a *advance) apply(ctx context.Context, tx pgx.Tx) (model.Instance, error) {
	cur, err := a.fence(ctx, tx)
	if err != nil {
		return model.Instance{}, err
	}
	return a.write(ctx, tx, cur)
}

// fence takes the advance's locks and checks that a.Worker still holds
// the instance at a.Epoch: model.ErrConflict or model.ErrNotFound when
// not. It writes nothing, so a refused advance of a batch leaves the
// transaction as it was.
func (a *advance) fence(ctx context.Context, tx pgx.Tx) (model.Instance, error) {
	// Lock order, the same everywhere so that no two transactions wait on
	// each other in a cycle: jobs before instances (the job methods lock a
	// job, then wake its instance), children before their parent (a
	// child's final advance locks itself, then wakes its parent). Locking
	// before the fencing check costs nothing when it fails: the rollback
	// drops the locks.
	if len(a.CancelJobs) > 0 {
		if _, err := tx.Exec(ctx, `SELECT id FROM jobs WHERE id = ANY($1::int8[]) ORDER BY id FOR UPDATE`, a.CancelJobs); err != nil {
			return model.Instance{}, err
		}
	}
	if len(a.CancelChildren) > 0 {
		if _, err := tx.Exec(ctx, `
			SELECT id FROM instances WHERE id = ANY($1::int8[]) AND id <> $2 ORDER BY id FOR UPDATE`,
			a.CancelChildren, a.InstanceID); err != nil {
			return model.Instance{}, err
		}
	}
	cur, err := scanInstance(tx.QueryRow(ctx, `SELECT `+instanceCols+` FROM instances WHERE id = $1 FOR UPDATE`, a.InstanceID))
	if err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			return model.Instance{}, fmt.Errorf("instance %d: %w", a.InstanceID, model.ErrNotFound)
		}
		return model.Instance{}, err
	}
	if a.Worker == "" || cur.Worker != a.Worker || cur.Epoch != a.Epoch {
		return model.Instance{}, fmt.Errorf("instance %d is held by %q with epoch %d, not by %q with epoch %d: %w",
			a.InstanceID, cur.Worker, cur.Epoch, a.Worker, a.Epoch, model.ErrConflict)
	}
	return cur, nil
}

// write applies the advance to the instance cur, locked and fenced.
func (a *advance) write(ctx context.Context, tx pgx.Tx, cur model.Instance) (model.Instance, error) {
	steps := append([]model.Step(nil), a.Steps...)
	ids := newStepIDs(steps)
	notify := false // some instance became due: tell the workers

	if a.jobs != nil {
		inserted, err := insertJobs(ctx, tx, a.jobs, a.now)
		if err != nil {
			return model.Instance{}, err
		}
		// In spec order; a job found by its key counts for the step of
		// the spec that found it.
		for i, in := range inserted {
			ids.setJob(a.Jobs[i].Step, in.Job.ID)
		}
	}
	for _, spec := range a.children {
		child, existing, err := createInstance(ctx, tx, spec, a.now)
		if err != nil {
			return model.Instance{}, fmt.Errorf("child %s: %w", spec.Name, err)
		}
		notify = notify || !existing
		ids.setChild(spec.ParentStep, child.ID)
	}
	if err := upsertSteps(ctx, tx, a.InstanceID, steps); err != nil {
		return model.Instance{}, err
	}
	if err := ids.storeRest(ctx, tx, a.InstanceID); err != nil {
		return model.Instance{}, err
	}
	woke, err := a.cancel(ctx, tx)
	if err != nil {
		return model.Instance{}, err
	}
	notify = notify || woke

	out, err := a.update(ctx, tx, cur)
	if err != nil {
		return model.Instance{}, err
	}
	// Due now (an event came meanwhile, a WakeAt already passed, or
	// released while due): whoever may claim it should look.
	notify = notify || (out.WakeAt != nil && !out.WakeAt.After(a.now))
	if out.State.Final() {
		woke, err := wakeFollowers(ctx, tx, out, a.now)
		if err != nil {
			return model.Instance{}, err
		}
		notify = notify || woke
	}
	if notify {
		if err := notifyInstances(ctx, tx); err != nil {
			return model.Instance{}, err
		}
	}
	return out, nil
}

// advanceCancelJobsSQL cancels an advance's jobs as JobCancel does: queued
// ones at once, running ones asked to stop, final or missing ones left
// alone. A queued job's end wakes its instance, unless that is the
// advancing instance ($3) itself.
const advanceCancelJobsSQL = `
WITH upd AS (
	UPDATE jobs SET
		state        = CASE WHEN state = 'queued' THEN 'canceled' ELSE state END,
		finished_at  = CASE WHEN state = 'queued' THEN $2::timestamptz ELSE finished_at END,
		cancel_asked = true,
		updated_at   = $2
	WHERE id = ANY($1::int8[]) AND (state = 'queued' OR (state = 'running' AND NOT cancel_asked))
	RETURNING instance_id, state
), woken AS (
	UPDATE instances i SET wake_at = $2, wake_seq = i.wake_seq + 1
	FROM (SELECT DISTINCT instance_id FROM upd
	      WHERE state = 'canceled' AND instance_id IS NOT NULL AND instance_id <> $3) w
	WHERE i.id = w.instance_id AND i.state IN ` + liveStates + `
	RETURNING i.id
)
SELECT count(*) FROM woken`

// advanceCancelChildrenSQL asks live children to stop and wakes them, as
// InstanceCancel does.
const advanceCancelChildrenSQL = `
UPDATE instances SET
	cancel_asked = true,
	wake_at      = $2,
	wake_seq     = wake_seq + 1,
	updated_at   = $2
WHERE id = ANY($1::int8[]) AND id <> $3 AND state IN ` + liveStates

// cancel applies CancelJobs and CancelChildren, reporting whether another
// instance was woken.
func (a *advance) cancel(ctx context.Context, tx pgx.Tx) (bool, error) {
	woke := false
	if len(a.CancelJobs) > 0 {
		var n int
		if err := tx.QueryRow(ctx, advanceCancelJobsSQL, a.CancelJobs, a.now, a.InstanceID).Scan(&n); err != nil {
			return false, err
		}
		woke = n > 0
	}
	if len(a.CancelChildren) > 0 {
		tag, err := tx.Exec(ctx, advanceCancelChildrenSQL, a.CancelChildren, a.now, a.InstanceID)
		if err != nil {
			return false, err
		}
		woke = woke || tag.RowsAffected() > 0
	}
	return woke, nil
}

// advanceInstanceSQL stores the decided fields; the times and the lease
// are computed by update from the locked row.
var advanceInstanceSQL = `
UPDATE instances SET
	state       = $2,
	progress    = $3,
	current     = $4::jsonb,
	vars        = $5::json,
	output      = $6::json,
	error       = $7,
	started_at  = $8,
	finished_at = $9,
	wake_at     = $10,
	worker      = $11,
	lease_until = $12,
	updated_at  = $13
WHERE id = $1
RETURNING ` + instanceCols

// update writes the instance's new state; cur is its locked row.
func (a *advance) update(ctx context.Context, tx pgx.Tx, cur model.Instance) (model.Instance, error) {
	r := a.row(cur)
	return scanInstance(tx.QueryRow(ctx, advanceInstanceSQL, a.InstanceID,
		r.state, a.Progress, a.current, rawJSON(a.Vars), rawJSON(a.Output), a.Error,
		r.started, r.finished, r.wakeAt, r.worker, r.leaseUntil, a.now))
}

// instanceRow is what an advance writes into the instance's row besides
// the decided fields given as they are.
type instanceRow struct {
	state                     string
	started, finished, wakeAt *time.Time
	worker                    string
	leaseUntil                *time.Time
}

// row computes the instance's new times and lease from its locked row.
func (a *advance) row(cur model.Instance) instanceRow {
	final := a.State.Final()
	r := instanceRow{state: string(a.State), started: cur.StartedAt, wakeAt: a.WakeAt,
		worker: cur.Worker, leaseUntil: cur.LeaseUntil}
	if r.started == nil && a.State != model.InstancePending {
		r.started = &a.now
	}
	if final {
		r.finished = &a.now
	}
	// WakeAt as decided only when no event came in since the decision
	// (the row is locked: no event can come in now); else due at once.
	if cur.WakeSeq != a.WakeSeq {
		r.wakeAt = &a.now
	}
	if final {
		// A final instance needs nobody's attention again.
		r.wakeAt = nil
	}
	if final || a.Release {
		r.worker, r.leaseUntil = "", nil
	}
	return r
}

// wakeFollowersSQL wakes the oldest pending instance of a concurrency key
// (other than the one that just ended): the one the queue rule held back.
const wakeFollowersSQL = `
UPDATE instances SET wake_at = $2, wake_seq = wake_seq + 1
WHERE id = (SELECT id FROM instances
            WHERE concurrency_key = $1 AND concurrency_key <> '' AND state = 'pending' AND id <> $3
            ORDER BY id LIMIT 1)`

// wakeFollowers wakes, after inst ended, its parent (when live) and the
// next pending instance of its concurrency key, reporting whether any was.
func wakeFollowers(ctx context.Context, tx pgx.Tx, inst model.Instance, now time.Time) (bool, error) {
	woke := false
	if inst.ParentID != 0 {
		ok, err := wakeInstance(ctx, tx, inst.ParentID, now)
		if err != nil {
			return false, err
		}
		woke = ok
	}
	if inst.ConcurrencyKey != "" {
		tag, err := tx.Exec(ctx, wakeFollowersSQL, inst.ConcurrencyKey, now, inst.ID)
		if err != nil {
			return false, err
		}
		woke = woke || tag.RowsAffected() > 0
	}
	return woke, nil
}
