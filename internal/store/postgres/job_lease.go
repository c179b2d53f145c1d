package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/dpe-engine/dpe/internal/model"
)

// heartbeatSQL renews, in one statement, every lease of the call whose epoch
// still matches. A row that does not come back was lost (another claim,
// a rescue, a completion). A message is stored with progress, or alone when
// it is not empty.
//   - locked takes the rows in id order before the update touches them:
//     left to the plan, the update would lock them in whatever order its
//     join yields, and a batch of completions of the same jobs
//     (JobCompleteMany, which locks by id) could deadlock with it. It
//     tests nothing but the id, so that it reads the primary key (with a
//     state test the planner may walk every running job instead); a stale
//     beat of a finished job holds that row's lock for the moment only.
//   - the update reads its rows through id = ANY(ARRAY(...)): a primary
//     key lookup per job, whatever the planner guesses of unnest.
const heartbeatSQL = `
WITH locked AS (
	SELECT id FROM jobs WHERE id = ANY($1::int8[]) ORDER BY id FOR UPDATE
)
UPDATE jobs j SET
	lease_until = $5::timestamptz,
	progress    = coalesce(b.progress, j.progress),
	message     = CASE WHEN b.progress IS NOT NULL OR b.message <> '' THEN b.message ELSE j.message END,
	updated_at  = $6
FROM unnest($1::int8[], $2::int8[], $3::int4[], $4::text[]) AS b(id, epoch, progress, message)
WHERE j.id = ANY(ARRAY(SELECT id FROM locked)) AND j.id = b.id AND j.epoch = b.epoch AND j.state = 'running'
RETURNING j.id, j.epoch, j.cancel_asked`

// JobHeartbeat renews the leases of held jobs whose epoch matches, storing
// progress (clamped to 0–100) when given, and answers per beat, in order:
// ok, canceled (cancel asked; the lease is still renewed so the holder can
// finish cleanly) or lost.
func (s *Store) JobHeartbeat(ctx context.Context, beats []model.Heartbeat, ttl time.Duration, now time.Time) ([]model.HeartbeatResult, error) {
	if len(beats) == 0 {
		return []model.HeartbeatResult{}, nil
	}
	if ttl <= 0 {
		ttl = defaultLeaseTTL
	}
	n := len(beats)
	ids, epochs, msgs := make([]int64, n), make([]int64, n), make([]string, n)
	progress := make([]*int32, n)
	for i, b := range beats {
		ids[i], epochs[i], msgs[i] = b.ID, b.Epoch, b.Message
		if b.Progress != nil {
			p := int32(min(max(*b.Progress, 0), 100))
			progress[i] = &p
		}
	}
	until := now.Add(ttl)
	type held struct {
		epoch  int64
		cancel bool
	}
	renewed := make(map[int64]held, n)
	rows, err := s.pool.Query(ctx, heartbeatSQL, ids, epochs, progress, msgs, until, now)
	if err != nil {
		return nil, s.wrap("heartbeat", err)
	}
	var h held
	var id int64
	_, err = pgx.ForEachRow(rows, []any{&id, &h.epoch, &h.cancel}, func() error {
		renewed[id] = h
		return nil
	})
	if err != nil {
		return nil, s.wrap("heartbeat", err)
	}
	out := make([]model.HeartbeatResult, n)
	for i, b := range beats {
		r, ok := renewed[b.ID]
		switch {
		case !ok || r.epoch != b.Epoch:
			out[i] = model.HeartbeatResult{ID: b.ID, Status: model.LeaseLost}
		case r.cancel:
			out[i] = model.HeartbeatResult{ID: b.ID, Status: model.LeaseCanceled, LeaseUntil: until}
		default:
			out[i] = model.HeartbeatResult{ID: b.ID, Status: model.LeaseOK, LeaseUntil: until}
		}
	}
	return out, nil
}

// jobWithReportSQL reads a job with its last report, to tell a repeated
// report from a stale one.
var jobWithReportSQL = `SELECT ` + jobCols + `, reported_epoch, report_digest FROM jobs WHERE id = $1`

// repeatOrConflict explains why a report for (id, epoch) matched no running
// job: the job is missing (model.ErrNotFound), the report repeats the one
// that took effect (the job is returned unchanged), or the report is stale
// (model.ErrConflict). The verdict is reportVerdict's, as for completions.
func (s *Store) repeatOrConflict(ctx context.Context, op string, id, epoch int64, digest string) (model.Job, error) {
	var r reportedJob
	var err error
	r.job, err = scanJob(s.pool.QueryRow(ctx, jobWithReportSQL, id), &r.reportedEpoch, &r.reportDigest)
	if err != nil {
		return model.Job{}, s.wrap(op, err)
	}
	if err := reportVerdict(&r, id, epoch, digest); err != nil {
		return model.Job{}, fmt.Errorf("postgres: %s: %w", op, err)
	}
	return r.job, nil
}

// releaseDigest marks a release as the last report of an epoch.
const releaseDigest = "release"

// releaseSQL gives a running job back without counting the attempt. A job
// whose cancel was asked is canceled instead: queuing it again would only
// have the next processor start it and be told to stop; that end wakes its
// workflow instance.
var releaseSQL = `
WITH upd AS (
	UPDATE jobs SET
		state          = CASE WHEN cancel_asked THEN 'canceled' ELSE 'queued' END,
		attempt        = attempt - 1,
		run_after      = CASE WHEN cancel_asked THEN run_after ELSE $3::timestamptz END,
		lease_until    = NULL,
		finished_at    = CASE WHEN cancel_asked THEN $3::timestamptz ELSE NULL END,
		reported_epoch = epoch,
		report_digest  = '` + releaseDigest + `',
		updated_at     = $3
	WHERE id = $1 AND epoch = $2 AND state = 'running'
	RETURNING ` + "%s" + `
), notified AS (
	SELECT pg_notify('` + notifyChannel + `', type) FROM upd WHERE state = 'queued'
)` + wakeJobOwnersCTE("upd", "$3::timestamptz") + `
SELECT *, (SELECT count(*) FROM notified) + (SELECT count(*) FROM woken_notified) FROM upd`

var releaseSQLFull = fmt.Sprintf(releaseSQL, jobCols)

// JobRelease gives a running job back to the queue without counting the
// attempt (a processor draining). A stale epoch is model.ErrConflict; a
// repeat of the release that took effect returns the job unchanged.
func (s *Store) JobRelease(ctx context.Context, id, epoch int64, now time.Time) (model.Job, error) {
	const op = "release job"
	var (
		j        model.Job
		notified int64
	)
	err := s.retry(ctx, func() error {
		var err error
		j, err = scanJob(s.pool.QueryRow(ctx, releaseSQLFull, id, epoch, now), &notified)
		return err
	})
	if err == nil {
		return j, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return model.Job{}, s.wrap(op, err)
	}
	return s.repeatOrConflict(ctx, op, id, epoch, releaseDigest)
}
