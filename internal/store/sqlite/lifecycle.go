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

// JobHeartbeat renews the leases whose epoch matches, in one transaction,
// answering each beat in order.
func (s *Store) JobHeartbeat(ctx context.Context, beats []model.Heartbeat, ttl time.Duration, now time.Time) ([]model.HeartbeatResult, error) {
	out := make([]model.HeartbeatResult, 0, len(beats))
	if len(beats) == 0 {
		return out, nil
	}
	until := now.Add(ttl)
	err := s.write(ctx, "heartbeat", func(tx *txn) error {
		out = out[:0]
		for _, b := range beats {
			var progress any // NULL keeps the stored progress
			if b.Progress != nil {
				progress = *b.Progress
			}
			setMessage := b.Progress != nil || b.Message != ""
			// A job canceled while running still gets its lease renewed:
			// the holder needs the time to stop cleanly and report.
			var cancelAsked bool
			err := tx.QueryRowContext(ctx, `
				UPDATE jobs SET lease_until = ?, updated_at = ?, progress = COALESCE(?, progress),
					message = CASE WHEN ? THEN ? ELSE message END
				WHERE id = ? AND state = 'running' AND epoch = ?
				RETURNING cancel_asked`,
				ms(until), ms(now), progress, setMessage, b.Message, b.ID, b.Epoch).Scan(&cancelAsked)
			r := model.HeartbeatResult{ID: b.ID}
			switch {
			case errors.Is(err, sql.ErrNoRows):
				r.Status = model.LeaseLost // gone, not running, or another epoch
			case err != nil:
				return err
			case cancelAsked:
				r.Status, r.LeaseUntil = model.LeaseCanceled, until
			default:
				r.Status, r.LeaseUntil = model.LeaseOK, until
			}
			out = append(out, r)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// fence is what decides whether a holder's report may change a job.
type fence struct {
	state         model.JobState
	epoch         int64
	reportedEpoch int64
	cancelAsked   bool
	attempt       int
	maxAttempts   int
	backoff       time.Duration
	backoffMax    time.Duration
}

// fenceSQL reads the fence of the job with id ?.
const fenceSQL = `
	SELECT state, epoch, reported_epoch, cancel_asked, attempt, max_attempts, backoff, backoff_max
	FROM jobs WHERE id = ?`

// loadFence reads the fence of a job (model.ErrNotFound when missing).
func loadFence(ctx context.Context, tx *txn, id int64) (fence, error) {
	return scanFence(tx.QueryRowContext(ctx, fenceSQL, id), id)
}

// scanFence scans the fenceSQL row of job id (model.ErrNotFound when there
// is none).
func scanFence(row *sql.Row, id int64) (fence, error) {
	var (
		f                   fence
		state               string
		backoff, backoffMax int64
	)
	err := row.Scan(&state, &f.epoch, &f.reportedEpoch, &f.cancelAsked, &f.attempt, &f.maxAttempts, &backoff, &backoffMax)
	if errors.Is(err, sql.ErrNoRows) {
		return f, fmt.Errorf("job %d: %w", id, model.ErrNotFound)
	}
	f.state, f.backoff, f.backoffMax = model.JobState(state), time.Duration(backoff), time.Duration(backoffMax)
	return f, err
}

// JobRelease gives a running job back to the queue, uncounting the
// attempt. A job whose cancel was asked is canceled instead: queueing it
// would only hand it out again.
func (s *Store) JobRelease(ctx context.Context, id, epoch int64, now time.Time) (model.Job, error) {
	var j model.Job
	err := s.write(ctx, "release", func(tx *txn) error {
		f, err := loadFence(ctx, tx, id)
		if err != nil {
			return err
		}
		if f.state != model.JobRunning || f.epoch != epoch {
			return fmt.Errorf("job %d is %s at epoch %d, release is for epoch %d: %w",
				id, f.state, f.epoch, epoch, model.ErrConflict)
		}
		query := `UPDATE jobs SET state = 'queued', attempt = attempt - 1, lease_until = NULL,
				run_after = ?, updated_at = ? WHERE id = ? RETURNING ` + jobCols
		if f.cancelAsked {
			query = `UPDATE jobs SET state = 'canceled', lease_until = NULL,
				finished_at = ?, updated_at = ? WHERE id = ? RETURNING ` + jobCols
		}
		j, err = scanJob(tx.QueryRowContext(ctx, query, ms(now), ms(now), id))
		if err != nil || !f.cancelAsked {
			return err
		}
		return wakeInstance(ctx, tx, j.InstanceID, now) // it ended: canceled
	})
	if err != nil {
		return model.Job{}, err
	}
	return j, nil
}

// rescueLost says why a rescued job's attempt ended; kept in the job's
// error so an operator sees it.
const rescueLost = `'lease expired: processor ' || processor || ' stopped heartbeating (attempt ' || attempt || ' of ' || max_attempts || ')'`

// JobRescue handles running jobs whose lease ended before now (lease_until
// equal to now is still held): canceled when a cancel was asked, failed
// when no attempt is left, queued for an immediate new claim otherwise.
// The attempt stays counted and the epoch unchanged, so the next claim
// fences the old holder out.
func (s *Store) JobRescue(ctx context.Context, now time.Time) (store.RescueResult, error) {
	var res store.RescueResult
	err := s.write(ctx, "rescue", func(tx *txn) error {
		res = store.RescueResult{}
		// The jobs about to end (canceled or failed below) wake their live
		// instances, before the updates make them unrecognisable. Requeued
		// jobs go on and wake nobody. instance_id <> 0 skips jobs outside
		// workflows.
		if _, err := tx.ExecContext(ctx, `
			UPDATE instances SET wake_at = ?1, wake_seq = wake_seq + 1, updated_at = ?1
			WHERE state IN `+liveStates+` AND id IN (
				SELECT instance_id FROM jobs
				WHERE state = 'running' AND lease_until < ?1 AND instance_id <> 0
				  AND (cancel_asked OR attempt >= max_attempts))`,
			ms(now)); err != nil {
			return fmt.Errorf("wake instances: %w", err)
		}
		n, err := execCount(ctx, tx, `
			UPDATE jobs SET state = 'canceled', lease_until = NULL, finished_at = ?, updated_at = ?
			WHERE state = 'running' AND lease_until < ? AND cancel_asked`,
			ms(now), ms(now), ms(now))
		if err != nil {
			return err
		}
		res.Canceled = n
		if res.Failed, err = execCount(ctx, tx, `
			UPDATE jobs SET state = 'failed', lease_until = NULL, finished_at = ?, updated_at = ?,
				error = `+rescueLost+`
			WHERE state = 'running' AND lease_until < ? AND attempt >= max_attempts`,
			ms(now), ms(now), ms(now)); err != nil {
			return err
		}
		rows, err := tx.QueryContext(ctx, `
			UPDATE jobs SET state = 'queued', lease_until = NULL, run_after = ?, updated_at = ?,
				error = `+rescueLost+`
			WHERE state = 'running' AND lease_until < ?
			RETURNING type`,
			ms(now), ms(now), ms(now))
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var typ string
			if err := rows.Scan(&typ); err != nil {
				return err
			}
			res.Requeued++
			if !slices.Contains(res.Types, typ) {
				res.Types = append(res.Types, typ)
			}
		}
		slices.Sort(res.Types)
		return rows.Err()
	})
	if err != nil {
		return store.RescueResult{}, err
	}
	return res, nil
}

// execCount runs a statement and returns the rows it changed.
func execCount(ctx context.Context, tx *txn, query string, args ...any) (int, error) {
	r, err := tx.ExecContext(ctx, query, args...)
	if err != nil {
		return 0, err
	}
	n, err := r.RowsAffected()
	return int(n), err
}
