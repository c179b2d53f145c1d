package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

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
	_, err = s.pool.Exec(ctx, `INSERT INTO alerts (`+alertCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
		ON CONFLICT (key) DO UPDATE SET rule = excluded.rule, kind = excluded.kind, subject = excluded.subject,
			state = excluded.state, summary = excluded.summary, since = excluded.since, fired_at = excluded.fired_at,
			resolved_at = excluded.resolved_at, notify = excluded.notify, deliveries = excluded.deliveries,
			updated_at = excluded.updated_at`,
		a.Key, a.Rule, string(a.Kind), a.Subject, string(a.State), a.Summary, a.Since,
		a.FiredAt, a.ResolvedAt, a.Notify, string(deliveries), a.UpdatedAt)
	return s.wrap("put alert", err)
}

// AlertList returns the selected alerts, most recently updated first.
func (s *Store) AlertList(ctx context.Context, f model.AlertFilter) ([]model.Alert, error) {
	var conds []string
	var args []any
	if f.Open {
		conds = append(conds, store.AlertOpenNotify)
	}
	if f.Rule != "" {
		args = append(args, f.Rule)
		conds = append(conds, fmt.Sprintf("rule = $%d", len(args)))
	}
	if !f.UpdatedSince.IsZero() {
		args = append(args, f.UpdatedSince)
		conds = append(conds, fmt.Sprintf("updated_at >= $%d", len(args)))
	}
	q := `SELECT ` + alertCols + ` FROM alerts`
	if len(conds) > 0 {
		q += ` WHERE ` + strings.Join(conds, " AND ")
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 100
	}
	args = append(args, limit)
	q += fmt.Sprintf(` ORDER BY updated_at DESC, key LIMIT $%d`, len(args))
	rows, err := s.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, s.wrap("list alerts", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (model.Alert, error) {
		var (
			a                       model.Alert
			kind, state, deliveries string
		)
		if err := r.Scan(&a.Key, &a.Rule, &kind, &a.Subject, &state, &a.Summary, &a.Since, &a.FiredAt, &a.ResolvedAt,
			&a.Notify, &deliveries, &a.UpdatedAt); err != nil {
			return a, err
		}
		a.Kind, a.State = model.AlertKind(kind), model.AlertState(state)
		a.Since, a.UpdatedAt = a.Since.UTC(), a.UpdatedAt.UTC()
		a.FiredAt, a.ResolvedAt = utcPtr(a.FiredAt), utcPtr(a.ResolvedAt)
		if err := json.Unmarshal([]byte(deliveries), &a.Deliveries); err != nil {
			return a, fmt.Errorf("alert %s: stored deliveries: %w", a.Key, err)
		}
		if len(a.Deliveries) == 0 {
			a.Deliveries = nil
		}
		return a, nil
	})
	if out == nil {
		out = []model.Alert{}
	}
	return out, s.wrap("list alerts", err)
}

// AlertPurge deletes settled alerts last updated before the time.
func (s *Store) AlertPurge(ctx context.Context, before time.Time) (int, error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM alerts WHERE NOT `+store.AlertOpenNotify+` AND updated_at < $1`, before)
	if err != nil {
		return 0, s.wrap("purge alerts", err)
	}
	return int(tag.RowsAffected()), nil
}

// InstanceFailedSince returns failed instances that finished at or after
// since, oldest finish first (the instances_finished index).
func (s *Store) InstanceFailedSince(ctx context.Context, since time.Time, limit int) ([]model.Instance, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+instanceCols+` FROM instances
		WHERE finished_at IS NOT NULL AND finished_at >= $1 AND state = 'failed'
		ORDER BY finished_at, id LIMIT $2`, since, limit)
	if err != nil {
		return nil, s.wrap("list failed instances", err)
	}
	out, err := collectInstances(rows)
	return out, s.wrap("list failed instances", err)
}
