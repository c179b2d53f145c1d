package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/dpe-engine/dpe/internal/model"
	"github.com/dpe-engine/dpe/internal/store"
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

// JobRelease gives a running job back (store.Release decides: queued with
// the attempt uncounted, or canceled when a cancel was asked; a repeat of
// the release that took effect returns the job unchanged; a stale epoch is
// model.ErrConflict). The job is read under lock and the decision written
// as a completion's is (writeOutcomes): a job queued again notifies
// claims, a canceled one wakes its workflow instance.
func (s *Store) JobRelease(ctx context.Context, id, epoch int64, now time.Time) (model.Job, error) {
	const op = "release job"
	var (
		jobs  map[int64]*reportedJob
		order []int64
		out   model.Job
	)
	err := s.txBatch(ctx, op, func(b *pgx.Batch) {
		b.Queue(lockReportedSQL, []int64{id}).Query(func(rows pgx.Rows) error {
			var err error
			jobs, order, err = readReported(rows, 1)
			return err
		})
	}, func(tx pgx.Tx) error {
		r, ok := jobs[id]
		if !ok {
			return fmt.Errorf("job %d: %w", id, model.ErrNotFound)
		}
		next, changed, err := store.Release(r.ReportedJob, epoch, now)
		if err != nil {
			return err
		}
		r.ReportedJob, r.changed = next, changed
		if err := writeOutcomes(ctx, tx, jobs, order, now); err != nil {
			return err
		}
		out = jobs[id].Job
		return nil
	})
	if err != nil {
		return model.Job{}, err
	}
	return out, nil
}
