package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/dpe-engine/dpe/internal/model"
)

// JobGet returns one job, or model.ErrNotFound.
func (s *Store) JobGet(ctx context.Context, id int64) (model.Job, error) {
	j, err := s.getJob(ctx, s.pool, id)
	if err != nil {
		return model.Job{}, s.wrap("get job", err)
	}
	return j, nil
}

// querier is what both the pool and a transaction offer.
type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

func (s *Store) getJob(ctx context.Context, q querier, id int64) (model.Job, error) {
	return scanJob(q.QueryRow(ctx, `SELECT `+jobCols+` FROM jobs WHERE id = $1`, id))
}

// defaultListLimit is the page size of a JobList without a Limit.
const defaultListLimit = 100

// JobList returns the newest jobs matching f first. Total counts the matches
// of the filter up to model.CountCap, ignoring After and Limit; a Limit of zero or less means
// defaultListLimit. CreatedAfter and CreatedBefore are exclusive bounds.
func (s *Store) JobList(ctx context.Context, f model.JobFilter) (model.Page[model.Job], error) {
	// The WHERE clause is assembled from fixed fragments with numbered
	// parameters, never from values, so each combination of filters is one
	// stable statement that pgx prepares and caches.
	var (
		conds []string
		args  []any
	)
	add := func(cond string, arg any) {
		args = append(args, arg)
		conds = append(conds, strings.ReplaceAll(cond, "$?", fmt.Sprintf("$%d", len(args))))
	}
	if len(f.States) > 0 {
		states := make([]string, len(f.States))
		for i, st := range f.States {
			states[i] = string(st)
		}
		add("state = ANY($?::text[])", states)
	}
	if len(f.Types) > 0 {
		add("type = ANY($?::text[])", f.Types)
	}
	if f.InstanceID != 0 {
		add("instance_id = $?", f.InstanceID)
	}
	if !f.CreatedAfter.IsZero() {
		add("created_at > $?", f.CreatedAfter)
	}
	if !f.CreatedBefore.IsZero() {
		add("created_at < $?", f.CreatedBefore)
	}
	countSQL := cappedCount(`SELECT 1 FROM jobs` + whereClause(conds))
	countArgs := slices.Clone(args)

	if f.After > 0 {
		add("id < $?", f.After)
	}
	limit := f.Limit
	if limit <= 0 {
		limit = defaultListLimit
	}
	args = append(args, limit)
	listSQL := `SELECT ` + jobCols + ` FROM jobs` + whereClause(conds) +
		fmt.Sprintf(` ORDER BY id DESC LIMIT $%d`, len(args))

	page := model.Page[model.Job]{Items: []model.Job{}}
	// REPEATABLE READ: the count and the page come from one snapshot.
	err := s.txOpts(ctx, "list jobs", pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		var n int
		if err := tx.QueryRow(ctx, countSQL, countArgs...).Scan(&n); err != nil {
			return err
		}
		page.CappedTotal(n)
		rows, err := tx.Query(ctx, listSQL, args...)
		if err != nil {
			return err
		}
		jobs, err := collectJobs(rows)
		if err != nil {
			return err
		}
		if jobs != nil {
			page.Items = jobs
		}
		return nil
	})
	if err != nil {
		return model.Page[model.Job]{}, err
	}
	return page, nil
}

// cappedCount counts the rows of query up to model.CountCap+1 (see
// Page.CappedTotal): the matches are read only that far.
func cappedCount(query string) string {
	return fmt.Sprintf(`SELECT count(*) FROM (%s LIMIT %d) AS m`, query, model.CountCap+1)
}

// whereClause joins conditions into a WHERE clause ("" for none).
func whereClause(conds []string) string {
	if len(conds) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(conds, " AND ")
}

// cancelJobSQL cancels a queued job at once and asks a running one to stop,
// in one statement for both live states; a running job already asked is
// left alone so that a repeated cancel changes nothing. A queued job's
// cancel is its end: it wakes the job's workflow instance.
var cancelJobSQL = `
WITH upd AS (
	UPDATE jobs SET
		state        = CASE WHEN state = 'queued' THEN 'canceled' ELSE state END,
		finished_at  = CASE WHEN state = 'queued' THEN $2::timestamptz ELSE finished_at END,
		cancel_asked = true,
		updated_at   = $2
	WHERE id = $1 AND (state = 'queued' OR (state = 'running' AND NOT cancel_asked))
	RETURNING ` + jobCols + `
)` + wakeJobOwnersCTE("upd", "$2::timestamptz") + `
SELECT *, (SELECT count(*) FROM woken_notified) FROM upd`

