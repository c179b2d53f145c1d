package postgres

import (
	"cmp"
	"context"
	"math"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/dpe-engine/dpe/internal/model"
	"github.com/dpe-engine/dpe/internal/store"
)

// defaultLeaseTTL is the lease of a claim that names none.
const defaultLeaseTTL = 30 * time.Second

// lockLimitsSQL locks the job_types rows of the requested types that have a
// cluster-wide limit, in name order (one order everywhere: no deadlocks).
// Types without a limit are not locked at all, so claims of unlimited types
// never wait for each other; claims of one limited type take turns, which is
// what makes MaxRunning and the token bucket exact across servers.
const lockLimitsSQL = `
SELECT name, max_running, rate, burst, tokens, tokens_at
FROM job_types
WHERE name = ANY($1::text[]) AND (max_running > 0 OR rate > 0)
ORDER BY name
FOR UPDATE`

// claimSQL claims, in one statement, up to n jobs of each requested type.
//   - want caps n by MaxRunning minus the jobs of the type running now. It
//     runs after lockLimitsSQL in the same read-committed transaction, so
//     its snapshot already includes every claim committed by whoever held
//     the type's lock before.
//   - picked walks the partial index jobs_claim (type, priority DESC, id)
//     WHERE state = 'queued' once per type: O(log n) with millions queued.
//     FOR UPDATE SKIP LOCKED lets concurrent claims pass each other: a row
//     one claim holds is skipped by the next, never handed out twice.
//   - selector <@ labels: the job's selector must be a subset of the
//     processor's labels (an empty selector matches every processor).
//   - picked is a CTE because a locking SELECT is never inlined: it runs
//     exactly once, so LIMIT bounds the rows locked and updated.
//   - The update matches id = ANY(ARRAY(SELECT id FROM picked)): the
//     planner cannot know how many rows picked returns (its LIMIT is a
//     per-type value), and with a join it would hash-join over a full
//     scan of jobs — every row ever kept, finished ones included (925 ms
//     a claim with a million rows). An array of ids makes it a primary
//     key lookup per claimed job.
const claimSQL = `
WITH want AS (
	SELECT w.type,
		CASE WHEN w.max_running > 0
			THEN LEAST(w.n, w.max_running -
				(SELECT count(*) FROM jobs r WHERE r.state = 'running' AND r.type = w.type))
			ELSE w.n
		END AS n
	FROM unnest($1::text[], $2::int4[], $3::int4[]) AS w(type, n, max_running)
), picked AS (
	SELECT c.id
	FROM want CROSS JOIN LATERAL (
		SELECT q.id FROM jobs q
		WHERE q.state = 'queued' AND q.type = want.type
			AND q.run_after <= $4 AND q.selector <@ $5::jsonb
		ORDER BY q.priority DESC, q.id
		LIMIT GREATEST(want.n, 0)
		FOR UPDATE SKIP LOCKED
	) c
)
UPDATE jobs j SET
	state       = 'running',
	attempt     = j.attempt + 1,
	epoch       = j.epoch + 1,
	processor   = $6,
	lease_until = $7,
	started_at  = $4,
	progress    = 0,
	message     = '',
	updated_at  = $4
WHERE j.id = ANY(ARRAY(SELECT id FROM picked))
RETURNING `

var claimSQLFull = claimSQL + jobColsOf("j")

// saveTokensSQL stores the token buckets after a claim took tokens.
const saveTokensSQL = `
UPDATE job_types t SET tokens = u.tokens, tokens_at = u.at
FROM unnest($1::text[], $2::float8[], $3::timestamptz[]) AS u(name, tokens, at)
WHERE t.name = u.name`

// typeLimit is a locked job_types row.
type typeLimit struct {
	name       string
	maxRunning int32
	rate       float64
	burst      int32
	tokens     *float64
	tokensAt   *time.Time
}

// capacity is the bucket size: Burst, or max(1, Rate) when Burst is unset.
func (l typeLimit) capacity() float64 {
	if l.burst > 0 {
		return float64(l.burst)
	}
	return math.Max(1, l.rate)
}

