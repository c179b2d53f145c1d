package postgres

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/dpe-engine/dpe/internal/model"
	"github.com/dpe-engine/dpe/internal/store"
)

// InstanceAdvanceMany applies the advances in one transaction. The common
// ones (jobs and steps, no children, no cancels) go together, in a fixed
// number of statements whatever their number: one lock of every
// instance, one insert of every job, one upsert of every step, one update
// of every instance. The others, and an instance named twice, go one by
// one first, as InstanceAdvance applies them. An advance refused by its
// fence is reported in its result and changes nothing; any other failure
// rolls the whole batch back.
func (s *Store) InstanceAdvanceMany(ctx context.Context, as []model.Advance, now time.Time) ([]store.AdvanceResult, error) {
	const op = "advance batch"
	out := make([]store.AdvanceResult, len(as))
	prepared := make([]*advance, len(as))
	count := make(map[int64]int, len(as))
	var single, together []int
	for i, a := range as {
		in, err := prepareAdvance(a, now)
		if err != nil {
			out[i].Err = s.wrap(op, fmt.Errorf("instance %d: %w", a.InstanceID, err))
			continue
		}
		prepared[i] = in
		count[a.InstanceID]++
	}
	for i, a := range prepared {
		switch {
		case a == nil:
		case len(a.children) > 0 || len(a.CancelJobs) > 0 || len(a.CancelChildren) > 0 || count[a.InstanceID] > 1:
			single = append(single, i)
		default:
			together = append(together, i)
		}
	}
	byInstance := func(x, y int) int { return cmp.Compare(as[x].InstanceID, as[y].InstanceID) }
	slices.SortStableFunc(single, byInstance)
	slices.SortFunc(together, byInstance)
	err := s.tx(ctx, op, func(tx pgx.Tx) error {
		for _, i := range single {
			a := prepared[i]
			cur, err := a.fence(ctx, tx)
			if errors.Is(err, model.ErrConflict) || errors.Is(err, model.ErrNotFound) {
				out[i] = store.AdvanceResult{Err: s.wrap(op, err)}
				continue
			}
			if err != nil {
				return err
			}
			inst, err := a.write(ctx, tx, cur)
			if err != nil {
				return fmt.Errorf("instance %d: %w", a.InstanceID, err)
			}
			out[i] = store.AdvanceResult{Instance: inst}
		}
		return s.advanceTogether(ctx, tx, prepared, together, out, now)
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// advanceTogether applies the advances prepared[idx] (jobs and steps
// only, one per instance, in instance id order) with one statement per
// kind of write, filling out.
func (s *Store) advanceTogether(ctx context.Context, tx pgx.Tx, prepared []*advance, idx []int, out []store.AdvanceResult, now time.Time) error {
	if len(idx) == 0 {
		return nil
	}
	ids := make([]int64, len(idx))
	for k, i := range idx {
		ids[k] = prepared[i].InstanceID
	}
	rows, err := tx.Query(ctx, `SELECT `+instanceCols+` FROM instances WHERE id = ANY($1::int8[]) ORDER BY id FOR UPDATE`, ids)
	if err != nil {
		return err
	}
	locked, err := collectInstances(rows)
	if err != nil {
		return err
	}
	cur := make(map[int64]model.Instance, len(locked))
	for _, inst := range locked {
		cur[inst.ID] = inst
	}

	// The fence, as advance.fence checks it.
	var live []int
	for _, i := range idx {
		a := prepared[i]
		c, ok := cur[a.InstanceID]
		switch {
		case !ok:
			out[i].Err = s.wrap("advance batch", fmt.Errorf("instance %d: %w", a.InstanceID, model.ErrNotFound))
		case a.Worker == "" || c.Worker != a.Worker || c.Epoch != a.Epoch:
			out[i].Err = s.wrap("advance batch", fmt.Errorf("instance %d is held by %q with epoch %d, not by %q with epoch %d: %w",
				a.InstanceID, c.Worker, c.Epoch, a.Worker, a.Epoch, model.ErrConflict))
		default:
			live = append(live, i)
		}
	}
	if len(live) == 0 {
		return nil
	}

	// Every job of every advance in one insert; each id goes into its
	// advance's step.
	stepIDsOf := make(map[int]*stepIDs, len(live))
	jobs := &insertColumns{}
	type jobOf struct {
		advance int // index in prepared
		step    string
	}
	var owners []jobOf // of each job, in insert order
	for _, i := range live {
		a := prepared[i]
		stepIDsOf[i] = newStepIDs(append([]model.Step(nil), a.Steps...))
		for _, sp := range a.Jobs {
			jobs.add(sp.WithDefaults(), now)
			owners = append(owners, jobOf{i, sp.Step})
		}
	}
	if len(owners) > 0 {
		inserted, err := insertJobs(ctx, tx, jobs, now)
		if err != nil {
			return err
		}
		for k, in := range inserted {
			stepIDsOf[owners[k].advance].setJob(owners[k].step, in.Job.ID)
		}
	}

	var stepRows stepColumns
	for _, i := range live {
		a := prepared[i]
		for _, st := range stepIDsOf[i].steps {
			stepRows.add(a.InstanceID, st)
		}
		if err := stepIDsOf[i].storeRest(ctx, tx, a.InstanceID); err != nil {
			return err
		}
	}
	if err := stepRows.upsert(ctx, tx); err != nil {
		return err
	}

	updated, err := updateInstances(ctx, tx, prepared, live, cur, now)
	if err != nil {
		return err
	}
	notify := false
	for _, i := range live {
		inst, ok := updated[prepared[i].InstanceID]
		if !ok {
			return fmt.Errorf("instance %d: locked but not updated", prepared[i].InstanceID)
		}
		out[i] = store.AdvanceResult{Instance: inst}
		notify = notify || (inst.WakeAt != nil && !inst.WakeAt.After(now))
		if inst.State.Final() {
			woke, err := wakeFollowers(ctx, tx, inst, now)
			if err != nil {
				return err
			}
			notify = notify || woke
		}
	}
	if notify {
		return notifyInstances(ctx, tx)
	}
	return nil
}

// updateInstancesSQL is advanceInstanceSQL for many instances at once.
var updateInstancesSQL = `
UPDATE instances i SET
	state       = u.state,
	progress    = u.progress,
	current     = u.current::jsonb,
	vars        = u.vars::json,
	output      = u.output::json,
	error       = u.error,
	started_at  = u.started_at,
	finished_at = u.finished_at,
	wake_at     = u.wake_at,
	worker      = u.worker,
	lease_until = u.lease_until,
	updated_at  = $13
FROM unnest($1::int8[], $2::text[], $3::int4[], $4::text[], $5::text[], $6::text[], $7::text[],
	$8::timestamptz[], $9::timestamptz[], $10::timestamptz[], $11::text[], $12::timestamptz[])
	AS u(id, state, progress, current, vars, output, error, started_at, finished_at, wake_at, worker, lease_until)
WHERE i.id = u.id
RETURNING ` + instanceColsOf("i")

// updateInstances writes the new state of the advances prepared[idx] of
// the locked rows cur, returning the instances by id.
func updateInstances(ctx context.Context, tx pgx.Tx, prepared []*advance, idx []int, cur map[int64]model.Instance, now time.Time) (map[int64]model.Instance, error) {
	n := len(idx)
	var (
		ids                                 = make([]int64, n)
		states, errs, workers               = make([]string, n), make([]string, n), make([]string, n)
		progress                            = make([]int32, n)
		currents, vars, outputs             = make([]*string, n), make([]*string, n), make([]*string, n)
		starts, finishes, wakes, leaseUntil = make([]*time.Time, n), make([]*time.Time, n), make([]*time.Time, n), make([]*time.Time, n)
	)
	for k, i := range idx {
		a := prepared[i]
		r := a.row(cur[a.InstanceID])
		ids[k], states[k], progress[k], errs[k] = a.InstanceID, r.state, int32(a.Progress), a.Error
		currents[k], vars[k], outputs[k] = a.current, rawJSON(a.Vars), rawJSON(a.Output)
		starts[k], finishes[k], wakes[k], workers[k], leaseUntil[k] = r.started, r.finished, r.wakeAt, r.worker, r.leaseUntil
	}
	rows, err := tx.Query(ctx, updateInstancesSQL, ids, states, progress, currents, vars, outputs, errs,
		starts, finishes, wakes, workers, leaseUntil, now)
	if err != nil {
		return nil, err
	}
	list, err := collectInstances(rows)
	if err != nil {
		return nil, err
	}
	out := make(map[int64]model.Instance, len(list))
	for _, inst := range list {
		out[inst.ID] = inst
	}
	return out, nil
}
