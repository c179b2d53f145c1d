package sqlite

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/dpe-engine/dpe/internal/model"
	"github.com/dpe-engine/dpe/internal/store"
)

// defaultListLimit is the page size of a JobList without a Limit.
const defaultListLimit = 100

// JobInsert creates jobs in order in one transaction; a spec whose Key is
// taken returns the job that holds it. Keys need no extra locking: every
// write of this process goes through the one writer connection and other
// processes wait on BEGIN IMMEDIATE, so a lookup and the insert that
// follows it cannot interleave with another insert.
func (s *Store) JobInsert(ctx context.Context, specs []model.JobSpec, now time.Time) ([]store.Inserted, error) {
	out := make([]store.Inserted, 0, len(specs))
	if len(specs) == 0 {
		return out, nil
	}
	err := s.write(ctx, "insert jobs", func(tx *txn) error {
		out = out[:0]
		for i := 0; i < len(specs); {
			if n := keylessRun(specs[i:]); n >= insertChunk {
				jobs, err := insertChunkOf(ctx, tx, specs[i:i+insertChunk], now)
				if err != nil {
					return fmt.Errorf("jobs %d-%d: %w", i, i+insertChunk-1, err)
				}
				for _, j := range jobs {
					out = append(out, store.Inserted{Job: j})
				}
				i += insertChunk
				continue
			}
			in, err := insertJob(ctx, tx, specs[i].WithDefaults(), now)
			if err != nil {
				return fmt.Errorf("job %d: %w", i, err)
			}
			out = append(out, in)
			i++
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// insertChunk is the number of rows of a multi-row insert: always the
// same, so the statement is prepared once (see stmtcache.go); the rest of
// a batch goes row by row.
const insertChunk = 32

// insertColumns are the columns every job insert writes, in the order of
// insertArgs.
const insertColumns = `type, params, priority, state, max_attempts, backoff, backoff_max, timeout,
	selector, instance_id, step, job_key, run_after, created_at, updated_at`

// insertChunkSQL inserts insertChunk keyless jobs in one statement.
var insertChunkSQL = `INSERT INTO jobs (` + insertColumns + `) VALUES ` +
	strings.TrimSuffix(strings.Repeat(`(?, ?, ?, 'queued', ?, ?, ?, ?, ?, ?, ?, NULL, ?, ?, ?), `, insertChunk), ", ") +
	` RETURNING ` + jobCols

// keylessRun returns how many specs at the head of specs have no key.
func keylessRun(specs []model.JobSpec) int {
	for i, sp := range specs {
		if sp.Key != "" {
			return i
		}
	}
	return len(specs)
}

// insertChunkOf inserts insertChunk keyless specs with one statement and
// returns their jobs in spec order (ids grow in insert order).
func insertChunkOf(ctx context.Context, tx *txn, specs []model.JobSpec, now time.Time) ([]model.Job, error) {
	args := make([]any, 0, 13*len(specs))
	for _, sp := range specs {
		sp = sp.WithDefaults()
		selector, err := encodeMap(sp.Selector)
		if err != nil {
			return nil, err
		}
		runAfter := sp.RunAfter
		if runAfter.IsZero() {
			runAfter = now
		}
		args = append(args, sp.Type, string(sp.Params), sp.Priority, sp.MaxAttempts, int64(sp.Backoff),
			int64(sp.BackoffMax), int64(sp.Timeout), selector, sp.InstanceID, sp.Step,
			ms(runAfter), ms(now), ms(now))
	}
	rows, err := tx.QueryContext(ctx, insertChunkSQL, args...)
	if err != nil {
		return nil, err
	}
	jobs, err := scanJobs(rows)
	if err != nil {
		return nil, err
	}
	if len(jobs) != len(specs) {
		return nil, fmt.Errorf("%d jobs inserted for %d specs", len(jobs), len(specs))
	}
	slices.SortFunc(jobs, func(a, b model.Job) int { return cmp.Compare(a.ID, b.ID) })
	return jobs, nil
}

// insertJob creates one job or finds the one holding its key.
func insertJob(ctx context.Context, tx *txn, spec model.JobSpec, now time.Time) (store.Inserted, error) {
	var key any // NULL: no key, never a duplicate
	if spec.Key != "" {
		key = spec.Key
	}
	selector, err := encodeMap(spec.Selector)
	if err != nil {
		return store.Inserted{}, err
	}
	runAfter := spec.RunAfter
	if runAfter.IsZero() {
		runAfter = now
	}
	j, err := scanJob(tx.QueryRowContext(ctx, `
		INSERT INTO jobs (`+insertColumns+`)
		VALUES (?, ?, ?, 'queued', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (job_key) DO NOTHING
		RETURNING `+jobCols,
		spec.Type, string(spec.Params), spec.Priority, spec.MaxAttempts, int64(spec.Backoff),
		int64(spec.BackoffMax), int64(spec.Timeout), selector, spec.InstanceID, spec.Step, key,
		ms(runAfter), ms(now), ms(now)))
	if errors.Is(err, sql.ErrNoRows) && spec.Key != "" {
		// The key is taken: the job holding it is the answer.
		j, err = scanJob(tx.QueryRowContext(ctx, `SELECT `+jobCols+` FROM jobs WHERE job_key = ?`, spec.Key))
		if err != nil {
			return store.Inserted{}, err
		}
		return store.Inserted{Job: j, Existing: true}, nil
	}
	if err != nil {
		return store.Inserted{}, err
	}
	return store.Inserted{Job: j}, nil
}

// JobGet returns one job or model.ErrNotFound.
func (s *Store) JobGet(ctx context.Context, id int64) (model.Job, error) {
	if s.closed.Load() {
		return model.Job{}, s.fail("get job", errClosed)
	}
	j, err := getJob(ctx, s.r, id)
	if err != nil {
		return model.Job{}, s.fail("get job", fmt.Errorf("job %d: %w", id, err))
	}
	return j, nil
}

// JobList returns a page of jobs, newest (highest id) first, and the number
// of jobs matching the filter (up to model.CountCap) on every page. A zero Limit means
// defaultListLimit.
func (s *Store) JobList(ctx context.Context, f model.JobFilter) (model.Page[model.Job], error) {
	where, args := jobFilter(f)
	limit := f.Limit
	if limit <= 0 {
		limit = defaultListLimit
	}
	var page model.Page[model.Job]
	err := s.read(ctx, "list jobs", func(tx *txn) error {
		// Total ignores the cursor: it counts the whole result, not what
		// is left of it.
		var n int
		if err := tx.QueryRowContext(ctx, cappedCount(`SELECT 1 FROM jobs WHERE `+where), args...).Scan(&n); err != nil {
			return err
		}
		page.CappedTotal(n)
		pageWhere, pageArgs := where, args
		if f.After > 0 {
			pageWhere += ` AND id < ?`
			pageArgs = append(pageArgs[:len(pageArgs):len(pageArgs)], f.After)
		}
		rows, err := tx.QueryContext(ctx, `SELECT `+jobCols+` FROM jobs WHERE `+pageWhere+
			` ORDER BY id DESC LIMIT ?`, append(pageArgs, limit)...)
		if err != nil {
			return err
		}
		page.Items, err = scanJobs(rows)
		return err
	})
	if err != nil {
		return model.Page[model.Job]{}, err
	}
	return page, nil
}

// cappedCount counts the rows of query up to model.CountCap+1 (see
// Page.CappedTotal): the matches are read only that far.
func cappedCount(query string) string {
	return fmt.Sprintf(`SELECT COUNT(*) FROM (%s LIMIT %d)`, query, model.CountCap+1)
}

// jobFilter turns a filter (without its cursor) into a WHERE clause. Only
// placeholders are spliced in, never values.
func jobFilter(f model.JobFilter) (string, []any) {
	conds := []string{"1 = 1"}
	var args []any
	in := func(col string, n int) string {
		return col + " IN (" + strings.TrimSuffix(strings.Repeat("?, ", n), ", ") + ")"
	}
	if len(f.States) > 0 {
		conds = append(conds, in("state", len(f.States)))
		for _, st := range f.States {
			args = append(args, string(st))
		}
	}
	if len(f.Types) > 0 {
		conds = append(conds, in("type", len(f.Types)))
		for _, t := range f.Types {
			args = append(args, t)
		}
	}
	if f.InstanceID != 0 {
		// Repeats the predicate of the partial index jobs_instance: with
		// "instance_id = ?" alone SQLite cannot use it and reads every job
		// (the workflow detail page, issue 14).
		conds = append(conds, "instance_id = ? AND instance_id <> 0")
		args = append(args, f.InstanceID)
	}
	if !f.CreatedAfter.IsZero() {
		// likelihood: a time range is taken to be narrow (the monitor
		// asks for the last hour), so the planner reads it from
		// jobs_created and sorts, rather than walking every id down
		// from the newest (dpe runs no ANALYZE that would tell it).
		conds = append(conds, "likelihood(created_at > ?, 0.001)")
		args = append(args, ms(f.CreatedAfter))
	}
	if !f.CreatedBefore.IsZero() {
		conds = append(conds, "created_at < ?")
		args = append(args, ms(f.CreatedBefore))
	}
	return strings.Join(conds, " AND "), args
}
