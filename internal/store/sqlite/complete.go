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
// job. A refused completion (model.ErrInvalid, model.ErrConflict,
// model.ErrNotFound) is found by store.CheckCompletion or by store.Complete
// on its job's row before any write, so it leaves the transaction usable
// and goes into its result; any other error rolls the whole batch back.
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

// succeedSQL records a success of the running attempt of the given epoch
// in one statement: store.Complete's outcome for a success, stated in SQL
// because it needs nothing else from the row (storetest compares the two).
// No row when the job is not running under that epoch: the completion then
// takes the path that reads the row and asks store.Complete.
const succeedSQL = `
	UPDATE jobs SET state = 'succeeded', result = ?, error = '', finished_at = ?, lease_until = NULL,
		reported_epoch = epoch, report_digest = ?, updated_at = ?, progress = 100
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
// outcome when it may not take effect (model.ErrInvalid, model.ErrNotFound,
// or model.ErrConflict: store.Complete's verdict); it is decided before
// anything is written, so the transaction stays good. err is a failure of
// the transaction itself.
func (cm *completer) complete(c model.Completion) (j model.Job, refused, err error) {
	if err := store.CheckCompletion(c); err != nil {
		return model.Job{}, fmt.Errorf("job %d: %w", c.ID, err), nil
	}
	if c.Error == "" {
		// The common case, a success of the running attempt, in one
		// statement; anything else (no row) is judged on the row.
		j, err = scanJob(cm.tx.QueryRowContext(cm.ctx, succeedSQL,
			nullJSON(c.Result), ms(cm.now), store.CompletionDigest(c), ms(cm.now), c.ID, c.Epoch))
		switch {
		case err == nil:
			return j, nil, cm.wake(j)
		case !errors.Is(err, sql.ErrNoRows):
			return model.Job{}, nil, err
		}
	}
	r, err := loadReported(cm.ctx, cm.tx, c.ID)
	switch {
	case err == nil:
	case isRefusal(err):
		return model.Job{}, err, nil
	default:
		return model.Job{}, nil, err
	}
	next, changed, refused := store.Complete(r, c, cm.now)
	if refused != nil || !changed {
		return next.Job, refused, nil // refused, or an identical repeat
	}
	if j, err = writeReported(cm.ctx, cm.tx, next); err != nil {
		return model.Job{}, nil, err
	}
	if !store.Ended(j) {
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

// isRefusal says whether err is a report's own refusal rather than a
// failure of the transaction.
func isRefusal(err error) bool {
	return errors.Is(err, model.ErrNotFound) || errors.Is(err, model.ErrConflict) || errors.Is(err, model.ErrInvalid)
}

// reportedSQL reads a job with its last report: what store.Complete and
// store.Release judge.
const reportedSQL = `SELECT ` + jobCols + `, reported_epoch, report_digest FROM jobs WHERE id = ?`

// loadReported reads job id with its last report (model.ErrNotFound when
// there is none).
func loadReported(ctx context.Context, tx *txn, id int64) (store.ReportedJob, error) {
	var r store.ReportedJob
	var err error
	r.Job, err = scanJob(extraScanner{tx.QueryRowContext(ctx, reportedSQL, id), []any{&r.ReportedEpoch, &r.ReportDigest}})
	if errors.Is(err, sql.ErrNoRows) {
		return r, fmt.Errorf("job %d: %w", id, model.ErrNotFound)
	}
	return r, err
}

// extraScanner scans a row of jobCols followed by more columns into extra.
type extraScanner struct {
	sc    scanner
	extra []any
}

// Scan implements scanner.
func (e extraScanner) Scan(dest ...any) error {
	return e.sc.Scan(append(dest, e.extra...)...)
}

// writeReportedSQL stores what store.Complete or store.Release decided:
// every column they may change.
const writeReportedSQL = `
	UPDATE jobs SET state = ?, attempt = ?, run_after = ?, result = ?, error = ?, progress = ?,
		lease_until = ?, finished_at = ?, reported_epoch = ?, report_digest = ?, updated_at = ?
	WHERE id = ?
	RETURNING ` + jobCols

// writeReported stores r, decided on the row read in the same write
// transaction, and returns the job as stored.
func writeReported(ctx context.Context, tx *txn, r store.ReportedJob) (model.Job, error) {
	j := r.Job
	return scanJob(tx.QueryRowContext(ctx, writeReportedSQL,
		string(j.State), j.Attempt, ms(j.RunAfter), nullJSON(j.Result), j.Error, j.Progress,
		nullMS(j.LeaseUntil), nullMS(j.FinishedAt), r.ReportedEpoch, r.ReportDigest, ms(j.UpdatedAt), j.ID))
}
