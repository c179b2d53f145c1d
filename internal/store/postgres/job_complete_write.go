package postgres

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/dpe-engine/dpe/internal/store"
)

// applyCompletionsSQL writes, in one statement, every outcome a batch
// decided in Go (store.Complete, store.Release), and wakes what those outcomes concern:
//   - upd takes its new values from arrays, one element per changed job,
//     so the statement is the same whatever the batch size (one plan,
//     one round trip). The epoch and state guard cannot fail under the
//     locks of lockReportedSQL; completeBatch checks the count anyway.
//   - jobs are joined to the arrays alone: with id = ANY($1) added, the
//     planner filters every running job through the array (twice as slow
//     for a batch of 100). Instances are reached through
//     id = ANY(ARRAY(SELECT id FROM live)) instead: joined to arrays of a
//     size it can only guess, a large batch was planned as a hash join
//     over a full scan of instances, which are kept for ever
//     (TestCompleteManyPlans; see claimSQL).
//   - notified tells claims of the types that got a job back for a retry,
//     once per type. It fires before the back-off has passed: the woken
//     claim finds nothing and waits again, which is cheaper than a timer
//     per job (as JobComplete always did).
//   - live locks the live workflow instances of the jobs that ended ($11,
//     decided in Go) in id order, for the same reason the jobs are; woken
//     wakes them. wake_seq grows by the number of the instance's jobs
//     that ended ($12): each end is an event, as it is when the jobs are
//     completed one by one. woken_notified tells the workers. A job queued
//     for a retry wakes nothing: its instance has nothing to decide until
//     the job ends.
//   - SELECT CTEs nobody reads never run: the count in the select list is
//     what makes the notifications happen.
var applyCompletionsSQL = `
WITH upd AS (
	UPDATE jobs j SET
		state          = b.state,
		attempt        = b.attempt,
		run_after      = b.run_after,
		result         = b.result::json,
		error          = b.error,
		progress       = b.progress,
		lease_until    = NULL,
		finished_at    = b.finished_at,
		reported_epoch = j.epoch,
		report_digest  = b.digest,
		updated_at     = $10::timestamptz
	FROM unnest($1::int8[], $2::int8[], $3::text[], $4::timestamptz[], $5::text[],
			$6::text[], $7::int4[], $8::timestamptz[], $9::text[], $13::int4[])
		AS b(id, epoch, state, run_after, result, error, progress, finished_at, digest, attempt)
	WHERE j.id = b.id AND j.epoch = b.epoch AND j.state = 'running'
	RETURNING ` + jobColsOf("j") + `
), notified AS (
	SELECT pg_notify('` + notifyChannel + `', q.type)
	FROM (SELECT DISTINCT type FROM upd WHERE state = 'queued') q
), live AS (
	SELECT id FROM instances
	WHERE id = ANY($11::int8[]) AND state IN ` + liveStates + `
	ORDER BY id FOR UPDATE
), woken AS (
	UPDATE instances i SET wake_at = $10::timestamptz, wake_seq = i.wake_seq + e.ended
	FROM unnest($11::int8[], $12::int8[]) AS e(id, ended)
	WHERE i.id = ANY(ARRAY(SELECT id FROM live)) AND i.id = e.id
	RETURNING i.id
), woken_notified AS (
	SELECT pg_notify('` + notifyChannel + `', '` + instancesPayload + `') WHERE EXISTS (SELECT 1 FROM woken)
)
SELECT *, (SELECT count(*) FROM notified) + (SELECT count(*) FROM woken_notified) FROM upd`

// outcomeColumns are the parameters of applyCompletionsSQL: one element
// per changed job in each array; ended counts the jobs that ended per
// instance (wakeColumns turns it into $11 and $12).
type outcomeColumns struct {
	ids, epochs          []int64
	states, errs, digest []string
	runAfter             []time.Time
	finishedAt           []*time.Time
	results              []*string
	progress, attempts   []int32
	ended                map[int64]int64
}

// add appends the outcome of one changed job, with the digest of the
// report that changed it.
func (o *outcomeColumns) add(r store.ReportedJob) {
	j := r.Job
	var result *string // json NULL when the report had none
	if len(j.Result) > 0 {
		r := string(j.Result)
		result = &r
	}
	o.ids = append(o.ids, j.ID)
	o.epochs = append(o.epochs, j.Epoch)
	o.states = append(o.states, string(j.State))
	o.runAfter = append(o.runAfter, j.RunAfter)
	o.results = append(o.results, result)
	o.errs = append(o.errs, j.Error)
	o.progress = append(o.progress, int32(j.Progress))
	o.finishedAt = append(o.finishedAt, j.FinishedAt)
	o.digest = append(o.digest, r.ReportDigest)
	o.attempts = append(o.attempts, int32(j.Attempt))
	if store.Ended(j) {
		if o.ended == nil {
			o.ended = make(map[int64]int64)
		}
		o.ended[j.InstanceID]++
	}
}

// wakeColumns returns the instances to wake, by id (the lock order), and
// how many of their jobs ended.
func (o *outcomeColumns) wakeColumns() (ids, ended []int64) {
	ids = slices.Sorted(maps.Keys(o.ended))
	ended = make([]int64, len(ids))
	for i, id := range ids {
		ended[i] = o.ended[id]
	}
	return ids, ended
}

// writeOutcomes stores the jobs a batch changed (applyCompletionsSQL) and
// replaces them in jobs by the rows as stored, so that a result reads the
// same as JobGet would. Nothing changed: no statement.
func writeOutcomes(ctx context.Context, tx pgx.Tx, jobs map[int64]*reportedJob, order []int64, now time.Time) error {
	var o outcomeColumns
	for _, id := range order {
		if r := jobs[id]; r.changed {
			o.add(r.ReportedJob)
		}
	}
	if len(o.ids) == 0 {
		return nil
	}
	wake, ended := o.wakeColumns()
	var notified int64
	rows, err := tx.Query(ctx, applyCompletionsSQL, o.ids, o.epochs, o.states, o.runAfter,
		o.results, o.errs, o.progress, o.finishedAt, o.digest, now, wake, ended, o.attempts)
	if err != nil {
		return err
	}
	stored, err := collectJobs(rows, &notified)
	if err != nil {
		return err
	}
	if len(stored) != len(o.ids) {
		// The rows are locked since lockReportedSQL: this is a bug.
		return fmt.Errorf("complete: %d of %d locked jobs updated", len(stored), len(o.ids))
	}
	for _, j := range stored {
		jobs[j.ID].Job = j
	}
	return nil
}