// available returns the tokens in the bucket at now and the time they are
// counted from. A clock that went back (another server's) refills nothing
// and never moves the bucket's time backwards.
func (l typeLimit) available(now time.Time) (float64, time.Time) {
	if l.tokens == nil || l.tokensAt == nil {
		return l.capacity(), now
	}
	at := *l.tokensAt
	if now.After(at) {
		at = now
	}
	refill := l.rate * at.Sub(*l.tokensAt).Seconds()
	return math.Min(l.capacity(), *l.tokens+refill), at
}

// JobClaim hands out queued jobs whose RunAfter has passed and whose
// selector the labels satisfy, priority first then FIFO, at most Slots[type]
// per type and never past a type's cluster-wide MaxRunning or rate. The
// jobs come back in claim order (priority, then id). A zero LeaseTTL means
// 30 s.
func (s *Store) JobClaim(ctx context.Context, p store.ClaimParams) ([]model.Job, error) {
	var types []string
	for t, n := range p.Slots {
		if n > 0 && t != "" {
			types = append(types, t)
		}
	}
	if len(types) == 0 {
		return []model.Job{}, nil
	}
	slices.Sort(types)
	ttl := p.LeaseTTL
	if ttl <= 0 {
		ttl = defaultLeaseTTL
	}

	var claimed []model.Job
	err := s.tx(ctx, "claim", func(tx pgx.Tx) error {
		limits, err := lockLimits(ctx, tx, types)
		if err != nil {
			return err
		}
		ns := make([]int32, 0, len(types))
		maxes := make([]int32, 0, len(types))
		want := make([]string, 0, len(types))
		avail := make(map[string]float64)
		availAt := make(map[string]time.Time)
		for _, t := range types {
			n := int32(min(p.Slots[t], math.MaxInt32))
			l, limited := limits[t]
			if limited && l.rate > 0 {
				a, at := l.available(p.Now)
				avail[t], availAt[t] = a, at
				// The epsilon keeps 2.9999999 from float drift a 3.
				n = min(n, int32(math.Floor(a+1e-9)))
			}
			if n <= 0 {
				continue
			}
			want = append(want, t)
			ns = append(ns, n)
			maxes = append(maxes, l.maxRunning) // 0 when unlimited
		}
		if len(want) == 0 {
			return nil
		}
		rows, err := tx.Query(ctx, claimSQLFull, want, ns, maxes, p.Now,
			labelsJSON(p.Labels), p.Processor, p.Now.Add(ttl))
		if err != nil {
			return err
		}
		if claimed, err = collectJobs(rows); err != nil {
			return err
		}
		return saveTokens(ctx, tx, claimed, avail, availAt)
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(claimed, func(a, b model.Job) int {
		if c := cmp.Compare(b.Priority, a.Priority); c != 0 {
			return c
		}
		return cmp.Compare(a.ID, b.ID)
	})
	if claimed == nil {
		claimed = []model.Job{}
	}
	return claimed, nil
}

// lockLimits locks and returns the limits of the types that have one.
func lockLimits(ctx context.Context, tx pgx.Tx, types []string) (map[string]typeLimit, error) {
	rows, err := tx.Query(ctx, lockLimitsSQL, types)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := make(map[string]typeLimit)
	for rows.Next() {
		var l typeLimit
		if err := rows.Scan(&l.name, &l.maxRunning, &l.rate, &l.burst, &l.tokens, &l.tokensAt); err != nil {
			return nil, err
		}
		out[l.name] = l
	}
	return out, rows.Err()
}

// saveTokens takes the claimed jobs' tokens out of the rate-limited types'
// buckets. Types that claimed nothing keep their row as it was: their
// bucket refills from the stored time just the same.
func saveTokens(ctx context.Context, tx pgx.Tx, claimed []model.Job, avail map[string]float64, at map[string]time.Time) error {
	if len(avail) == 0 {
		return nil
	}
	taken := make(map[string]int)
	for _, j := range claimed {
		if _, ok := avail[j.Type]; ok {
			taken[j.Type]++
		}
	}
	if len(taken) == 0 {
		return nil
	}
	var (
		names  []string
		tokens []float64
		times  []time.Time
	)
	for t, n := range taken {
		names = append(names, t)
		tokens = append(tokens, avail[t]-float64(n))
		times = append(times, at[t])
	}
	_, err := tx.Exec(ctx, saveTokensSQL, names, tokens, times)
	return err
}
