package postgres

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/dpe-engine/dpe/internal/model"
)

// instanceFields are the columns a model.Instance is read from, in
// scanInstance's order.
var instanceFields = []string{
	"id", "name", "template", "version", "args", "priority", "state",
	"progress", "current", "vars", "output", "error", "cancel_asked",
	"concurrency_key", "concurrency_policy", "parent_id", "parent_step",
	"trigger", "worker", "epoch", "lease_until", "wake_at", "wake_seq",
	"created_at", "started_at", "finished_at", "updated_at",
}

// instanceCols is the select list of an instance; instanceColsOf
// qualifies it with a table alias.
var instanceCols = strings.Join(instanceFields, ", ")

func instanceColsOf(alias string) string {
	return alias + "." + strings.Join(instanceFields, ", "+alias+".")
}

// scanInstance reads one row of instanceCols (then extra destinations).
func scanInstance(row pgx.Row, extra ...any) (model.Instance, error) {
	var (
		in                                    model.Instance
		args, current, vars, output           []byte
		state                                 string
		parentID                              *int64
		leaseUntil, wakeAt, started, finished *time.Time
	)
	dest := []any{
		&in.ID, &in.Name, &in.Template, &in.Version, &args, &in.Priority, &state,
		&in.Progress, &current, &vars, &output, &in.Error, &in.CancelAsked,
		&in.ConcurrencyKey, &in.ConcurrencyPolicy, &parentID, &in.ParentStep,
		&in.Trigger, &in.Worker, &in.Epoch, &leaseUntil, &wakeAt, &in.WakeSeq,
		&in.CreatedAt, &started, &finished, &in.UpdatedAt,
	}
	if err := row.Scan(append(dest, extra...)...); err != nil {
		return model.Instance{}, err
	}
	in.State = model.InstanceState(state)
	in.Args = json.RawMessage(args)
	if len(vars) > 0 {
		in.Vars = json.RawMessage(vars)
	}
	if len(output) > 0 {
		in.Output = json.RawMessage(output)
	}
	if len(current) > 0 {
		if err := json.Unmarshal(current, &in.Current); err != nil {
			return model.Instance{}, fmt.Errorf("instance %d: current: %w", in.ID, err)
		}
		if len(in.Current) == 0 {
			in.Current = nil
		}
	}
	if parentID != nil {
		in.ParentID = *parentID
	}
	in.LeaseUntil = utcPtr(leaseUntil)
	in.WakeAt = utcPtr(wakeAt)
	in.StartedAt = utcPtr(started)
	in.FinishedAt = utcPtr(finished)
	in.CreatedAt = in.CreatedAt.UTC()
	in.UpdatedAt = in.UpdatedAt.UTC()
	return in, nil
}

// collectInstances reads every row of rows with scanInstance.
func collectInstances(rows pgx.Rows) ([]model.Instance, error) {
	defer rows.Close()
	var out []model.Instance
	for rows.Next() {
		in, err := scanInstance(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, in)
	}
	return out, rows.Err()
}

// currentJSON encodes the activities in flight for the jsonb column; none
// is NULL, so it reads back as nil.
func currentJSON(paths []string) (*string, error) {
	if len(paths) == 0 {
		return nil, nil
	}
	b, err := json.Marshal(paths)
	if err != nil {
		return nil, err
	}
	s := string(b)
	return &s, nil
}

// rawJSON returns b as a json parameter: NULL when empty.
func rawJSON(b json.RawMessage) *string {
	if len(b) == 0 {
		return nil
	}
	s := string(b)
	return &s
}

// stepCols is the select list of a step record, in scanStep's order.
const stepCols = `path, step_id, kind, state, result, error, job_id, child_id, wake_at, started_at, finished_at`

// scanStep reads one row of stepCols.
func scanStep(row pgx.Row) (model.Step, error) {
	var (
		st               model.Step
		state            string
		result           []byte
		wakeAt, finished *time.Time
	)
	if err := row.Scan(&st.Path, &st.ID, &st.Kind, &state, &result, &st.Error,
		&st.JobID, &st.ChildID, &wakeAt, &st.StartedAt, &finished); err != nil {
		return model.Step{}, err
	}
	st.State = model.StepState(state)
	if len(result) > 0 {
		st.Result = json.RawMessage(result)
	}
	st.WakeAt = utcPtr(wakeAt)
	st.FinishedAt = utcPtr(finished)
	st.StartedAt = st.StartedAt.UTC()
	return st, nil
}
