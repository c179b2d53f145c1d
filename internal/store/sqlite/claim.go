package sqlite

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"maps"
	"math"
	"slices"
	"time"

	"github.com/dpe-engine/dpe/internal/model"
	"github.com/dpe-engine/dpe/internal/store"
)

// claimSQL turns up to ? queued jobs of one type into running ones.
//
// The inner SELECT walks the partial index jobs_claim (type, priority DESC,
// id WHERE state = 'queued') in hand-out order, so a claim reads only the
// head of its type's queue.
//
// The selector test says "no selector entry lacks an equal label": for each
// key/value of the job's selector there must be a label with the same key
// and value. Both sides go through json_each, so keys are compared as
// values and never spliced into a JSON path: any key is safe, not only the
// [A-Za-z0-9._-]+ ones the API allows. The selector = '{}' shortcut skips
// json_each for the common job without a selector.
//
// LIMIT ?+0, not LIMIT ?: SQLite plans with the value bound to a bare
// LIMIT parameter and re-prepares the statement whenever that binding
// changes, which is at nearly every claim (the free slots vary): 100 µs of
// parsing and planning instead of 15 µs per claim, on the single writer.
const claimSQL = `
UPDATE jobs SET
	state = 'running', attempt = attempt + 1, epoch = epoch + 1, processor = ?,
	claim_key = ?, lease_until = ?, started_at = ?, updated_at = ?, progress = 0, message = ''
WHERE id IN (
	SELECT q.id FROM jobs AS q
	WHERE q.state = 'queued' AND q.type = ? AND q.run_after <= ?
	  AND (q.selector = '{}' OR NOT EXISTS (
		SELECT 1 FROM json_each(q.selector) AS sel
		WHERE NOT EXISTS (
			SELECT 1 FROM json_each(?) AS lab
			WHERE lab.key = sel.key AND lab.value = sel.value)))
	ORDER BY q.priority DESC, q.id
	LIMIT ?+0)
RETURNING ` + jobCols

// claimedWithKeySQL finds the jobs an earlier claim with the same key
// handed to this processor and that it still runs: the answer to a retried
// claim. It reads the partial index jobs_running_processor (processor)
// WHERE state = 'running': a quota's worth of rows. Without statistics the
// planner would take jobs_state and read every running job of the
// cluster; INDEXED BY pins the plan (and fails loudly should the index go).
const claimedWithKeySQL = `SELECT ` + jobCols + ` FROM jobs INDEXED BY jobs_running_processor
WHERE state = 'running' AND processor = ? AND claim_key = ?`

// JobClaim hands out queued jobs per type within the slots and the types'
// cluster-wide limits, all in one write transaction: the single writer
// makes it impossible for two claims to see the same queued job. A claim
// repeating the Key of an earlier one returns the jobs that one handed out
// and the processor still runs, and claims nothing.
func (s *Store) JobClaim(ctx context.Context, p store.ClaimParams) ([]model.Job, error) {
	types := slices.Sorted(maps.Keys(p.Slots))
	out := []model.Job{}
	labels, err := encodeMap(p.Labels)
	if err != nil {
		return nil, s.fail("claim", err)
	}
	err = s.write(ctx, "claim", func(tx *txn) error {
		out = out[:0]
		if p.Key != "" {
			prior, err := claimedWithKey(ctx, tx, p.Processor, p.Key)
			if err != nil || len(prior) > 0 {
				out = append(out, prior...)
				return err // a retried claim: its first answer again
			}
		}
		for _, typ := range types {
			jobs, err := claimType(ctx, tx, typ, p.Slots[typ], labels, p)
			if err != nil {
				return err
			}
			out = append(out, jobs...)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	// RETURNING gives no order; hand them out as the queue orders them.
	slices.SortFunc(out, func(a, b model.Job) int {
		return cmp.Or(cmp.Compare(b.Priority, a.Priority), cmp.Compare(a.ID, b.ID))
	})
	return out, nil
}

// claimType claims up to n jobs of one type, cut down by the type's limits.
func claimType(ctx context.Context, tx *txn, typ string, n int, labels string, p store.ClaimParams) ([]model.Job, error) {
	if n <= 0 {
		return nil, nil
	}
	lim, err := loadLimit(ctx, tx, typ)
	if err != nil {
		return nil, err
	}
	if lim.maxRunning > 0 {
		var running int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM jobs WHERE state = 'running' AND type = ?`, typ).Scan(&running); err != nil {
			return nil, err
		}
		n = min(n, lim.maxRunning-running)
	}
	tokens := lim.tokensAt(p.Now)
	if lim.rate > 0 {
		// The small epsilon absorbs float error: 2/s for 500ms is one token.
		n = min(n, int(math.Floor(tokens+1e-9)))
	}
	if n <= 0 {
		return nil, nil
	}
	rows, err := tx.QueryContext(ctx, claimSQL, p.Processor, p.Key, ms(p.Now.Add(p.LeaseTTL)), ms(p.Now), ms(p.Now),
		typ, ms(p.Now), labels, n)
	if err != nil {
		return nil, err
	}
	jobs, err := scanJobs(rows)
	if err != nil {
		return nil, err
	}
	if lim.rate > 0 && len(jobs) > 0 {
		// Only claims spend tokens. The bucket's clock never goes back, so
		// a server with a slow clock cannot refill it twice.
		at := max(ms(p.Now), lim.lastAt.Int64)
		if _, err := tx.ExecContext(ctx, `UPDATE types SET tokens = ?, tokens_at = ? WHERE name = ?`,
			tokens-float64(len(jobs)), at, typ); err != nil {
			return nil, err
		}
	}
	return jobs, nil
}

// claimedWithKey returns the running jobs of processor claimed with key.
func claimedWithKey(ctx context.Context, tx *txn, processor, key string) ([]model.Job, error) {
	rows, err := tx.QueryContext(ctx, claimedWithKeySQL, processor, key)
	if err != nil {
		return nil, err
	}
	return scanJobs(rows)
}

// limit is a type's row in types, with its token bucket.
type limit struct {
	maxRunning int
	rate       float64
	burst      int
	tokens     float64       // left at lastAt
	lastAt     sql.NullInt64 // NULL: bucket full
}

// loadLimit reads the limits of a type; an unknown type has none.
func loadLimit(ctx context.Context, tx *txn, typ string) (limit, error) {
	var l limit
	err := tx.QueryRowContext(ctx, `SELECT max_running, rate, burst, tokens, tokens_at FROM types WHERE name = ?`, typ).
		Scan(&l.maxRunning, &l.rate, &l.burst, &l.tokens, &l.lastAt)
	if errors.Is(err, sql.ErrNoRows) {
		return limit{}, nil
	}
	return l, err
}

// tokensAt is the content of the bucket at now: what was left, plus Rate
// per second since, capped at the burst (default max(1, Rate)).
func (l limit) tokensAt(now time.Time) float64 {
	capacity := float64(l.burst)
	if l.burst <= 0 {
		capacity = max(1, l.rate)
	}
	if !l.lastAt.Valid {
		return capacity
	}
	elapsed := max(0, now.Sub(fromMS(l.lastAt.Int64)).Seconds())
	return min(capacity, l.tokens+l.rate*elapsed)
}
