package postgres

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/dpe-engine/dpe/internal/model"
	"github.com/dpe-engine/dpe/internal/store"
)

var _ store.AuditStore = (*Store)(nil)

// AuditAppend stores audit entries in one transaction (one batch, one
// round trip).
func (s *Store) AuditAppend(ctx context.Context, entries []model.AuditEntry) error {
	if len(entries) == 0 {
		return nil
	}
	return s.tx(ctx, "append audit", func(tx pgx.Tx) error {
		b := &pgx.Batch{}
		for _, e := range entries {
			e = store.NormalizeAudit(e)
			b.Queue(`INSERT INTO audit (at, principal, role, method, route, target, status, remote, request_id, outcome)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
				e.At, e.Principal, string(e.Role), e.Method, e.Route, e.Target, e.Status, e.Remote, e.RequestID, e.Outcome)
		}
		return tx.SendBatch(ctx, b).Close()
	})
}

// AuditList returns a page of audit entries, newest first, and the total.
func (s *Store) AuditList(ctx context.Context, f model.AuditFilter) (model.Page[model.AuditEntry], error) {
	const op = "list audit"
	var where []string
	var args []any
	add := func(cond string, v any) {
		args = append(args, v)
		where = append(where, strings.ReplaceAll(cond, "?", "$"+strconv.Itoa(len(args))))
	}
	if !f.Since.IsZero() {
		add("at >= ?", f.Since)
	}
	if !f.Until.IsZero() {
		add("at < ?", f.Until)
	}
	if f.Principal != "" {
		add("principal = ?", f.Principal)
	}
	if f.Route != "" {
		add("route = ?", f.Route)
	}
	cond := "TRUE"
	if len(where) > 0 {
		cond = strings.Join(where, " AND ")
	}
	var page model.Page[model.AuditEntry]
	err := s.txOpts(ctx, op, pgx.TxOptions{AccessMode: pgx.ReadOnly, IsoLevel: pgx.RepeatableRead}, func(tx pgx.Tx) error {
		// One snapshot for the page and its total.
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM audit WHERE `+cond, args...).Scan(&page.Total); err != nil {
			return err
		}
		pageCond, pageArgs := cond, args
		if f.Before > 0 {
			pageArgs = append(append([]any(nil), args...), f.Before)
			pageCond += " AND id < $" + strconv.Itoa(len(pageArgs))
		}
		pageArgs = append(pageArgs, store.AuditLimit(f.Limit))
		rows, err := tx.Query(ctx, `SELECT id, at, principal, role, method, route, target, status, remote, request_id, outcome
			FROM audit WHERE `+pageCond+` ORDER BY id DESC LIMIT $`+strconv.Itoa(len(pageArgs)), pageArgs...)
		if err != nil {
			return err
		}
		page.Items, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (model.AuditEntry, error) {
			var e model.AuditEntry
			var role string
			err := r.Scan(&e.ID, &e.At, &e.Principal, &role, &e.Method, &e.Route, &e.Target, &e.Status, &e.Remote, &e.RequestID, &e.Outcome)
			e.At, e.Role = e.At.UTC(), model.Role(role)
			return e, err
		})
		return err
	})
	return page, err
}

// AuditPurge deletes up to limit of the oldest entries recorded before
// the time.
func (s *Store) AuditPurge(ctx context.Context, before time.Time, limit int) (int, error) {
	var n int
	err := s.pool.QueryRow(ctx, `
		WITH gone AS (
			DELETE FROM audit WHERE id IN (SELECT id FROM audit WHERE at < $1 ORDER BY id LIMIT $2)
			RETURNING id
		)
		SELECT count(*) FROM gone`, before, max(limit, 1)).Scan(&n)
	return n, s.wrap("purge audit", err)
}
