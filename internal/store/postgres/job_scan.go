package postgres

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/dpe-engine/dpe/internal/model"
)

// jobFields are the columns a model.Job is read from, in scanJob's order.
var jobFields = []string{
	"id", "type", "params", "priority", "state", "attempt", "max_attempts",
	"backoff_ns", "backoff_max_ns", "timeout_ns", "selector", "instance_id",
	"step", "key", "epoch", "processor", "lease_until", "run_after",
	"progress", "message", "result", "error", "cancel_asked",
	"created_at", "started_at", "finished_at", "updated_at",
}

// jobCols is the select list of a job; jobColsOf qualifies it with a table
// alias, for statements that join jobs to something else.
var jobCols = strings.Join(jobFields, ", ")

func jobColsOf(alias string) string {
	return alias + "." + strings.Join(jobFields, ", "+alias+".")
}

// scanJob reads one row of jobCols (then extra destinations, if any).
func scanJob(row pgx.Row, extra ...any) (model.Job, error) {
	var (
		j                            model.Job
		params, selector, result     []byte
		state                        string
		backoff, backoffMax, timeout int64
		instanceID                   *int64
		key                          *string
		leaseUntil, started, finish  *time.Time
	)
	dest := []any{
		&j.ID, &j.Type, &params, &j.Priority, &state, &j.Attempt, &j.MaxAttempts,
		&backoff, &backoffMax, &timeout, &selector, &instanceID,
		&j.Step, &key, &j.Epoch, &j.Processor, &leaseUntil, &j.RunAfter,
		&j.Progress, &j.Message, &result, &j.Error, &j.CancelAsked,
		&j.CreatedAt, &started, &finish, &j.UpdatedAt,
	}
	if err := row.Scan(append(dest, extra...)...); err != nil {
		return model.Job{}, err
	}
	j.State = model.JobState(state)
	j.Params = json.RawMessage(params)
	if len(result) > 0 {
		j.Result = json.RawMessage(result)
	}
	j.Backoff = model.Duration(backoff)
	j.BackoffMax = model.Duration(backoffMax)
	j.Timeout = model.Duration(timeout)
	if len(selector) > 0 && string(selector) != "{}" {
		if err := json.Unmarshal(selector, &j.Selector); err != nil {
			return model.Job{}, fmt.Errorf("job %d: selector: %w", j.ID, err)
		}
		if len(j.Selector) == 0 {
			j.Selector = nil
		}
	}
	if instanceID != nil {
		j.InstanceID = *instanceID
	}
	if key != nil {
		j.Key = *key
	}
	j.LeaseUntil = utcPtr(leaseUntil)
	j.StartedAt = utcPtr(started)
	j.FinishedAt = utcPtr(finish)
	j.RunAfter = j.RunAfter.UTC()
	j.CreatedAt = j.CreatedAt.UTC()
	j.UpdatedAt = j.UpdatedAt.UTC()
	return j, nil
}

// collectJobs reads every row of rows with scanJob (extra destinations are
// overwritten row after row).
func collectJobs(rows pgx.Rows, extra ...any) ([]model.Job, error) {
	defer rows.Close()
	var out []model.Job
	for rows.Next() {
		j, err := scanJob(rows, extra...)
		if err != nil {
			return nil, err
		}
		out = append(out, j)
	}
	return out, rows.Err()
}

// utcPtr returns *t in UTC (pgx reads timestamptz in the local zone).
func utcPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

// labelsJSON encodes a selector or label set as a JSON object ("{}" when
// empty), the form the jsonb containment test needs.
func labelsJSON(m map[string]string) string {
	if len(m) == 0 {
		return "{}"
	}
	b, err := json.Marshal(m)
	if err != nil {
		// A map[string]string always encodes; keep the contract total anyway.
		return "{}"
	}
	return string(b)
}
