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

// JobComplete records the outcome of the attempt with c.Epoch: a batch of
// one, applied by the same code as JobCompleteMany.
func (s *Store) JobComplete(ctx context.Context, c model.Completion, now time.Time) (model.Job, error) {
	var j model.Job
	err := s.write(ctx, "complete", func(tx *txn) error {
		var refused, err error
		j, refused, err = newCompleter(ctx, tx, now).complete(c)
		if err != nil {
			return err
		}
		return refused
	})
	if err != nil {
		return model.Job{}, err
	}
	return j, nil
}

// JobCompleteMany applies completions in order in one write transaction,
// so that the whole batch costs one commit (one fsync) instead of one per
// job. A refused completion (model.ErrConflict, model.ErrNotFound) is
// found by reading its job's fence before any write, so it leaves the
// transaction usable and goes into its result; any other error rolls the
// whole batch back.
func (s *Store) JobCompleteMany(ctx context.Context, cs []model.Completion, now time.Time) ([]store.CompleteResult, error) {
	out := make([]store.CompleteResult, 0, len(cs))
	if len(cs) == 0 {
		return out, nil
	}
	err := s.write(ctx, "complete many", func(tx *txn) error {
		out = out[:0]
		cm := newCompleter(ctx, tx, now)
		for i, c := range cs {
			j, refused, err := cm.complete(c)
			if err != nil {
				return fmt.Errorf("completion %d (job %d): %w", i, c.ID, err)
			}
			out = append(out, store.CompleteResult{Job: j, Err: s.fail("complete many", refused)})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// completeSQL records a report on the job with the last ?. reported_epoch =
// epoch marks the report as applied; error takes the report's, so a success
// clears an earlier attempt's error.
const completeSQL = `
	UPDATE jobs SET state = ?, result = ?, error = ?, run_after = COALESCE(?, run_after),
		finished_at = ?, lease_until = NULL, reported_epoch = epoch, updated_at = ?,
		progress = CASE WHEN ? = 'succeeded' THEN 100 ELSE progress END
	WHERE id = ?
	RETURNING ` + jobCols

// succeedSQL records a success of the running attempt of the given epoch,
// as completeSQL does once the fence passed; no row when the job is not
// running under that epoch.
const succeedSQL = `
	UPDATE jobs SET state = 'succeeded', result = ?, error = '', finished_at = ?, lease_until = NULL,
		reported_epoch = epoch, updated_at = ?, progress = 100
	WHERE id = ? AND state = 'running' AND epoch = ?
	RETURNING ` + jobCols

// completer applies completions inside one write transaction. Its
// statements are prepared once per connection by the transaction (see
// stmtcache.go), not per batch.
type completer struct {
	ctx context.Context
	tx  *txn
	now time.Time
}

// newCompleter returns a completer for completions reported at now.
func newCompleter(ctx context.Context, tx *txn, now time.Time) *completer {
	return &completer{ctx: ctx, tx: tx, now: now}
}

// complete applies one completion. refused is the completion's own
// outcome when it may not take effect (model.ErrNotFound, or
// model.ErrConflict for a stale epoch or a job not running); it is decided
// before anything is written, so the transaction stays good. err is a
// failure of the transaction itself.
func (cm *completer) complete(c model.Completion) (j model.Job, refused, err error) {
	if c.Error == "" {
		// The common case, a success of the running attempt, in one
		// statement; anything else (no row) takes the fenced path.
		j, err = scanJob(cm.tx.QueryRowContext(cm.ctx, succeedSQL,
			nullJSON(c.Result), ms(cm.now), ms(cm.now), c.ID, c.Epoch))
		switch {
		case err == nil:
			return j, nil, cm.wake(j)
		case !errors.Is(err, sql.ErrNoRows):
			return model.Job{}, nil, err
		}
	}
	row := cm.tx.QueryRowContext(cm.ctx, fenceSQL, c.ID)
	f, err := scanFence(row, c.ID)
	switch {
	case err == nil:
	case isRefusal(err):
		return model.Job{}, err, nil
	default:
		return model.Job{}, nil, err
	}
	switch {
	case f.state == model.JobRunning && f.epoch == c.Epoch:
		// The report of the current attempt.
	case f.state != model.JobRunning && f.reportedEpoch != 0 && f.reportedEpoch == c.Epoch && f.epoch == c.Epoch:
		// A report of this epoch already took effect and nothing claimed
		// the job since: a retry of the same report (its answer was
		// lost). Answer it like the first time.
		j, err = getJob(cm.ctx, cm.tx, c.ID)
		return j, nil, err
	default:
		return model.Job{}, fmt.Errorf("job %d is %s at epoch %d, report is for epoch %d: %w",
			c.ID, f.state, f.epoch, c.Epoch, model.ErrConflict), nil
	}

	state, runAfter, finished := outcome(f, c, cm.now)
	row = cm.tx.QueryRowContext(cm.ctx, completeSQL,
		string(state), nullJSON(c.Result), c.Error, runAfter, finished, ms(cm.now), string(state), c.ID)
	if j, err = scanJob(row); err != nil {
		return model.Job{}, nil, err
	}
	if !state.Final() {
		return j, nil, nil // a retry is no event for the instance: the job goes on
	}
	return j, nil, cm.wake(j)
}

// wake wakes the instance of a job that ended, if it has one.
func (cm *completer) wake(j model.Job) error {
	if j.InstanceID == 0 {
		return nil
	}
	if _, err := cm.tx.ExecContext(cm.ctx, wakeSQL, ms(cm.now), ms(cm.now), j.InstanceID); err != nil {
		return fmt.Errorf("wake instance %d: %w", j.InstanceID, err)
	}
	return nil
}

// isRefusal says whether err is a completion's own refusal rather than a
// failure of the transaction.
func isRefusal(err error) bool {
	return errors.Is(err, model.ErrNotFound) || errors.Is(err, model.ErrConflict)
}

// outcome decides where a reported attempt leaves the job: its state, a new
// run_after (nil: unchanged) and finished_at (nil: not final).
func outcome(f fence, c model.Completion, now time.Time) (state model.JobState, runAfter, finished any) {
	switch {
	case c.Error == "":
		// Success wins over a cancel asked meanwhile: the work is done.
		return model.JobSucceeded, nil, ms(now)
	case f.cancelAsked:
		return model.JobCanceled, nil, ms(now)
	case c.Permanent || f.attempt >= f.maxAttempts:
		return model.JobFailed, nil, ms(now)
	default:
		return model.JobQueued, ms(now.Add(model.RetryDelay(f.backoff, f.backoffMax, f.attempt))), nil
	}
}
