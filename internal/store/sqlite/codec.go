package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"

	"github.com/dpe-engine/dpe/internal/model"
)

// ms is how a time is stored: unix milliseconds.
func ms(t time.Time) int64 { return t.UnixMilli() }

// fromMS reads a stored time.
func fromMS(v int64) time.Time { return time.UnixMilli(v).UTC() }

// nullMS stores an optional time: NULL for nil or zero.
func nullMS(t *time.Time) any {
	if t == nil || t.IsZero() {
		return nil
	}
	return t.UnixMilli()
}

// fromNullMS reads an optional time.
func fromNullMS(v sql.NullInt64) *time.Time {
	if !v.Valid {
		return nil
	}
	t := fromMS(v.Int64)
	return &t
}

// encodeMap stores a map as a JSON object; nil and empty both become "{}"
// (never "null", which the selector check would have to special-case).
func encodeMap[V any](m map[string]V) (string, error) {
	if len(m) == 0 {
		return "{}", nil
	}
	b, err := json.Marshal(m)
	if err != nil {
		return "", err
	}
	return string(b), nil
}

// decodeMap reads a stored JSON object; an empty one becomes nil.
func decodeMap[V any](s string) (map[string]V, error) {
	var m map[string]V
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		return nil, fmt.Errorf("stored map %q: %w", s, err)
	}
	if len(m) == 0 {
		return nil, nil
	}
	return m, nil
}

// nullJSON stores an optional JSON document: NULL when empty.
func nullJSON(raw json.RawMessage) any {
	if len(raw) == 0 {
		return nil
	}
	return string(raw)
}

// jobCols lists the jobs columns in the order scanJob reads them.
const jobCols = `id, type, params, priority, state, attempt, max_attempts, backoff, backoff_max,
	timeout, selector, instance_id, step, job_key, epoch, processor, lease_until, run_after,
	progress, message, result, error, cancel_asked, created_at, started_at, finished_at, updated_at`

// scanner is a *sql.Row or *sql.Rows.
type scanner interface{ Scan(dest ...any) error }

// scanJob reads one row of jobCols.
func scanJob(sc scanner) (model.Job, error) {
	var (
		j                            model.Job
		params, selector, state      string
		key, result                  sql.NullString
		backoff, backoffMax, timeout int64
		runAfter, created, updated   int64
		lease, started, finished     sql.NullInt64
	)
	err := sc.Scan(&j.ID, &j.Type, &params, &j.Priority, &state, &j.Attempt, &j.MaxAttempts,
		&backoff, &backoffMax, &timeout, &selector, &j.InstanceID, &j.Step, &key, &j.Epoch,
		&j.Processor, &lease, &runAfter, &j.Progress, &j.Message, &result, &j.Error,
		&j.CancelAsked, &created, &started, &finished, &updated)
	if err != nil {
		return model.Job{}, err
	}
	j.Params = json.RawMessage(params)
	j.State = model.JobState(state)
	j.Backoff, j.BackoffMax, j.Timeout = model.Duration(backoff), model.Duration(backoffMax), model.Duration(timeout)
	if j.Selector, err = decodeMap[string](selector); err != nil {
		return model.Job{}, fmt.Errorf("job %d: %w", j.ID, err)
	}
	j.Key = key.String
	if result.Valid {
		j.Result = json.RawMessage(result.String)
	}
	j.LeaseUntil = fromNullMS(lease)
	j.RunAfter = fromMS(runAfter)
	j.CreatedAt = fromMS(created)
	j.StartedAt = fromNullMS(started)
	j.FinishedAt = fromNullMS(finished)
	j.UpdatedAt = fromMS(updated)
	return j, nil
}

// scanJobs reads every row of jobCols.
func scanJobs(rows *sql.Rows) ([]model.Job, error) {
	defer rows.Close()
	jobs := []model.Job{}
	for rows.Next() {
		j, err := scanJob(rows)
		if err != nil {
			return nil, err
		}
		jobs = append(jobs, j)
	}
	return jobs, rows.Err()
}

// queryer is a *txn or *sql.DB.
type queryer interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// getJob reads one job (sql.ErrNoRows when missing).
func getJob(ctx context.Context, q queryer, id int64) (model.Job, error) {
	return scanJob(q.QueryRowContext(ctx, `SELECT `+jobCols+` FROM jobs WHERE id = ?`, id))
}
