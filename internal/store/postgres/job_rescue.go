package postgres

import (
	"context"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/dpe-engine/dpe/internal/model"
	"github.com/dpe-engine/dpe/internal/store"
)

// rescueSQL settles every running job whose lease expired before $1.
//   - expired takes its rows FOR UPDATE SKIP LOCKED: a job being heartbeated
//     or completed right now is left to that call (the next rescue sees it
//     again if its lease is still expired), and the rescuer never waits on,
//     or deadlocks with, a processor.
//   - each job ends as store.Rescue decides (canceled when a cancel was
//     asked, failed when no attempt is left, else queued again at once),
//     stated here in SQL so that every expired lease is settled in one
//     statement; the conformance suite (storetest, Reports) runs the same
//     cases through store.Rescue and this statement. The error is
//     store.RescueError's.
//   - each type that got claimable jobs back is notified once.
//   - the instances of the jobs that failed or were canceled are woken.
var rescueSQL = `
WITH expired AS (
	SELECT id,
		CASE WHEN cancel_asked THEN 'canceled'
			WHEN attempt >= max_attempts THEN 'failed'
			ELSE 'queued'
		END AS next
	FROM jobs
	WHERE state = 'running' AND lease_until < $1::timestamptz
	ORDER BY id
	FOR UPDATE SKIP LOCKED
), upd AS (
	UPDATE jobs j SET
		state       = e.next,
		run_after   = CASE WHEN e.next = 'queued' THEN $1 ELSE j.run_after END,
		error       = CASE WHEN e.next = 'canceled' THEN j.error
		                   ELSE format('lease expired: processor %s stopped heartbeating (attempt %s of %s)',
		                               j.processor, j.attempt, j.max_attempts) END,
		lease_until = NULL,
		finished_at = CASE WHEN e.next = 'queued' THEN NULL ELSE $1 END,
		updated_at  = $1
	FROM expired e
	WHERE j.id = e.id
	RETURNING j.type, j.state, j.instance_id
), notified AS (
	SELECT pg_notify('` + notifyChannel + `', t.type)
	FROM (SELECT DISTINCT type FROM upd WHERE state = 'queued') t
)` + wakeJobOwnersCTE("upd", "$1::timestamptz") + `
SELECT state, type, count(*), (SELECT count(*) FROM notified) + (SELECT count(*) FROM woken_notified)
FROM upd
GROUP BY state, type`

// JobRescue puts running jobs whose lease expired before now back in the
// queue, or fails them when no attempt is left, or cancels them when a
// cancel was asked. Types lists, sorted, the types that got claimable jobs
// back.
func (s *Store) JobRescue(ctx context.Context, now time.Time) (store.RescueResult, error) {
	var (
		res             store.RescueResult
		state, typ      string
		count, notified int
	)
	err := s.retry(ctx, func() error {
		res = store.RescueResult{}
		rows, err := s.pool.Query(ctx, rescueSQL, now)
		if err != nil {
			return err
		}
		_, err = pgx.ForEachRow(rows, []any{&state, &typ, &count, &notified}, func() error {
			switch state {
			case "queued":
				res.Requeued += count
				res.Types = append(res.Types, typ)
			case "failed":
				res.Failed += count
				res.AddEnded(typ, model.JobFailed, count)
			case "canceled":
				res.Canceled += count
				res.AddEnded(typ, model.JobCanceled, count)
			}
			return nil
		})
		return err
	})
	if err != nil {
		return store.RescueResult{}, s.wrap("rescue jobs", err)
	}
	slices.Sort(res.Types)
	return res, nil
}
