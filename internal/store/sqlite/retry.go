package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/dpe-engine/dpe/internal/model"
	"github.com/dpe-engine/dpe/internal/store"
)

// JobRetry queues a failed or canceled job again, as
// store.RetryStandaloneJob decides.
func (s *Store) JobRetry(ctx context.Context, id int64, now time.Time) (model.Job, error) {
	var j model.Job
	err := s.write(ctx, "retry job", func(tx *txn) error {
		cur, err := getJob(ctx, tx, id)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("job %d: %w", id, model.ErrNotFound)
		}
		if err != nil {
			return err
		}
		next, err := store.RetryStandaloneJob(cur, now)
		if err != nil {
			return err
		}
		j, err = writeRetriedJob(ctx, tx, next)
		return err
	})
	if err != nil {
		return model.Job{}, err
	}
	return j, nil
}

// writeRetriedJob stores a job as store.RetryJob left it. The state guard
// makes a job that moved meanwhile (it cannot, in one writer) a conflict.
func writeRetriedJob(ctx context.Context, tx *txn, j model.Job) (model.Job, error) {
	out, err := scanJob(tx.QueryRowContext(ctx, `
		UPDATE jobs SET state = 'queued', attempt = ?, run_after = ?, result = NULL, error = '',
			progress = 0, message = '', cancel_asked = 0, processor = '', lease_until = NULL,
			started_at = NULL, finished_at = NULL, updated_at = ?
		WHERE id = ? AND state IN ('failed', 'canceled')
		RETURNING `+jobCols, j.Attempt, ms(j.RunAfter), ms(j.UpdatedAt), j.ID))
	if errors.Is(err, sql.ErrNoRows) {
		return model.Job{}, fmt.Errorf("job %d changed while being retried: %w", j.ID, model.ErrConflict)
	}
	return out, err
}

// InstanceRetry resumes a failed or canceled instance from its failed
// steps (store.PlanRetry), its sub-workflows with it, in one transaction.
func (s *Store) InstanceRetry(ctx context.Context, id int64, now time.Time) (model.Instance, error) {
	var out model.Instance
	err := s.write(ctx, "retry instance", func(tx *txn) error {
		var err error
		out, err = retryInstance(ctx, tx, id, false, now)
		return err
	})
	if err != nil {
		return model.Instance{}, err
	}
	return out, nil
}

func retryInstance(ctx context.Context, tx *txn, id int64, child bool, now time.Time) (model.Instance, error) {
	in, err := getInstance(ctx, tx, id)
	if errors.Is(err, sql.ErrNoRows) {
		return model.Instance{}, fmt.Errorf("instance %d: %w", id, model.ErrNotFound)
	}
	if err != nil {
		return model.Instance{}, err
	}
	if err := store.CheckRetryInstance(in, child); err != nil {
		return model.Instance{}, err
	}
	if in.ConcurrencyKey != "" {
		var busy int64
		err := tx.QueryRowContext(ctx, `SELECT id FROM instances
			WHERE concurrency_key = ? AND state IN `+liveStates+` AND id <> ? LIMIT 1`, in.ConcurrencyKey, id).Scan(&busy)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return model.Instance{}, err
		}
		if err := store.CheckRetryKey(in, busy); err != nil {
			return model.Instance{}, err
		}
	}
	steps, jobs, children, err := retryInputs(ctx, tx, id)
	if err != nil {
		return model.Instance{}, err
	}
	plan, err := store.PlanRetry(steps, jobs, children)
	if err != nil {
		return model.Instance{}, fmt.Errorf("instance %d: %w", id, err)
	}
	for _, p := range plan.Drop {
		if _, err := tx.ExecContext(ctx, `DELETE FROM steps WHERE instance_id = ? AND path = ?`, id, p); err != nil {
			return model.Instance{}, err
		}
	}
	for _, st := range plan.Reset {
		if _, err := tx.ExecContext(ctx, `UPDATE steps SET state = 'running', error = '', finished_at = NULL
			WHERE instance_id = ? AND path = ?`, id, st.Path); err != nil {
			return model.Instance{}, err
		}
	}
	for _, jid := range plan.Jobs {
		next, err := store.RetryJob(jobs[jid], now)
		if err != nil {
			return model.Instance{}, err
		}
		if _, err := writeRetriedJob(ctx, tx, next); err != nil {
			return model.Instance{}, err
		}
	}
	for _, cid := range plan.Children {
		if _, err := retryInstance(ctx, tx, cid, true, now); err != nil {
			return model.Instance{}, err
		}
	}
	next := store.RetryInstance(in, now)
	return scanInstance(tx.QueryRowContext(ctx, `
		UPDATE instances SET state = 'running', error = '', output = NULL, cancel_asked = 0,
			finished_at = NULL, current = '[]', started_at = ?, wake_at = ?, wake_seq = ?, updated_at = ?
		WHERE id = ?
		RETURNING `+instCols, ms(*next.StartedAt), ms(*next.WakeAt), next.WakeSeq, ms(now), id))
}

// retryInputs reads an instance's step records and the jobs and children
// they point at.
func retryInputs(ctx context.Context, tx *txn, id int64) ([]model.Step, map[int64]model.Job, map[int64]model.Instance, error) {
	rows, err := tx.QueryContext(ctx, `SELECT `+stepCols+` FROM steps WHERE instance_id = ? ORDER BY path`, id)
	if err != nil {
		return nil, nil, nil, err
	}
	var steps []model.Step
	for rows.Next() {
		st, err := scanStep(rows)
		if err != nil {
			rows.Close()
			return nil, nil, nil, err
		}
		steps = append(steps, st)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, nil, nil, err
	}
	jobs := map[int64]model.Job{}
	children := map[int64]model.Instance{}
	for _, st := range steps {
		if st.State != model.StepFailed && st.State != model.StepCanceled {
			continue // only the records a retry may touch
		}
		if st.JobID != 0 {
			j, err := getJob(ctx, tx, st.JobID)
			switch {
			case err == nil:
				jobs[j.ID] = j
			case !errors.Is(err, sql.ErrNoRows):
				return nil, nil, nil, err
			}
		}
		if st.ChildID != 0 {
			c, err := getInstance(ctx, tx, st.ChildID)
			switch {
			case err == nil:
				children[c.ID] = c
			case !errors.Is(err, sql.ErrNoRows):
				return nil, nil, nil, err
			}
		}
	}
	return steps, jobs, children, nil
}
