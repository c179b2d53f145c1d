package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/dpe-engine/dpe/internal/model"
)

// JobCancel cancels a queued job at once and asks a running one to stop.
func (s *Store) JobCancel(ctx context.Context, id int64, now time.Time) (model.Job, error) {
	var j model.Job
	err := s.write(ctx, "cancel", func(tx *txn) error {
		var err error
		j, err = cancelJob(ctx, tx, id, now)
		return err
	})
	if err != nil {
		return model.Job{}, err
	}
	return j, nil
}

// cancelJob is JobCancel within tx. A queued job of a workflow instance
// that ends here wakes its instance in the same transaction.
func cancelJob(ctx context.Context, tx *txn, id int64, now time.Time) (model.Job, error) {
	r, err := loadReported(ctx, tx, id)
	if err != nil {
		return model.Job{}, err
	}
	var j model.Job
	switch cur := r.Job; {
	case cur.State == model.JobQueued:
		j, err = scanJob(tx.QueryRowContext(ctx, `
			UPDATE jobs SET state = 'canceled', finished_at = ?, updated_at = ?
			WHERE id = ? RETURNING `+jobCols, ms(now), ms(now), id))
		if err == nil {
			err = wakeInstance(ctx, tx, j.InstanceID, now)
		}
	case cur.State == model.JobRunning && !cur.CancelAsked:
		// The holder learns it from its next heartbeat; the instance
		// learns the end from the holder's report.
		j, err = scanJob(tx.QueryRowContext(ctx, `
			UPDATE jobs SET cancel_asked = 1, updated_at = ?
			WHERE id = ? RETURNING `+jobCols, ms(now), id))
	case cur.State == model.JobRunning, cur.State == model.JobCanceled:
		j = cur // already asked, or done: unchanged
	default:
		err = fmt.Errorf("job %d is %s: %w", id, cur.State, model.ErrConflict)
	}
	return j, err
}

// JobSetPriority changes the priority of a queued or running job.
func (s *Store) JobSetPriority(ctx context.Context, id int64, priority int, now time.Time) (model.Job, error) {
	var j model.Job
	err := s.write(ctx, "set priority", func(tx *txn) error {
		var err error
		j, err = scanJob(tx.QueryRowContext(ctx, `
			UPDATE jobs SET priority = ?, updated_at = ?
			WHERE id = ? AND state IN ('queued', 'running')
			RETURNING `+jobCols, priority, ms(now), id))
		if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		r, err := loadReported(ctx, tx, id) // missing or final?
		if err != nil {
			return err
		}
		return fmt.Errorf("job %d is %s: %w", id, r.Job.State, model.ErrConflict)
	})
	if err != nil {
		return model.Job{}, err
	}
	return j, nil
}

// JobSetPriorityByInstance changes the priority of the queued jobs of an
// instance, returning how many changed (jobs already at that priority do
// not count). Instance 0 means "no instance" and is refused: it would
// re-prioritise every job submitted outside a workflow.
func (s *Store) JobSetPriorityByInstance(ctx context.Context, instanceID int64, priority int, now time.Time) (int, error) {
	if instanceID <= 0 {
		return 0, s.fail("set instance priority", model.Invalid("instance_id", "must be positive"))
	}
	var n int
	err := s.write(ctx, "set instance priority", func(tx *txn) error {
		var err error
		n, err = execCount(ctx, tx, `
			UPDATE jobs SET priority = ?, updated_at = ?
			WHERE instance_id = ? AND instance_id <> 0 AND state = 'queued' AND priority <> ?`,
			priority, ms(now), instanceID, priority)
		return err
	})
	return n, err
}

// JobCounts counts jobs per state; states without jobs are absent.
func (s *Store) JobCounts(ctx context.Context) (map[model.JobState]int, error) {
	counts := map[model.JobState]int{}
	err := s.read(ctx, "count jobs", func(tx *txn) error {
		rows, err := tx.QueryContext(ctx, `SELECT state, COUNT(*) FROM jobs GROUP BY state`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var (
				state string
				n     int
			)
			if err := rows.Scan(&state, &n); err != nil {
				return err
			}
			counts[model.JobState(state)] = n
		}
		return rows.Err()
	})
	if err != nil {
		return nil, err
	}
	return counts, nil
}

// JobPurge deletes final jobs that finished before the time.
func (s *Store) JobPurge(ctx context.Context, finishedBefore time.Time) (int, error) {
	var n int
	err := s.write(ctx, "purge jobs", func(tx *txn) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM log_lines WHERE job_id IN (SELECT id FROM jobs
			WHERE finished_at < ? AND state IN ('succeeded', 'failed', 'canceled'))`, ms(finishedBefore)); err != nil {
			return fmt.Errorf("log lines: %w", err)
		}
		var err error
		n, err = execCount(ctx, tx, `
			DELETE FROM jobs
			WHERE finished_at < ? AND state IN ('succeeded', 'failed', 'canceled')`,
			ms(finishedBefore))
		return err
	})
	return n, err
}
