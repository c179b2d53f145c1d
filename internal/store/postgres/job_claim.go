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
	claim_key   = $8,
	started_at  = $4,
	progress    = 0,
	message     = '',
	updated_at  = $4
WHERE j.id = ANY(ARRAY(SELECT id FROM picked))
RETURNING `

var claimSQLFull = claimSQL + jobColsOf("j")

// claimedWithKeySQL finds the jobs an earlier claim with the same key
// handed to this processor and that it still runs: the answer to a retried
// claim. The partial index jobs_running_processor (processor) WHERE state =
// 'running' narrows it to the processor's running jobs, a quota's worth.
var claimedWithKeySQL = `SELECT ` + jobCols + `
FROM jobs WHERE state = 'running' AND processor = $1 AND claim_key = $2`

// claimUnlimitedSQL is a whole claim in one statement outside any
// explicit transaction (one round trip, one commit instead of three round
// trips), for the common claim: no requested type has a cluster-wide
// limit, so nothing needs locking first (see lockLimitsSQL).
//   - limited finds a requested type with a limit; then nothing is claimed
//     and the statement returns no row: the caller claims through the
//     transaction, which locks the limits. Under read committed a limit
//     set while this statement runs may not bind it, as it would not bind
//     a transaction that locked the limits just before.
//   - prior is the retried claim's answer (claimedWithKeySQL): when the
//     key finds running jobs, they are returned and nothing is claimed.
//   - picked and the update are claimSQL's, without MaxRunning.
var claimUnlimitedSQL = `
WITH limited AS (
	SELECT 1 FROM job_types
	WHERE name = ANY($1::text[]) AND (max_running > 0 OR rate > 0)
	LIMIT 1
), prior AS (
	SELECT ` + jobCols + ` FROM jobs
	WHERE $7 <> '' AND state = 'running' AND processor = $5 AND claim_key = $7
), picked AS (
	SELECT c.id
	FROM unnest($1::text[], $2::int4[]) AS w(type, n) CROSS JOIN LATERAL (
		SELECT q.id FROM jobs q
		WHERE q.state = 'queued' AND q.type = w.type
			AND q.run_after <= $3 AND q.selector <@ $4::jsonb
		ORDER BY q.priority DESC, q.id
		LIMIT w.n
		FOR UPDATE SKIP LOCKED
	) c
	WHERE NOT EXISTS (SELECT 1 FROM limited) AND NOT EXISTS (SELECT 1 FROM prior)
), upd AS (
	UPDATE jobs j SET
		state       = 'running',
		attempt     = j.attempt + 1,
		epoch       = j.epoch + 1,
		processor   = $5,
		lease_until = $6,
		claim_key   = $7,
		started_at  = $3,
		progress    = 0,
		message     = '',
		updated_at  = $3
	WHERE j.id = ANY(ARRAY(SELECT id FROM picked))
	RETURNING ` + jobColsOf("j") + `
)
SELECT * FROM upd
UNION ALL
SELECT * FROM prior`

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
// 30 s. A claim repeating the Key of an earlier one returns the jobs that
// one handed out and the processor still runs, and claims nothing.
//
// A claim of types without limits that finds jobs is one statement
// (claimUnlimitedSQL). The others, and a claim that found nothing, take
// three round trips: BEGIN travels with the limits' lock and the key's
// lookup (txBatch), then the claim, then COMMIT.
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

	claimed, err := s.claimUnlimited(ctx, p, types, ttl)
	if err != nil {
		return nil, err
	}
	if len(claimed) == 0 {
		claimed, err = s.claimLocked(ctx, p, types, ttl)
		if err != nil {
			return nil, err
		}
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

// claimUnlimited runs claimUnlimitedSQL: the jobs claimed, or the running
// jobs of an earlier claim with p.Key; none when nothing was claimable or
// a requested type has a limit.
func (s *Store) claimUnlimited(ctx context.Context, p store.ClaimParams, types []string, ttl time.Duration) ([]model.Job, error) {
	ns := make([]int32, len(types))
	for i, t := range types {
		ns[i] = int32(min(p.Slots[t], math.MaxInt32))
	}
	var claimed []model.Job
	err := s.wrap("claim", s.retry(ctx, func() error {
		rows, err := s.pool.Query(ctx, claimUnlimitedSQL, types, ns, p.Now,
			labelsJSON(p.Labels), p.Processor, p.Now.Add(ttl), p.Key)
		if err != nil {
			return err
		}
		claimed, err = collectJobs(rows)
		return err
	}))
	return claimed, err
}

// claimLocked claims in a transaction that locks the requested types'
// limits first, so that MaxRunning and the token buckets are exact.
func (s *Store) claimLocked(ctx context.Context, p store.ClaimParams, types []string, ttl time.Duration) ([]model.Job, error) {
	var (
		claimed, prior []model.Job
		limits         map[string]typeLimit
	)
	err := s.txBatch(ctx, "claim", func(b *pgx.Batch) {
		b.Queue(lockLimitsSQL, types).Query(func(rows pgx.Rows) error {
			var err error
			limits, err = readLimits(rows)
			return err
		})
		prior = nil
		if p.Key != "" {
			b.Queue(claimedWithKeySQL, p.Processor, p.Key).Query(func(rows pgx.Rows) error {
				var err error
				prior, err = collectJobs(rows)
				return err
			})
		}
	}, func(tx pgx.Tx) error {
		claimed = prior
		if len(prior) > 0 {
			return nil // a retried claim: its first answer again
		}
		var err error
		claimed, err = claimTypes(ctx, tx, p, types, limits, ttl)
		return err
	})
	return claimed, err
}

// claimTypes claims, in tx and with the types' limits locked, what each
// type's slots, MaxRunning and token bucket allow, and takes the claimed
// jobs' tokens.
func claimTypes(ctx context.Context, tx pgx.Tx, p store.ClaimParams, types []string, limits map[string]typeLimit, ttl time.Duration) ([]model.Job, error) {
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
		return nil, nil
	}
	rows, err := tx.Query(ctx, claimSQLFull, want, ns, maxes, p.Now,
		labelsJSON(p.Labels), p.Processor, p.Now.Add(ttl), p.Key)
	if err != nil {
		return nil, err
	}
	claimed, err := collectJobs(rows)
	if err != nil {
		return nil, err
	}
	return claimed, saveTokens(ctx, tx, claimed, avail, availAt)
}

// readLimits reads the rows of lockLimitsSQL: the limits of the types that
// have one.
func readLimits(rows pgx.Rows) (map[string]typeLimit, error) {
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
