package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/dpe-engine/dpe/internal/model"
	"github.com/dpe-engine/dpe/internal/store"
)

var _ store.AlertStore = (*Store)(nil)

const alertCols = `key, rule, kind, subject, state, summary, since, fired_at, resolved_at, notify, deliveries, updated_at`

// AlertPut inserts a or replaces the alert of its key.
func (s *Store) AlertPut(ctx context.Context, a model.Alert) error {
	deliveries, err := json.Marshal(a.Deliveries)
	if err != nil {
		return fmt.Errorf("alert %s: %w", a.Key, err)
	}
	if a.Deliveries == nil {
		deliveries = []byte("[]")
	}
	return s.write(ctx, "put alert", func(tx *txn) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO alerts (`+alertCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (key) DO UPDATE SET rule = excluded.rule, kind = excluded.kind, subject = excluded.subject,
				state = excluded.state, summary = excluded.summary, since = excluded.since, fired_at = excluded.fired_at,
				resolved_at = excluded.resolved_at, notify = excluded.notify, deliveries = excluded.deliveries,
				updated_at = excluded.updated_at`,
			a.Key, a.Rule, string(a.Kind), a.Subject, string(a.State), a.Summary, ms(a.Since),
			nullMS(a.FiredAt), nullMS(a.ResolvedAt), a.Notify, string(deliveries), ms(a.UpdatedAt))
		return err
	})
}

// AlertList returns the selected alerts, most recently updated first.
func (s *Store) AlertList(ctx context.Context, f model.AlertFilter) ([]model.Alert, error) {
	var conds []string
	var args []any
	if f.Open {
		conds = append(conds, store.AlertOpenNotify)
	}
	if f.Rule != "" {
		conds = append(conds, "rule = ?")
		args = append(args, f.Rule)
	}
	if !f.UpdatedSince.IsZero() {
		conds = append(conds, "updated_at >= ?")
		args = append(args, ms(f.UpdatedSince))
	}
	q := `SELECT ` + alertCols + ` FROM alerts`
	if len(conds) > 0 {
		q += ` WHERE ` + strings.Join(conds, " AND ")
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 100
	}
	q += ` ORDER BY updated_at DESC, key LIMIT ?`
	args = append(args, limit)
	out := []model.Alert{}
	err := s.read(ctx, "list alerts", func(tx *txn) error {
		rows, err := tx.QueryContext(ctx, q, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var (
				a                       model.Alert
				kind, state, deliveries string
				since, updated          int64
				fired, resolved         sql.NullInt64
			)
			if err := rows.Scan(&a.Key, &a.Rule, &kind, &a.Subject, &state, &a.Summary, &since, &fired, &resolved,
				&a.Notify, &deliveries, &updated); err != nil {
				return err
			}
			a.Kind, a.State = model.AlertKind(kind), model.AlertState(state)
			a.Since, a.UpdatedAt = fromMS(since), fromMS(updated)
			a.FiredAt, a.ResolvedAt = fromNullMS(fired), fromNullMS(resolved)
			if err := json.Unmarshal([]byte(deliveries), &a.Deliveries); err != nil {
				return fmt.Errorf("alert %s: stored deliveries: %w", a.Key, err)
			}
			if len(a.Deliveries) == 0 {
				a.Deliveries = nil
			}
			out = append(out, a)
		}
		return rows.Err()
	})
	return out, err
}

// AlertPurge deletes settled alerts last updated before the time.
func (s *Store) AlertPurge(ctx context.Context, before time.Time) (int, error) {
	var n int64
	err := s.write(ctx, "purge alerts", func(tx *txn) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM alerts WHERE NOT `+store.AlertOpenNotify+` AND updated_at < ?`, ms(before))
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	return int(n), err
}

// InstanceFailedSince returns failed instances that finished at or after
// since, oldest finish first (the instances_finished index).
func (s *Store) InstanceFailedSince(ctx context.Context, since time.Time, limit int) ([]model.Instance, error) {
	var out []model.Instance
	err := s.read(ctx, "list failed instances", func(tx *txn) error {
		rows, err := tx.QueryContext(ctx, `SELECT `+instCols+` FROM instances
			WHERE finished_at IS NOT NULL AND finished_at >= ? AND state = 'failed'
			ORDER BY finished_at, id LIMIT ?`, ms(since), limit)
		if err != nil {
			return err
		}
		out, err = scanInstances(rows)
		return err
	})
	return out, err
}
