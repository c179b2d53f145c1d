package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/dpe-engine/dpe/internal/model"
	"github.com/dpe-engine/dpe/internal/store"
)

// insertJobsSQL inserts a whole batch in one statement from parallel arrays
// (one round trip whatever the batch size). Why it is shaped like this:
//   - input draws the ids from the identity's sequence in spec order
//     (unnest emits the arrays in order), so ids grow in submit order: FIFO;
//   - the rows are then inserted in key order: ON CONFLICT (key) waits for a
//     concurrent transaction that inserted the same key, and if two batches
//     sharing keys inserted them in different orders, each would wait for
//     the other (a deadlock). In one global order the second simply waits
//     for the first, then skips the keys it finds. ord breaks ties, so the
//     first of repeated keys in a batch is the one created;
//   - ON CONFLICT (key) DO NOTHING skips a spec whose key exists (or repeats
//     an earlier spec of the batch); matchInserted then reads those jobs;
//   - the notify CTE wakes listeners once per distinct type inside this
//     transaction, so they are told only if it commits. It is referenced
//     from the select list because an unreferenced SELECT CTE never runs.
var insertJobsSQL = `
WITH input AS (
	SELECT s.*, nextval(pg_get_serial_sequence('jobs', 'id')) AS id
	FROM unnest($1::text[], $2::text[], $3::int4[], $4::int4[], $5::int8[], $6::int8[],
		$7::int8[], $8::text[], $9::int8[], $10::text[], $11::text[], $12::timestamptz[])
		WITH ORDINALITY AS s(type, params, priority, max_attempts, backoff_ns,
			backoff_max_ns, timeout_ns, selector, instance_id, step, key, run_after, ord)
	ORDER BY s.ord
), ins AS (
	INSERT INTO jobs (id, type, params, priority, state, max_attempts, backoff_ns,
		backoff_max_ns, timeout_ns, selector, instance_id, step, key, run_after,
		created_at, updated_at)
	OVERRIDING SYSTEM VALUE
	SELECT id, type, params::json, priority, 'queued', max_attempts, backoff_ns,
		backoff_max_ns, timeout_ns, selector::jsonb, NULLIF(instance_id, 0), step,
		NULLIF(key, ''), run_after, $13, $13
	FROM input
	ORDER BY key COLLATE "C", ord
	ON CONFLICT (key) DO NOTHING
	RETURNING ` + jobCols + `
), notified AS (
	SELECT pg_notify('` + notifyChannel + `', t.type) FROM (SELECT DISTINCT type FROM ins) t
)
SELECT ` + jobCols + `, (SELECT count(*) FROM notified) FROM ins ORDER BY id`

