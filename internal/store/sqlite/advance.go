package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/dpe-engine/dpe/internal/model"
	"github.com/dpe-engine/dpe/internal/store"
)

// InstanceAdvance applies a worker's decision in one transaction, under
// the lease it claimed: the instance must still name a.Worker at a.Epoch
// (a lease that expired without anyone taking it still counts), else
// model.ErrConflict and nothing changes; a missing instance is
// model.ErrNotFound.
//
// In order: jobs are submitted (found again by Key, as JobInsert) and
// children created (found again by name, as InstanceCreate); steps are
// upserted and the new job and child ids written into the steps of their
// paths; the listed jobs and children are asked to stop (missing or final
// ones are skipped); then the instance takes its new state. A final state
// drops the lease and WakeAt and wakes the parent and the next pending
// instance of the concurrency key.
func (s *Store) InstanceAdvance(ctx context.Context, a model.Advance, now time.Time) (model.Instance, error) {
	var out model.Instance
	err := s.write(ctx, "advance", func(tx *txn) error {
		wakeSeq, err := fenceAdvance(ctx, tx, a)
		if err != nil {
			return err
		}
		out, err = writeAdvance(ctx, tx, a, wakeSeq, now)
		return err
	})
	if err != nil {
		return model.Instance{}, err
	}
	return out, nil
}

