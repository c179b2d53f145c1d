package postgres

import (
	"cmp"
	"context"
	"slices"
	"time"

	"github.com/dpe-engine/dpe/internal/model"
)

// completeSucceededSQL records, in one statement outside any explicit
// transaction (one round trip, one commit), the successes of running jobs
// under their epoch: the common outcome, and the only one that needs
// nothing from the row to be decided (store.Complete: succeeded, progress
// 100, finished now, whatever the attempt, back-off or cancel). This
// statement is a copy of that rule in SQL; the conformance suite
// (storetest, Reports) runs the same cases through both. Failures
// need the row (attempts, back-off, cancel asked) and take the locking
// path, as does every completion this statement does not apply.
//   - locked locks the jobs in id order first, as lockReportedSQL and a
//     heartbeat do: an UPDATE joined to the arrays would lock them in
//     the join's order, and deadlock with a heartbeat of the same jobs
//     (TestCompleteManyRacesHeartbeat). upd reads it through a count, a
//     one-time condition that runs it whole before the join; a condition
//     id = ANY(ARRAY(SELECT id FROM locked)) would instead have the
//     planner filter every running job through the array (see
//     applyCompletionsSQL).
//   - upd applies a success only to a job running under the report's
//     epoch. Under read committed a row another transaction changed (a
//     heartbeat, a rescue) is judged again as it is once locked, so a
//     success is applied exactly when the locking path would apply it.
//   - ended counts, per live workflow instance, its jobs that ended; live
//     locks those instances in id order and woken wakes them, as
//     applyCompletionsSQL does: a job's end and its instance's wake-up
//     commit together. Instances are reached through
//     id = ANY(ARRAY(...)), never a join whose size the planner guesses
//     (TestCompleteManyPlans).
//   - A success never requeues a job: no claim to notify.
var completeSucceededSQL = `
WITH locked AS (
	SELECT id FROM jobs WHERE id = ANY($1::int8[]) ORDER BY id FOR UPDATE
), upd AS (
	UPDATE jobs j SET
		state          = 'succeeded',
		result         = b.result::json,
		error          = '',
		progress       = 100,
		lease_until    = NULL,
		finished_at    = $5::timestamptz,
		reported_epoch = j.epoch,
		report_digest  = b.digest,
		updated_at     = $5::timestamptz
	FROM unnest($1::int8[], $2::int8[], $3::text[], $4::text[]) AS b(id, epoch, result, digest)
	WHERE (SELECT count(*) FROM locked) > 0
		AND j.id = b.id AND j.epoch = b.epoch AND j.state = 'running'
	RETURNING ` + jobColsOf("j") + `
), ended AS (
	SELECT instance_id AS id, count(*) AS n FROM upd
	WHERE instance_id IS NOT NULL GROUP BY instance_id
), live AS (
	SELECT id FROM instances
	WHERE id = ANY(ARRAY(SELECT id FROM ended)) AND state IN ` + liveStates + `
	ORDER BY id FOR UPDATE
), woken AS (
	UPDATE instances i SET wake_at = $5::timestamptz, wake_seq = i.wake_seq + e.n
	FROM ended e
	WHERE i.id = ANY(ARRAY(SELECT id FROM live)) AND i.id = e.id
	RETURNING i.id
), woken_notified AS (
	SELECT pg_notify('` + notifyChannel + `', '` + instancesPayload + `') WHERE EXISTS (SELECT 1 FROM woken)
)
SELECT *, (SELECT count(*) FROM woken_notified) FROM upd`

// successesOnly says whether the valid completions of a batch are all
// successes of distinct jobs: those completeSucceeded may apply in any
// order, each being judged alone. A batch reporting one job twice must be
// judged in order, by the locking path.
func successesOnly(prep []completion) bool {
	seen := make(map[int64]bool, len(prep))
	for _, c := range prep {
		if c.err != nil {
			continue
		}
		if c.Error != "" || seen[c.ID] {
			return false
		}
		seen[c.ID] = true
	}
	return len(seen) > 0
}

// completeSucceeded applies the successes of prep (see successesOnly)
// whose job runs under their epoch, with completeSucceededSQL, and returns
// the jobs as stored, by id. The others are left to the locking path.
func (s *Store) completeSucceeded(ctx context.Context, op string, prep []completion, now time.Time) (map[int64]model.Job, error) {
	valid := make([]*completion, 0, len(prep))
	for i := range prep {
		if prep[i].err == nil {
			valid = append(valid, &prep[i])
		}
	}
	slices.SortFunc(valid, func(a, b *completion) int { return cmp.Compare(a.ID, b.ID) })
	ids := make([]int64, len(valid))
	epochs := make([]int64, len(valid))
	results := make([]*string, len(valid))
	digests := make([]string, len(valid))
	for i, c := range valid {
		ids[i], epochs[i], results[i], digests[i] = c.ID, c.Epoch, c.result, c.digest
	}
	var stored []model.Job
	err := s.wrap(op, s.retry(ctx, func() error {
		var notified int64
		rows, err := s.pool.Query(ctx, completeSucceededSQL, ids, epochs, results, digests, now)
		if err != nil {
			return err
		}
		stored, err = collectJobs(rows, &notified)
		return err
	}))
	if err != nil {
		return nil, err
	}
	out := make(map[int64]model.Job, len(stored))
	for _, j := range stored {
		out[j.ID] = j
	}
	return out, nil
}
