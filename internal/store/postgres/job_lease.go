package postgres

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
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
const heartbeatSQL = `
UPDATE jobs j SET
	lease_until = $5::timestamptz,
	progress    = coalesce(b.progress, j.progress),
	message     = CASE WHEN b.progress IS NOT NULL OR b.message <> '' THEN b.message ELSE j.message END,
	updated_at  = $6
FROM unnest($1::int8[], $2::int8[], $3::int4[], $4::text[]) AS b(id, epoch, progress, message)
WHERE j.id = b.id AND j.epoch = b.epoch AND j.state = 'running'
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
// (model.ErrConflict).
func (s *Store) repeatOrConflict(ctx context.Context, op string, id, epoch int64, digest string) (model.Job, error) {
	var (
		reportedEpoch int64
		reported      string
	)
	j, err := scanJob(s.pool.QueryRow(ctx, jobWithReportSQL, id), &reportedEpoch, &reported)
	if err != nil {
		return model.Job{}, s.wrap(op, err)
	}
	if j.Epoch == epoch && reportedEpoch == epoch && reported == digest {
		return j, nil
	}
	if j.Epoch != epoch {
		return model.Job{}, fmt.Errorf("postgres: %s: job %d: epoch %d is stale (current %d): %w",
			op, id, epoch, j.Epoch, model.ErrConflict)
	}
	return model.Job{}, fmt.Errorf("postgres: %s: job %d is %s, not running: %w", op, id, j.State, model.ErrConflict)
}

// completeSQL records an outcome in one statement.
//   - cur locks the running row of the epoch and decides the next state:
//     success; canceled when a cancel was asked; queued again while
//     attempts remain and the error is not permanent; else failed. It also
//     computes model.RetryDelay (Backoff doubled per attempt, capped).
//   - a requeued job notifies at once even though its back-off has not
//     passed: the woken claim finds nothing and waits again, which is
//     cheaper than a timer per job.
//   - a job that ended (not requeued) wakes its workflow instance in the
//     same statement (wakeJobOwnersCTE).
var completeSQL = `
WITH cur AS (
	SELECT id,
		CASE WHEN $3::text = '' THEN 'succeeded'
			WHEN cancel_asked THEN 'canceled'
			WHEN NOT $4::boolean AND attempt < max_attempts THEN 'queued'
			ELSE 'failed'
		END AS next,
		LEAST(backoff_ns::float8 * power(2, attempt - 1), backoff_max_ns::float8) AS delay_ns
	FROM jobs
	WHERE id = $1 AND epoch = $2 AND state = 'running'
	FOR UPDATE
), upd AS (
	UPDATE jobs j SET
		state          = cur.next,
		run_after      = CASE WHEN cur.next = 'queued'
		                      THEN $6::timestamptz + make_interval(secs => cur.delay_ns / 1e9::float8)
		                      ELSE j.run_after END,
		result         = $5::json,
		error          = $3,
		progress       = CASE WHEN cur.next = 'succeeded' THEN 100 ELSE j.progress END,
		lease_until    = NULL,
		finished_at    = CASE WHEN cur.next = 'queued' THEN NULL ELSE $6::timestamptz END,
		reported_epoch = j.epoch,
		report_digest  = $7,
		updated_at     = $6
	FROM cur
	WHERE j.id = cur.id
	RETURNING ` + "%s" + `
), notified AS (
	SELECT pg_notify('` + notifyChannel + `', type) FROM upd WHERE state = 'queued'
)` + wakeJobOwnersCTE("upd", "$6::timestamptz") + `
SELECT *, (SELECT count(*) FROM notified) + (SELECT count(*) FROM woken_notified) FROM upd`

var completeSQLFull = fmt.Sprintf(completeSQL, jobColsOf("j"))

// JobComplete records the outcome of the attempt with c.Epoch (see
// store.JobStore). An exact repeat of the report that took effect (same
// epoch, same result or error, no claim since) returns the job unchanged.
func (s *Store) JobComplete(ctx context.Context, c model.Completion, now time.Time) (model.Job, error) {
	const op = "complete job"
	var result *string
	if len(c.Result) > 0 {
		if !json.Valid(c.Result) {
			return model.Job{}, fmt.Errorf("postgres: %s: %w", op, model.Invalid("result", "not valid JSON"))
		}
		r := string(c.Result)
		result = &r
	}
	digest := completionDigest(c)
	var (
		j        model.Job
		notified int64
	)
	// retry: the instance this job wakes may be locked by a transaction
	// that waits for this job (rare; see wakeJobOwnersCTE).
	err := s.retry(ctx, func() error {
		var err error
		j, err = scanJob(s.pool.QueryRow(ctx, completeSQLFull, c.ID, c.Epoch, c.Error, c.Permanent, result, now, digest), &notified)
		return err
	})
	if err == nil {
		return j, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return model.Job{}, s.wrap(op, err)
	}
	return s.repeatOrConflict(ctx, op, c.ID, c.Epoch, digest)
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

// completionDigest identifies a completion report so that an exact repeat
// is recognised: the outcome, the error and the result (whitespace aside).
func completionDigest(c model.Completion) string {
	h := sha256.New()
	if c.Error == "" {
		h.Write([]byte("ok\x00"))
	} else {
		fmt.Fprintf(h, "error\x00%t\x00%s\x00", c.Permanent, c.Error)
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, c.Result); err == nil {
		h.Write(compact.Bytes())
	} else {
		h.Write(c.Result)
	}
	return hex.EncodeToString(h.Sum(nil))
}
