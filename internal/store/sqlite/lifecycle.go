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

// JobRelease gives a running job back (store.Release decides: queued with
// the attempt uncounted, or canceled when a cancel was asked; an identical
// repeat is answered as before).
func (s *Store) JobRelease(ctx context.Context, id, epoch int64, now time.Time) (model.Job, error) {
	var j model.Job
	err := s.write(ctx, "release", func(tx *txn) error {
		r, err := loadReported(ctx, tx, id)
		if err != nil {
			return err
		}
		next, changed, err := store.Release(r, epoch, now)
		if err != nil || !changed {
			j = next.Job
			return err
		}
		if j, err = writeReported(ctx, tx, next); err != nil || !store.Ended(j) {
			return err
		}
		return wakeInstance(ctx, tx, j.InstanceID, now) // it ended: canceled
	})
	if err != nil {
		return model.Job{}, err
	}
	return j, nil
}

// expiredSQL reads the running jobs whose lease ended before now (lease
// until equal to now is still held).
const expiredSQL = `SELECT ` + jobCols + ` FROM jobs WHERE state = 'running' AND lease_until < ? ORDER BY id`

// rescueSQL stores what store.Rescue decided for one job.
const rescueSQL = `
	UPDATE jobs SET state = ?, error = ?, run_after = ?, lease_until = NULL, finished_at = ?, updated_at = ?
	WHERE id = ?`

// JobRescue takes back the running jobs whose lease ended before now, each
// as store.Rescue decides: canceled, failed, or queued for a new claim.
// Each live instance that had jobs end is woken once.
func (s *Store) JobRescue(ctx context.Context, now time.Time) (store.RescueResult, error) {
	var res store.RescueResult
	err := s.write(ctx, "rescue", func(tx *txn) error {
		res = store.RescueResult{}
		rows, err := tx.QueryContext(ctx, expiredSQL, ms(now))
		if err != nil {
			return err
		}
		expired, err := scanJobs(rows)
		if err != nil {
			return err
		}
		var woken []int64
		for _, j := range expired {
			next, changed := store.Rescue(j, now)
			if !changed {
				continue
			}
			if _, err := tx.ExecContext(ctx, rescueSQL, string(next.State), next.Error, ms(next.RunAfter),
				nullMS(next.FinishedAt), ms(next.UpdatedAt), next.ID); err != nil {
				return err
			}
			switch next.State {
			case model.JobQueued:
				res.Requeued++
				if !slices.Contains(res.Types, next.Type) {
					res.Types = append(res.Types, next.Type)
				}
			case model.JobFailed:
				res.Failed++
				res.AddEnded(next.Type, next.State, 1)
			case model.JobCanceled:
				res.Canceled++
				res.AddEnded(next.Type, next.State, 1)
			}
			if store.Ended(next) && !slices.Contains(woken, next.InstanceID) {
				woken = append(woken, next.InstanceID)
			}
		}
		for _, id := range woken {
			if err := wakeInstance(ctx, tx, id, now); err != nil {
				return fmt.Errorf("wake instance %d: %w", id, err)
			}
		}
		slices.Sort(res.Types)
		return nil
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
