package postgres

import (
	"context"

	"github.com/dpe-engine/dpe/internal/model"
)

// recordCols is the select list of a trigger record, in the order
// TriggerRecords scans it.
const recordCols = `trigger, key, event, action, instance_id, instance, reason, at`

// Record stores r under this transaction's trigger (whatever r.Trigger
// says) unless a record with the same key and action exists, reporting
// whether it was stored. At defaults to now. A stored record moves the
// trigger's LastEventAt to TriggerDo's now.
func (x *triggerTx) Record(r model.TriggerRecord) (bool, error) {
	const op = "record"
	if r.Action == "" {
		return false, x.wrap(op, model.Invalid("action", "required"))
	}
	if r.At.IsZero() {
		r.At = x.now
	}
	// ON CONFLICT DO NOTHING: the unique (trigger, key, action) makes a
	// repeated event a no-op that is not an error, so the transaction goes
	// on.
	tag, err := x.tx.Exec(x.ctx, `
		INSERT INTO trigger_records (trigger, key, event, action, instance_id, instance, reason, at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
		ON CONFLICT (trigger, key, action) DO NOTHING`,
		x.locked.Name, r.Key, r.Event, r.Action, r.InstanceID, r.Instance, r.Reason, r.At)
	if err != nil {
		return false, x.wrap(op, err)
	}
	if tag.RowsAffected() == 0 {
		return false, nil
	}
	now := x.now
	x.lastEvent = &now
	return true, nil
}

// The two queries of TriggerRecords: all triggers' records (the primary
// key backwards) and one trigger's (trigger_records_newest). Two statements
// rather than one that ORs "no name given" with "trigger = $1": a cached
// generic plan of the OR form could use the index for neither case.
const (
	recordsAllSQL = `SELECT ` + recordCols + ` FROM trigger_records ORDER BY id DESC LIMIT $1`
	recordsOfSQL  = `SELECT ` + recordCols + ` FROM trigger_records WHERE trigger = $1 ORDER BY id DESC LIMIT $2`
)

// TriggerRecords returns the newest records of the trigger name first, or
// of every trigger when name is ""; at most limit (defaultListLimit when
// zero or less, as the lists). "Newest" is the order recorded: ids grow in commit order within
// one trigger, whose TriggerDo calls take turns.
func (s *Store) TriggerRecords(ctx context.Context, name string, limit int) ([]model.TriggerRecord, error) {
	const op = "trigger: records"
	if limit <= 0 {
		limit = defaultListLimit
	}
	sql, args := recordsAllSQL, []any{limit}
	if name != "" {
		sql, args = recordsOfSQL, []any{name, limit}
	}
	rows, err := s.pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, s.wrap(op, err)
	}
	defer rows.Close()
	out := []model.TriggerRecord{}
	for rows.Next() {
		var r model.TriggerRecord
		if err := rows.Scan(&r.Trigger, &r.Key, &r.Event, &r.Action, &r.InstanceID, &r.Instance, &r.Reason, &r.At); err != nil {
			return nil, s.wrap(op, err)
		}
		r.At = r.At.UTC()
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, s.wrap(op, err)
	}
	return out, nil
}
