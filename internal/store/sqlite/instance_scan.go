package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"

	"github.com/dpe-engine/dpe/internal/model"
)

// liveStates is the SQL list of instance states that can still change.
const liveStates = `('pending', 'running')`

// finalStates is the SQL list of instance states that cannot change.
const finalStates = `('succeeded', 'failed', 'canceled')`

// instCols lists the instances columns in the order scanInstance reads them.
// "trigger" is quoted: it is an SQL keyword (CREATE TRIGGER).
const instCols = `id, name, template, version, args, priority, state, progress, current, vars, output,
	error, cancel_asked, concurrency_key, concurrency_policy, parent_id, parent_step, "trigger", worker, epoch,
	lease_until, wake_at, wake_seq, created_at, started_at, finished_at, updated_at`

// scanInstance reads one row of instCols.
func scanInstance(sc scanner) (model.Instance, error) {
	var (
		in                             model.Instance
		args, state, current           string
		vars, output                   sql.NullString
		lease, wake, started, finished sql.NullInt64
		created, updated               int64
	)
	err := sc.Scan(&in.ID, &in.Name, &in.Template, &in.Version, &args, &in.Priority, &state, &in.Progress,
		&current, &vars, &output, &in.Error, &in.CancelAsked, &in.ConcurrencyKey, &in.ConcurrencyPolicy,
		&in.ParentID, &in.ParentStep, &in.Trigger, &in.Worker, &in.Epoch, &lease, &wake, &in.WakeSeq,
		&created, &started, &finished, &updated)
	if err != nil {
		return model.Instance{}, err
	}
	in.Args = json.RawMessage(args)
	in.State = model.InstanceState(state)
	if err := json.Unmarshal([]byte(current), &in.Current); err != nil {
		return model.Instance{}, fmt.Errorf("instance %d: stored current %q: %w", in.ID, current, err)
	}
	if len(in.Current) == 0 {
		in.Current = nil
	}
	if vars.Valid {
		in.Vars = json.RawMessage(vars.String)
	}
	if output.Valid {
		in.Output = json.RawMessage(output.String)
	}
	in.LeaseUntil = fromNullMS(lease)
	in.WakeAt = fromNullMS(wake)
	in.CreatedAt = fromMS(created)
	in.StartedAt = fromNullMS(started)
	in.FinishedAt = fromNullMS(finished)
	in.UpdatedAt = fromMS(updated)
	return in, nil
}

// scanInstances reads every row of instCols.
func scanInstances(rows *sql.Rows) ([]model.Instance, error) {
	defer rows.Close()
	out := []model.Instance{}
	for rows.Next() {
		in, err := scanInstance(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, in)
	}
	return out, rows.Err()
}

// getInstance reads one instance (sql.ErrNoRows when missing).
func getInstance(ctx context.Context, q queryer, id int64) (model.Instance, error) {
	return scanInstance(q.QueryRowContext(ctx, `SELECT `+instCols+` FROM instances WHERE id = ?`, id))
}

// encodeList stores a list of strings as a JSON array; nil becomes "[]".
func encodeList(xs []string) (string, error) {
	if len(xs) == 0 {
		return "[]", nil
	}
	b, err := json.Marshal(xs)
	return string(b), err
}

// stepCols lists the steps columns in the order scanStep reads them.
const stepCols = `path, step_id, kind, state, result, error, job_id, child_id, wake_at, started_at, finished_at`

// scanStep reads one row of stepCols.
func scanStep(sc scanner) (model.Step, error) {
	var (
		st             model.Step
		state          string
		result         sql.NullString
		wake, finished sql.NullInt64
		started        int64
	)
	if err := sc.Scan(&st.Path, &st.ID, &st.Kind, &state, &result, &st.Error, &st.JobID, &st.ChildID,
		&wake, &started, &finished); err != nil {
		return model.Step{}, err
	}
	st.State = model.StepState(state)
	if result.Valid {
		st.Result = json.RawMessage(result.String)
	}
	st.WakeAt = fromNullMS(wake)
	st.StartedAt = fromMS(started)
	st.FinishedAt = fromNullMS(finished)
	return st, nil
}

// templateCols lists the templates columns in the order scanTemplate reads
// them.
const templateCols = `name, version, description, source, canonical, created_at`

// scanTemplate reads one row of templateCols.
func scanTemplate(sc scanner) (model.Template, error) {
	var (
		t         model.Template
		canonical string
		created   int64
	)
	if err := sc.Scan(&t.Name, &t.Version, &t.Description, &t.Source, &canonical, &created); err != nil {
		return model.Template{}, err
	}
	t.Canonical = json.RawMessage(canonical)
	t.CreatedAt = fromMS(created)
	return t, nil
}

// wakeInstance records an event for a live instance: due at once, one more
// event counted (so an advance decided before it keeps the instance due).
// Final and missing instances are left alone; id 0 (no instance) is a
// no-op.
func wakeInstance(ctx context.Context, tx *txn, id int64, now time.Time) error {
	if id == 0 {
		return nil
	}
	_, err := tx.ExecContext(ctx, wakeSQL, ms(now), ms(now), id)
	return err
}

// wakeSQL wakes instance id (third ?) at wake_at = updated_at = the first
// two, when it is live.
const wakeSQL = `
	UPDATE instances SET wake_at = ?, wake_seq = wake_seq + 1, updated_at = ?
	WHERE id = ? AND state IN ` + liveStates
