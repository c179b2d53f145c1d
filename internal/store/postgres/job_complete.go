package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/dpe-engine/dpe/internal/model"
	"github.com/dpe-engine/dpe/internal/store"
)

// lockReportedSQL reads the jobs a batch of completions names, with their
// last report, and locks them for the transaction.
//   - ORDER BY id: the lock is taken row by row in the order rows come out
//     of the sort, so two batches naming the same jobs (two servers, or a
//     report retried while the first is still running) wait for each other
//     instead of deadlocking; InstanceAdvance locks jobs it cancels in the
//     same order.
//   - the jobs are locked before any instance (see wakeJobOwnersCTE).
var lockReportedSQL = `SELECT ` + jobCols + `, reported_epoch, report_digest
FROM jobs WHERE id = ANY($1::int8[]) ORDER BY id FOR UPDATE`

// JobComplete records the outcome of the attempt with c.Epoch (see
// store.JobStore). It is JobCompleteMany with one completion, so the two
// can never disagree. An exact repeat of the report that took effect (same
// epoch, same result or error, no claim since) returns the job unchanged.
func (s *Store) JobComplete(ctx context.Context, c model.Completion, now time.Time) (model.Job, error) {
	res, err := s.completeMany(ctx, "complete job", []model.Completion{c}, now)
	if err != nil {
		return model.Job{}, err
	}
	return res[0].Job, res[0].Err
}

// JobCompleteMany applies completions as group commit for processors. A
// batch of successes of distinct jobs (a busy processor's usual batch)
// is one statement and one round trip (completeSucceeded); the rest —
// failures, stale epochs, repeats, a job reported twice, and any success
// that statement did not apply — one transaction of three round trips
// whatever their number (begin with the lock, one update, commit). Each
// completion gets the outcome JobComplete would give it alone, in order,
// so a second report of one job in a batch is judged after the first took
// effect. Per completion, Err is model.ErrConflict (stale epoch, job not
// running), model.ErrNotFound or model.ErrInvalid (a result that is not
// JSON); none of them fails the others. The returned error is the
// transaction's: when the locking transaction fails after the successes
// were written, repeating the call finds them as exact repeats.
func (s *Store) JobCompleteMany(ctx context.Context, cs []model.Completion, now time.Time) ([]store.CompleteResult, error) {
	return s.completeMany(ctx, "complete many", cs, now)
}

// completeMany is JobCompleteMany with op naming the method in errors.
func (s *Store) completeMany(ctx context.Context, op string, cs []model.Completion, now time.Time) ([]store.CompleteResult, error) {
	prep := make([]completion, len(cs))
	for i, c := range cs {
		prep[i] = prepareCompletion(c)
	}
	var applied map[int64]model.Job
	if successesOnly(prep) {
		var err error
		if applied, err = s.completeSucceeded(ctx, op, prep, now); err != nil {
			return nil, err
		}
	}
	// What the one statement did not apply goes through the lock, in
	// order; rest[k] is the index in prep of the k-th of them.
	var (
		left []completion
		rest []int
	)
	for i, c := range prep {
		if _, ok := applied[c.ID]; c.err == nil && !ok {
			left = append(left, c)
			rest = append(rest, i)
		}
	}
	locked, err := s.completeLocked(ctx, op, left, now)
	if err != nil {
		return nil, err
	}
	out := make([]store.CompleteResult, len(cs))
	for k, i := range rest {
		out[i] = locked[k]
	}
	for i, c := range prep {
		if j, ok := applied[c.ID]; ok && c.err == nil {
			out[i].Job = j
		}
		if c.err != nil {
			out[i] = store.CompleteResult{Err: fmt.Errorf("job %d: %w", c.ID, c.err)}
		}
		if out[i].Err != nil {
			out[i].Err = fmt.Errorf("postgres: %s: %w", op, out[i].Err)
		}
	}
	return out, nil
}

// completeLocked applies valid completions in one transaction, in order,
// judging each against its job read under lock, and returns one result
// per completion (errors not yet prefixed with the operation).
func (s *Store) completeLocked(ctx context.Context, op string, prep []completion, now time.Time) ([]store.CompleteResult, error) {
	if len(prep) == 0 {
		return nil, nil
	}
	ids := make([]int64, len(prep))
	for i, c := range prep {
		ids[i] = c.ID
	}
	// The lock goes with BEGIN (txBatch), then one statement writes
	// every outcome. Retried (txBatch): the batch may deadlock with a
	// statement that locks the same jobs in another order (a
	// heartbeat, a rescue); each try judges what it read itself.
	var (
		jobs  map[int64]*reportedJob
		order []int64
		out   []store.CompleteResult
	)
	err := s.txBatch(ctx, op, func(b *pgx.Batch) {
		b.Queue(lockReportedSQL, ids).Query(func(rows pgx.Rows) error {
			var err error
			jobs, order, err = readReported(rows, len(ids))
			return err
		})
	}, func(tx pgx.Tx) error {
		var err error
		out, err = completeBatch(ctx, tx, prep, jobs, order, now)
		return err
	})
	return out, err
}

// completeBatch judges the completions in order (completion.apply)
// against the jobs read under lock (by id; order is the lock order),
// writes what changed and returns one result per completion (those
// refused before the transaction are left zero, for the caller).
func completeBatch(ctx context.Context, tx pgx.Tx, prep []completion, jobs map[int64]*reportedJob, order []int64, now time.Time) ([]store.CompleteResult, error) {
	errs := make([]error, len(prep))
	for i := range prep {
		c := &prep[i]
		if c.err != nil {
			continue
		}
		r, ok := jobs[c.ID]
		if !ok {
			errs[i] = fmt.Errorf("job %d: %w", c.ID, model.ErrNotFound)
			continue
		}
		errs[i] = c.apply(r, now)
	}
	if err := writeOutcomes(ctx, tx, jobs, order, now); err != nil {
		return nil, err
	}
	out := make([]store.CompleteResult, len(prep))
	for i, c := range prep {
		switch {
		case c.err != nil:
		case errs[i] != nil:
			out[i].Err = errs[i]
		default:
			// Applied here, or an exact repeat: the job as it stands.
			out[i].Job = jobs[c.ID].Job
		}
	}
	return out, nil
}

// readReported reads the rows of lockReportedSQL (n expected at most):
// the jobs by id, and their ids in lock order.
func readReported(rows pgx.Rows, n int) (map[int64]*reportedJob, []int64, error) {
	jobs := make(map[int64]*reportedJob, n)
	order := make([]int64, 0, n)
	for rows.Next() {
		r := &reportedJob{}
		var err error
		if r.Job, err = scanJob(rows, &r.ReportedEpoch, &r.ReportDigest); err != nil {
			return nil, nil, err
		}
		jobs[r.Job.ID] = r
		order = append(order, r.Job.ID)
	}
	return jobs, order, rows.Err()
}
