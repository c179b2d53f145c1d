package sqlite

import (
	"context"
	"strings"
	"time"

	"github.com/dpe-engine/dpe/internal/model"
	"github.com/dpe-engine/dpe/internal/store"
)

var _ store.AuditStore = (*Store)(nil)

// AuditAppend stores audit entries in one transaction.
func (s *Store) AuditAppend(ctx context.Context, entries []model.AuditEntry) error {
	if len(entries) == 0 {
		return nil
	}
	return s.write(ctx, "append audit", func(tx *txn) error {
		for _, e := range entries {
			e = store.NormalizeAudit(e)
			if _, err := tx.ExecContext(ctx, `INSERT INTO audit (at, principal, role, method, route, target, status, remote, request_id, outcome)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
				ms(e.At), e.Principal, string(e.Role), e.Method, e.Route, e.Target, e.Status, e.Remote, e.RequestID, e.Outcome); err != nil {
				return err
			}
		}
		return nil
	})
}

// AuditList returns a page of audit entries, newest first, and the total.
func (s *Store) AuditList(ctx context.Context, f model.AuditFilter) (model.Page[model.AuditEntry], error) {
	var where []string
	var args []any
	add := func(cond string, v any) {
		where, args = append(where, cond), append(args, v)
	}
	if !f.Since.IsZero() {
		add("at >= ?", ms(f.Since))
	}
	if !f.Until.IsZero() {
		add("at < ?", ms(f.Until))
	}
	if f.Principal != "" {
		add("principal = ?", f.Principal)
	}
	if f.Route != "" {
		add("route = ?", f.Route)
	}
	cond := "1"
	if len(where) > 0 {
		cond = strings.Join(where, " AND ")
	}
	var page model.Page[model.AuditEntry]
	err := s.read(ctx, "list audit", func(tx *txn) error {
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM audit WHERE `+cond, args...).Scan(&page.Total); err != nil {
			return err
		}
		pageCond, pageArgs := cond, args
		if f.Before > 0 {
			pageCond, pageArgs = cond+" AND id < ?", append(append([]any(nil), args...), f.Before)
		}
		rows, err := tx.QueryContext(ctx, `SELECT id, at, principal, role, method, route, target, status, remote, request_id, outcome
			FROM audit WHERE `+pageCond+` ORDER BY id DESC LIMIT ?`, append(pageArgs, store.AuditLimit(f.Limit))...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var e model.AuditEntry
			var at int64
			var role string
			if err := rows.Scan(&e.ID, &at, &e.Principal, &role, &e.Method, &e.Route, &e.Target, &e.Status, &e.Remote, &e.RequestID, &e.Outcome); err != nil {
				return err
			}
			e.At, e.Role = fromMS(at), model.Role(role)
			page.Items = append(page.Items, e)
		}
		return rows.Err()
	})
	return page, err
}

// AuditPurge deletes up to limit of the oldest entries recorded before
// the time.
func (s *Store) AuditPurge(ctx context.Context, before time.Time, limit int) (int, error) {
	var n int
	err := s.write(ctx, "purge audit", func(tx *txn) error {
		var err error
		n, err = execCount(ctx, tx, `DELETE FROM audit WHERE id IN (SELECT id FROM audit WHERE at < ? ORDER BY id LIMIT ?)`, ms(before), max(limit, 1))
		return err
	})
	return n, err
}
