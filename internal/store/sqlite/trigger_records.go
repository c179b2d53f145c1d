package sqlite

import (
	"context"

	"github.com/dpe-engine/dpe/internal/model"
)

// recordCols lists the trigger_records columns in the order scanRecord
// reads them.
const recordCols = `"trigger", key, event, action, instance_id, instance, reason, at`

// scanRecord reads one row of recordCols.
func scanRecord(sc scanner) (model.TriggerRecord, error) {
	var (
		r  model.TriggerRecord
		at int64
	)
	if err := sc.Scan(&r.Trigger, &r.Key, &r.Event, &r.Action, &r.InstanceID, &r.Instance, &r.Reason, &at); err != nil {
		return model.TriggerRecord{}, err
	}
	r.At = fromMS(at)
	return r, nil
}

// Record stores r under this transaction's trigger (r.Trigger is not
// consulted: a transaction speaks for one trigger) unless a record of the
// same key and action exists, which is how a second copy handling the
// same event leaves no trace. r.At zero is now. A stored record moves the
// trigger's LastEventAt to now.
func (t *triggerTx) Record(r model.TriggerRecord) (bool, error) {
	at := r.At
	if at.IsZero() {
		at = t.now
	}
	res, err := t.tx.ExecContext(t.ctx, `
		INSERT INTO trigger_records ("trigger", key, event, action, instance_id, instance, reason, at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT ("trigger", key, action) DO NOTHING`,
		t.name, r.Key, r.Event, r.Action, r.InstanceID, r.Instance, r.Reason, ms(at))
	if err != nil {
		return false, t.fail("record", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, t.fail("record", err)
	}
	if n == 0 {
		return false, nil
	}
	if _, err := t.tx.ExecContext(t.ctx, `UPDATE triggers SET last_event_at = ? WHERE name = ?`, ms(t.now), t.name); err != nil {
		return false, t.fail("record", err)
	}
	return true, nil
}

// TriggerRecords returns the newest records (highest id first) of a
// trigger, or of all triggers for name "". limit <= 0 means
// defaultListLimit.
func (s *Store) TriggerRecords(ctx context.Context, name string, limit int) ([]model.TriggerRecord, error) {
	if limit <= 0 {
		limit = defaultListLimit
	}
	q, args := `SELECT `+recordCols+` FROM trigger_records ORDER BY id DESC LIMIT ?`, []any{limit}
	if name != "" {
		q, args = `SELECT `+recordCols+` FROM trigger_records WHERE "trigger" = ? ORDER BY id DESC LIMIT ?`, []any{name, limit}
	}
	out := []model.TriggerRecord{}
	err := s.read(ctx, "trigger records", func(tx *txn) error {
		rows, err := tx.QueryContext(ctx, q, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			r, err := scanRecord(rows)
			if err != nil {
				return err
			}
			out = append(out, r)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