// JobCancel cancels a queued job at once and asks a running one to stop.
// A canceled job is returned unchanged; a succeeded or failed one is
// model.ErrConflict.
func (s *Store) JobCancel(ctx context.Context, id int64, now time.Time) (model.Job, error) {
	const op = "cancel job"
	// A job can move between queued and running between the update and
	// the read below (a claim, a release); then the update is tried again.
	for range 3 {
		var (
			j        model.Job
			notified int64
		)
		err := s.retry(ctx, func() error {
			var err error
			j, err = scanJob(s.pool.QueryRow(ctx, cancelJobSQL, id, now), &notified)
			return err
		})
		if err == nil {
			return j, nil
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return model.Job{}, s.wrap(op, err)
		}
		j, err = s.getJob(ctx, s.pool, id)
		if err != nil {
			return model.Job{}, s.wrap(op, err)
		}
		switch {
		case j.State == model.JobCanceled, j.State == model.JobRunning && j.CancelAsked:
			return j, nil
		case j.State.Final():
			return model.Job{}, fmt.Errorf("postgres: %s: job %d is %s: %w", op, id, j.State, model.ErrConflict)
		}
	}
	return model.Job{}, fmt.Errorf("postgres: %s: job %d keeps changing state: %w", op, id, model.ErrConflict)
}

// JobSetPriority changes the priority of a job not yet final
// (model.ErrConflict otherwise).
func (s *Store) JobSetPriority(ctx context.Context, id int64, priority int, now time.Time) (model.Job, error) {
	const op = "set job priority"
	j, err := scanJob(s.pool.QueryRow(ctx, `
		UPDATE jobs SET priority = $2, updated_at = $3
		WHERE id = $1 AND state IN ('queued', 'running')
		RETURNING `+jobCols, id, priority, now))
	if err == nil {
		return j, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return model.Job{}, s.wrap(op, err)
	}
	j, err = s.getJob(ctx, s.pool, id)
	if err != nil {
		return model.Job{}, s.wrap(op, err)
	}
	return model.Job{}, fmt.Errorf("postgres: %s: job %d is %s: %w", op, id, j.State, model.ErrConflict)
}

// JobSetPriorityByInstance changes the priority of every queued job of a
// workflow instance, returning how many changed (jobs already at that
// priority do not count). Instance 0 ("no instance") is model.ErrInvalid:
// it would re-prioritise every job submitted outside a workflow.
func (s *Store) JobSetPriorityByInstance(ctx context.Context, instanceID int64, priority int, now time.Time) (int, error) {
	const op = "set instance priority"
	if instanceID <= 0 {
		return 0, s.wrap(op, model.Invalid("instance_id", "must be positive"))
	}
	tag, err := s.pool.Exec(ctx, `
		UPDATE jobs SET priority = $2, updated_at = $3
		WHERE instance_id = $1 AND state = 'queued' AND priority <> $2`,
		instanceID, priority, now)
	if err != nil {
		return 0, s.wrap(op, err)
	}
	return int(tag.RowsAffected()), nil
}

// JobCounts counts jobs per state; states with none are absent.
func (s *Store) JobCounts(ctx context.Context) (map[model.JobState]int, error) {
	const op = "count jobs"
	rows, err := s.pool.Query(ctx, `SELECT state, count(*) FROM jobs GROUP BY state`)
	if err != nil {
		return nil, s.wrap(op, err)
	}
	defer rows.Close()
	out := make(map[model.JobState]int)
	for rows.Next() {
		var (
			state string
			n     int
		)
		if err := rows.Scan(&state, &n); err != nil {
			return nil, s.wrap(op, err)
		}
		out[model.JobState(state)] = n
	}
	if err := rows.Err(); err != nil {
		return nil, s.wrap(op, err)
	}
	return out, nil
}

// JobPurge deletes final jobs that finished before the time.
func (s *Store) JobPurge(ctx context.Context, finishedBefore time.Time) (int, error) {
	const op = "purge jobs"
	var n int
	err := s.pool.QueryRow(ctx, `
		WITH gone AS (
			DELETE FROM jobs
			WHERE finished_at < $1 AND state IN ('succeeded', 'failed', 'canceled')
			RETURNING id
		), logs_gone AS (
			DELETE FROM log_lines WHERE job_id IN (SELECT id FROM gone)
		)
		SELECT count(*) FROM gone`, finishedBefore).Scan(&n)
	if err != nil {
		return 0, s.wrap(op, err)
	}
	return n, nil
}
