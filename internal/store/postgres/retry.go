package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/dpe-engine/dpe/internal/model"
	"github.com/dpe-engine/dpe/internal/store"
)

// JobRetry queues a failed or canceled job again, as
// store.RetryStandaloneJob decides, and announces its type.
func (s *Store) JobRetry(ctx context.Context, id int64, now time.Time) (model.Job, error) {
	var out model.Job
	err := s.tx(ctx, "retry job", func(tx pgx.Tx) error {
		cur, err := scanJob(tx.QueryRow(ctx, `SELECT `+jobCols+` FROM jobs WHERE id = $1 FOR UPDATE`, id))
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("job %d: %w", id, model.ErrNotFound)
		}
		if err != nil {
			return err
		}
		next, err := store.RetryStandaloneJob(cur, now)
		if err != nil {
			return err
		}
		out, err = writeRetriedJob(ctx, tx, next)
		return err
	})
	if err != nil {
		return model.Job{}, err
	}
	return out, nil
}

// writeRetriedJob stores a job as store.RetryJob left it and tells every
// server's claims that its type has work.
func writeRetriedJob(ctx context.Context, tx pgx.Tx, j model.Job) (model.Job, error) {
	out, err := scanJob(tx.QueryRow(ctx, `
		UPDATE jobs SET state = 'queued', attempt = $2, run_after = $3, result = NULL, error = '',
			progress = 0, message = '', cancel_asked = false, processor = '', lease_until = NULL,
			started_at = NULL, finished_at = NULL, updated_at = $4
		WHERE id = $1 AND state IN ('failed', 'canceled')
		RETURNING `+jobCols, j.ID, j.Attempt, j.RunAfter, j.UpdatedAt))
	if errors.Is(err, pgx.ErrNoRows) {
		return model.Job{}, fmt.Errorf("job %d changed while being retried: %w", j.ID, model.ErrConflict)
	}
	if err != nil {
		return model.Job{}, err
	}
	if _, err := tx.Exec(ctx, `SELECT pg_notify('`+notifyChannel+`', $1)`, out.Type); err != nil {
		return model.Job{}, err
	}
	return out, nil
}

// InstanceRetry resumes a failed or canceled instance from its failed
// steps (store.PlanRetry), its sub-workflows with it, in one transaction.
// The instance row is locked first, so two concurrent retries resume it
// once: the second finds it running.
func (s *Store) InstanceRetry(ctx context.Context, id int64, now time.Time) (model.Instance, error) {
	var out model.Instance
	err := s.tx(ctx, "retry instance", func(tx pgx.Tx) error {
		var err error
		if out, err = retryInstance(ctx, tx, id, false, now); err != nil {
			return err
		}
		return notifyInstances(ctx, tx)
	})
	if err != nil {
		return model.Instance{}, err
	}
	return out, nil
}

func retryInstance(ctx context.Context, tx pgx.Tx, id int64, child bool, now time.Time) (model.Instance, error) {
	in, err := scanInstance(tx.QueryRow(ctx, `SELECT `+instanceCols+` FROM instances WHERE id = $1 FOR UPDATE`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return model.Instance{}, fmt.Errorf("instance %d: %w", id, model.ErrNotFound)
	}
	if err != nil {
		return model.Instance{}, err
	}
	if err := store.CheckRetryInstance(in, child); err != nil {
		return model.Instance{}, err
	}
	if in.ConcurrencyKey != "" {
		// The key's turn, as InstanceCreate takes it: a start of the key
		// and this retry cannot both find it free.
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, hashtext($2))`, lockConcurrencyKey, in.ConcurrencyKey); err != nil {
			return model.Instance{}, err
		}
		var busy int64
		err := tx.QueryRow(ctx, `SELECT id FROM instances
			WHERE concurrency_key = $1 AND state IN `+liveStates+` AND id <> $2 LIMIT 1`, in.ConcurrencyKey, id).Scan(&busy)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
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
	if len(plan.Drop) > 0 {
		if _, err := tx.Exec(ctx, `DELETE FROM steps WHERE instance_id = $1 AND path = ANY($2)`, id, plan.Drop); err != nil {
			return model.Instance{}, err
		}
	}
	if len(plan.Reset) > 0 {
		paths := make([]string, len(plan.Reset))
		for i, st := range plan.Reset {
			paths[i] = st.Path
		}
		if _, err := tx.Exec(ctx, `UPDATE steps SET state = 'running', error = '', finished_at = NULL
			WHERE instance_id = $1 AND path = ANY($2)`, id, paths); err != nil {
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
	return scanInstance(tx.QueryRow(ctx, `
		UPDATE instances SET state = 'running', error = '', output = NULL, cancel_asked = false,
			finished_at = NULL, current = NULL, started_at = $2, wake_at = $2, wake_seq = $3, updated_at = $2
		WHERE id = $1
		RETURNING `+instanceCols, id, now, next.WakeSeq))
}

// retryInputs reads an instance's step records and the jobs and children
// its failed or canceled records point at.
func retryInputs(ctx context.Context, tx pgx.Tx, id int64) ([]model.Step, map[int64]model.Job, map[int64]model.Instance, error) {
	rows, err := tx.Query(ctx, `SELECT `+stepCols+` FROM steps WHERE instance_id = $1 ORDER BY path`, id)
	if err != nil {
		return nil, nil, nil, err
	}
	steps, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (model.Step, error) { return scanStep(r) })
	if err != nil {
		return nil, nil, nil, err
	}
	var jobIDs, childIDs []int64
	for _, st := range steps {
		if st.State != model.StepFailed && st.State != model.StepCanceled {
			continue
		}
		if st.JobID != 0 {
			jobIDs = append(jobIDs, st.JobID)
		}
		if st.ChildID != 0 {
			childIDs = append(childIDs, st.ChildID)
		}
	}
	jobs := map[int64]model.Job{}
	if len(jobIDs) > 0 {
		rows, err := tx.Query(ctx, `SELECT `+jobCols+` FROM jobs WHERE id = ANY($1) ORDER BY id FOR UPDATE`, jobIDs)
		if err != nil {
			return nil, nil, nil, err
		}
		list, err := collectJobs(rows)
		if err != nil {
			return nil, nil, nil, err
		}
		for _, j := range list {
			jobs[j.ID] = j
		}
	}
	children := map[int64]model.Instance{}
	if len(childIDs) > 0 {
		rows, err := tx.Query(ctx, `SELECT `+instanceCols+` FROM instances WHERE id = ANY($1) ORDER BY id`, childIDs)
		if err != nil {
			return nil, nil, nil, err
		}
		list, err := collectInstances(rows)
		if err != nil {
			return nil, nil, nil, err
		}
		for _, c := range list {
			children[c.ID] = c
		}
	}
	return steps, jobs, children, nil
}
