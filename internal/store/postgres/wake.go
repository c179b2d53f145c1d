package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
)

// instancesPayload is the notification payload (and WatchJobs argument)
// that means "workflow instances may need a worker": the pseudo job type
// "@instances" of store.InstanceStore.
const instancesPayload = "@instances"

// notifyInstancesSQL tells every server's WatchJobs that instances may be
// due. Sent inside a transaction, it is delivered only if that commits, and
// PostgreSQL folds repeats of one payload within a transaction into one.
const notifyInstancesSQL = `SELECT pg_notify('` + notifyChannel + `', '` + instancesPayload + `')`

// Advisory lock classes (the first key of the two-key form of
// pg_advisory_xact_lock; the second is hashtext of a name), so that the
// locks of one kind never collide with another kind's.
const (
	// lockTemplate serialises TemplatePut and TemplateDelete of one name
	// (exclusive) against InstanceCreate of that template (shared).
	lockTemplate int32 = 0x6474_706c // "dtpl"
	// lockConcurrencyKey serialises InstanceCreate per concurrency key, so
	// two concurrent starts with policy skip cannot both find the key free.
	lockConcurrencyKey int32 = 0x646b_6579 // "dkey"
)

// liveStates is the SQL list of the instance states that are not final.
// Partial indexes use the same expression, which is what lets the planner
// use them.
const liveStates = `('pending', 'running')`

// wakeJobOwnersCTE returns CTEs, to append after a CTE named src that
// returns jobs' instance_id and state, which wake the workflow instances
// of the jobs that reached a final state: wake_at = now and wake_seq + 1,
// when the instance is not final itself. "woken_notified" tells the
// workers (referenced from the statement's select list, since a SELECT CTE
// nobody reads never runs). A job queued again for a retry wakes nothing:
// the instance has nothing to decide until the job ends.
//
// Jobs are locked before their instance here (the job update comes first),
// as in InstanceAdvance, so the two never wait on each other in a cycle.
func wakeJobOwnersCTE(src, nowParam string) string {
	return `, woken AS (
	UPDATE instances i SET wake_at = ` + nowParam + `, wake_seq = i.wake_seq + 1
	FROM (SELECT DISTINCT instance_id FROM ` + src + `
	      WHERE instance_id IS NOT NULL AND state IN ('succeeded', 'failed', 'canceled')) w
	WHERE i.id = w.instance_id AND i.state IN ` + liveStates + `
	RETURNING i.id
), woken_notified AS (
	SELECT pg_notify('` + notifyChannel + `', '` + instancesPayload + `') WHERE EXISTS (SELECT 1 FROM woken)
)`
}

// wakeInstanceSQL wakes one live instance: an event for it (a child ended,
// its concurrency key became free).
const wakeInstanceSQL = `
UPDATE instances SET wake_at = $2, wake_seq = wake_seq + 1
WHERE id = $1 AND state IN ` + liveStates

// notifyInstances sends the "@instances" notification in tx.
func notifyInstances(ctx context.Context, tx pgx.Tx) error {
	_, err := tx.Exec(ctx, notifyInstancesSQL)
	return err
}

// wakeInstance wakes one instance in tx, reporting whether it was live.
func wakeInstance(ctx context.Context, tx pgx.Tx, id int64, now time.Time) (bool, error) {
	tag, err := tx.Exec(ctx, wakeInstanceSQL, id, now)
	if err != nil {
		return false, err
	}
	return tag.RowsAffected() > 0, nil
}