// InstanceAdvanceMany applies the advances in one write transaction (one
// commit, one fsync), each as InstanceAdvance does. An advance refused by
// its fence changes nothing and is reported in its result; any other
// failure rolls the whole batch back.
func (s *Store) InstanceAdvanceMany(ctx context.Context, as []model.Advance, now time.Time) ([]store.AdvanceResult, error) {
	const op = "advance batch"
	out := make([]store.AdvanceResult, len(as))
	err := s.write(ctx, op, func(tx *txn) error {
		for i, a := range as {
			wakeSeq, err := fenceAdvance(ctx, tx, a)
			if errors.Is(err, model.ErrConflict) || errors.Is(err, model.ErrNotFound) {
				out[i] = store.AdvanceResult{Err: s.fail(op, err)}
				continue
			}
			if err != nil {
				return err
			}
			inst, err := writeAdvance(ctx, tx, a, wakeSeq, now)
			if err != nil {
				return fmt.Errorf("instance %d: %w", a.InstanceID, err)
			}
			out[i] = store.AdvanceResult{Instance: inst}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// writeAdvance applies a fenced advance: its work, its cancels, the
// instance's new state and, when that is final, the wake-ups it owes.
func writeAdvance(ctx context.Context, tx *txn, a model.Advance, wakeSeq int64, now time.Time) (model.Instance, error) {
	if err := submitWork(ctx, tx, a, now); err != nil {
		return model.Instance{}, err
	}
	if err := cancelWork(ctx, tx, a, now); err != nil {
		return model.Instance{}, err
	}
	out, err := applyAdvance(ctx, tx, a, wakeSeq, now)
	if err != nil || !out.State.Final() {
		return out, err
	}
	if err := wakeInstance(ctx, tx, out.ParentID, now); err != nil {
		return model.Instance{}, fmt.Errorf("wake parent %d: %w", out.ParentID, err)
	}
	return out, wakeNextOfKey(ctx, tx, out.ConcurrencyKey, now)
}

// fenceAdvance checks that a's worker still holds the instance at a's
// epoch and returns the instance's WakeSeq before the advance changes
// anything (the advance's own cancels may raise it).
func fenceAdvance(ctx context.Context, tx *txn, a model.Advance) (int64, error) {
	var (
		worker, state  string
		epoch, wakeSeq int64
	)
	err := tx.QueryRowContext(ctx, `SELECT worker, epoch, wake_seq, state FROM instances WHERE id = ?`, a.InstanceID).
		Scan(&worker, &epoch, &wakeSeq, &state)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("instance %d: %w", a.InstanceID, model.ErrNotFound)
	}
	if err != nil {
		return 0, err
	}
	// worker is '' once released or final, which no advance names.
	if worker != a.Worker || epoch != a.Epoch {
		return 0, fmt.Errorf("instance %d is %s, held by %q at epoch %d; advance is from %q at epoch %d: %w",
			a.InstanceID, state, worker, epoch, a.Worker, a.Epoch, model.ErrConflict)
	}
	return wakeSeq, nil
}

// submitWork inserts the advance's jobs and children, upserts its steps
// and links each job and child to the step of its path (whether that step
// is in this advance or stored by an earlier one).
func submitWork(ctx context.Context, tx *txn, a model.Advance, now time.Time) error {
	type link struct {
		path   string
		column string
		id     int64
	}
	var links []link
	for i, spec := range a.Jobs {
		in, err := insertJob(ctx, tx, spec.WithDefaults(), now)
		if err != nil {
			return fmt.Errorf("job %d: %w", i, err)
		}
		links = append(links, link{in.Job.Step, "job_id", in.Job.ID})
	}
	for i, spec := range a.Children {
		if spec.ParentID == 0 {
			spec.ParentID = a.InstanceID // as the PostgreSQL engine does
		}
		child, _, err := createInstance(ctx, tx, spec, now)
		if err != nil {
			return fmt.Errorf("child %d (%s): %w", i, spec.Name, err)
		}
		links = append(links, link{child.ParentStep, "child_id", child.ID})
	}
	// An id whose step is in this advance goes into its record (the last
	// record of the path, the one that stays); the others into the stored
	// step of that path.
	steps := slices.Clone(a.Steps)
	last := make(map[string]int, len(steps))
	for i, st := range steps {
		last[st.Path] = i
	}
	rest := links[:0:0]
	for _, l := range links {
		i, ok := last[l.path]
		switch {
		case !ok:
			rest = append(rest, l)
		case l.column == "job_id":
			steps[i].JobID = l.id
		default:
			steps[i].ChildID = l.id
		}
	}
	for _, st := range steps {
		if err := upsertStep(ctx, tx, a.InstanceID, st, now); err != nil {
			return fmt.Errorf("step %q: %w", st.Path, err)
		}
	}
	for _, l := range rest {
		// column is one of two constants above, never input.
		if _, err := tx.ExecContext(ctx, `UPDATE steps SET `+l.column+` = ? WHERE instance_id = ? AND path = ?`,
			l.id, a.InstanceID, l.path); err != nil {
			return fmt.Errorf("step %q: %w", l.path, err)
		}
	}
	return nil
}

// upsertStepSQL stores a step record by (instance, path). A zero job_id or
// child_id means "not known to this advance", never "none": NULLIF turns
// it into NULL and COALESCE keeps the stored id, so a later record of the
// step (its end, say) cannot orphan the job or child it waits for.
const upsertStepSQL = `
INSERT INTO steps (instance_id, path, step_id, kind, state, result, error, job_id, child_id,
	wake_at, started_at, finished_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (instance_id, path) DO UPDATE SET
	step_id = excluded.step_id, kind = excluded.kind, state = excluded.state,
	result = excluded.result, error = excluded.error, wake_at = excluded.wake_at,
	started_at = excluded.started_at, finished_at = excluded.finished_at,
	job_id = COALESCE(NULLIF(excluded.job_id, 0), steps.job_id),
	child_id = COALESCE(NULLIF(excluded.child_id, 0), steps.child_id)`

// upsertStep stores one step record. A step without StartedAt started now.
func upsertStep(ctx context.Context, tx *txn, instanceID int64, st model.Step, now time.Time) error {
	started := st.StartedAt
	if started.IsZero() {
		started = now
	}
	_, err := tx.ExecContext(ctx, upsertStepSQL, instanceID, st.Path, st.ID, st.Kind, string(st.State),
		nullJSON(st.Result), st.Error, st.JobID, st.ChildID, nullMS(st.WakeAt), ms(started), nullMS(st.FinishedAt))
	return err
}

// cancelWork asks the advance's jobs and children to stop, as JobCancel
// and InstanceCancel do. Jobs and children already final or gone (purged)
// need nothing: the decision to stop them stands either way.
func cancelWork(ctx context.Context, tx *txn, a model.Advance, now time.Time) error {
	for _, id := range a.CancelJobs {
		if _, err := cancelJob(ctx, tx, id, now); err != nil && !errors.Is(err, model.ErrNotFound) && !errors.Is(err, model.ErrConflict) {
			return fmt.Errorf("cancel job %d: %w", id, err)
		}
	}
	for _, id := range a.CancelChildren {
		if _, err := cancelInstance(ctx, tx, id, now); err != nil && !errors.Is(err, model.ErrNotFound) && !errors.Is(err, model.ErrConflict) {
			return fmt.Errorf("cancel child %d: %w", id, err)
		}
	}
	return nil
}

// applyAdvance sets the instance's new state. wakeSeq is the count of
// events before this advance: when the decision was made on an older one,
// an event came in meanwhile and the instance stays due (WakeAt = now)
// instead of sleeping until a.WakeAt. StartedAt is set on the first
// advance, whatever its state; FinishedAt on a final one.
func applyAdvance(ctx context.Context, tx *txn, a model.Advance, wakeSeq int64, now time.Time) (model.Instance, error) {
	current, err := encodeList(a.Current)
	if err != nil {
		return model.Instance{}, err
	}
	final := a.State.Final()
	wakeAt := nullMS(a.WakeAt)
	var finished any
	switch {
	case final:
		wakeAt, finished = nil, ms(now)
	case wakeSeq != a.WakeSeq:
		wakeAt = ms(now)
	}
	dropLease := final || a.Release
	return scanInstance(tx.QueryRowContext(ctx, `
		UPDATE instances SET
			state = ?, progress = ?, current = ?, vars = ?, output = ?, error = ?,
			wake_at = ?, finished_at = COALESCE(?, finished_at), started_at = COALESCE(started_at, ?),
			worker = CASE WHEN ? THEN '' ELSE worker END,
			lease_until = CASE WHEN ? THEN NULL ELSE lease_until END,
			updated_at = ?
		WHERE id = ?
		RETURNING `+instCols,
		string(a.State), a.Progress, current, nullJSON(a.Vars), nullJSON(a.Output), a.Error,
		wakeAt, finished, ms(now), dropLease, dropLease, ms(now), a.InstanceID))
}

// wakeNextOfKey wakes the oldest pending instance of a concurrency key
// once an instance of it ended: with policy queue, the one next in line.
// A seek on instances_key (concurrency_key, state, id).
func wakeNextOfKey(ctx context.Context, tx *txn, key string, now time.Time) error {
	if key == "" {
		return nil
	}
	_, err := tx.ExecContext(ctx, `
		UPDATE instances SET wake_at = ?, wake_seq = wake_seq + 1, updated_at = ?
		WHERE id = (
			SELECT id FROM instances
			WHERE concurrency_key = ? AND state = 'pending'
			ORDER BY id LIMIT 1)`,
		ms(now), ms(now), key)
	if err != nil {
		return fmt.Errorf("wake next of key %q: %w", key, err)
	}
	return nil
}