// JobInsert creates jobs in one transaction, in order (ids grow with the
// position in specs). A spec whose Key matches an existing job, or an earlier
// spec of the same call, returns that job with Existing set. Zero settings
// take the model defaults and a zero RunAfter means now.
func (s *Store) JobInsert(ctx context.Context, specs []model.JobSpec, now time.Time) ([]store.Inserted, error) {
	if len(specs) == 0 {
		return []store.Inserted{}, nil
	}
	cols, err := newInsertColumns(specs, now)
	if err != nil {
		return nil, fmt.Errorf("postgres: insert jobs: %w", err)
	}
	var out []store.Inserted
	err = s.tx(ctx, "insert jobs", func(tx pgx.Tx) error {
		out, err = insertJobs(ctx, tx, cols, now)
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// newInsertColumns validates specs (defaults applied) and lays them out as
// the parameters of insertJobsSQL.
func newInsertColumns(specs []model.JobSpec, now time.Time) (*insertColumns, error) {
	cols := &insertColumns{}
	for i, sp := range specs {
		sp = sp.WithDefaults()
		if err := validateSpec(i, sp); err != nil {
			return nil, err
		}
		cols.add(sp, now)
	}
	return cols, nil
}

// insertJobs is JobInsert inside tx, for a validated batch (also used by
// InstanceAdvance, so that a workflow's jobs are submitted exactly as any
// other).
func insertJobs(ctx context.Context, tx pgx.Tx, cols *insertColumns, now time.Time) ([]store.Inserted, error) {
	rows, err := tx.Query(ctx, insertJobsSQL, cols.args(now)...)
	if err != nil {
		return nil, err
	}
	var notified int64
	created, err := collectJobs(rows, &notified)
	if err != nil {
		return nil, err
	}
	return matchInserted(ctx, tx, cols.keys, created)
}

// matchInserted pairs the specs of a batch (by their keys) with the jobs
// the insert created, in id order, and reads the existing job of every spec
// that created none.
func matchInserted(ctx context.Context, tx pgx.Tx, keys []string, created []model.Job) ([]store.Inserted, error) {
	out := make([]store.Inserted, len(keys))
	// Ids follow spec order, so a spec created a job exactly when it is
	// the next created one (same key, or both keyless).
	var existing []string
	next := 0
	for i, key := range keys {
		if next < len(created) && created[next].Key == key {
			out[i] = store.Inserted{Job: created[next]}
			next++
			continue
		}
		existing = append(existing, key)
	}
	if next != len(created) {
		return nil, fmt.Errorf("%d jobs created but only %d matched to specs", len(created), next)
	}
	if len(existing) == 0 {
		return out, nil
	}
	rows, err := tx.Query(ctx, `SELECT `+jobCols+` FROM jobs WHERE key = ANY($1)`, existing)
	if err != nil {
		return nil, err
	}
	found, err := collectJobs(rows)
	if err != nil {
		return nil, err
	}
	byKey := make(map[string]model.Job, len(found))
	for _, j := range found {
		byKey[j.Key] = j
	}
	for i, key := range keys {
		if out[i].Job.ID != 0 {
			continue
		}
		j, ok := byKey[key]
		if !ok {
			return nil, fmt.Errorf("job with key %q neither created nor found", key)
		}
		out[i] = store.Inserted{Job: j, Existing: true}
	}
	return out, nil
}

// insertColumns holds a batch of specs as one array per column: the
// parameters of insertJobsSQL.
type insertColumns struct {
	types, params, selectors, steps, keys []string
	priorities, maxAttempts               []int32
	backoffs, backoffMaxes, timeouts, iid []int64
	runAfters                             []time.Time
}

// add appends one spec (defaults applied); a zero RunAfter becomes now.
func (c *insertColumns) add(sp model.JobSpec, now time.Time) {
	runAfter := sp.RunAfter
	if runAfter.IsZero() {
		runAfter = now
	}
	c.types = append(c.types, sp.Type)
	c.params = append(c.params, string(sp.Params))
	c.priorities = append(c.priorities, int32(sp.Priority))
	c.maxAttempts = append(c.maxAttempts, int32(sp.MaxAttempts))
	c.backoffs = append(c.backoffs, int64(sp.Backoff))
	c.backoffMaxes = append(c.backoffMaxes, int64(sp.BackoffMax))
	c.timeouts = append(c.timeouts, int64(sp.Timeout))
	c.selectors = append(c.selectors, labelsJSON(sp.Selector))
	c.iid = append(c.iid, sp.InstanceID)
	c.steps = append(c.steps, sp.Step)
	c.keys = append(c.keys, sp.Key)
	c.runAfters = append(c.runAfters, runAfter)
}

// args returns the parameters of insertJobsSQL, in its order.
func (c *insertColumns) args(now time.Time) []any {
	return []any{c.types, c.params, c.priorities, c.maxAttempts, c.backoffs,
		c.backoffMaxes, c.timeouts, c.selectors, c.iid, c.steps, c.keys, c.runAfters, now}
}

// validateSpec checks what the database would otherwise refuse with a less
// helpful message. spec has its defaults applied.
func validateSpec(i int, sp model.JobSpec) error {
	field := func(name string) string { return fmt.Sprintf("jobs[%d].%s", i, name) }
	switch {
	case sp.Type == "":
		return model.Invalid(field("type"), "required")
	case !json.Valid(sp.Params):
		return model.Invalid(field("params"), "not valid JSON")
	case sp.MaxAttempts < 0:
		return model.Invalid(field("max_attempts"), "must not be negative")
	case sp.Priority > model.MaxPriority || sp.Priority < -model.MaxPriority:
		return model.Invalid(field("priority"), "must be within ±%d", model.MaxPriority)
	}
	return nil
}
