package sqlite

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/dpe-engine/dpe/internal/model"
	"github.com/dpe-engine/dpe/internal/store"
)

var _ store.TokenStore = (*Store)(nil)

// TokenCreate stores a token; a name in use (even revoked) is a conflict.
func (s *Store) TokenCreate(ctx context.Context, t model.Token) error {
	return s.write(ctx, "create token", func(tx *txn) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO tokens (name, role, triggers, hash, created_at) VALUES (?, ?, ?, ?, ?)`,
			t.Name, string(t.Role), strings.Join(t.Scope(), ","), t.Hash, ms(t.Created))
		return err
	})
}

// TokenByHash returns the live token with the hash.
func (s *Store) TokenByHash(ctx context.Context, hash []byte) (model.Token, error) {
	var t model.Token
	err := s.read(ctx, "get token", func(tx *txn) error {
		var role, triggers string
		var created int64
		err := tx.QueryRowContext(ctx, `SELECT name, role, triggers, hash, created_at FROM tokens WHERE hash = ? AND revoked_at = 0`, hash).
			Scan(&t.Name, &role, &triggers, &t.Hash, &created)
		t.Role, t.Created = model.Role(role), fromMS(created)
		t.SetScope(splitPatterns(triggers)) // the column holds the scope of any role
		return err
	})
	return t, err
}

// TokenList returns every token by name.
func (s *Store) TokenList(ctx context.Context) ([]model.Token, error) {
	var out []model.Token
	err := s.read(ctx, "list tokens", func(tx *txn) error {
		rows, err := tx.QueryContext(ctx, `SELECT name, role, triggers, created_at, revoked_at FROM tokens ORDER BY name`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var t model.Token
			var role, triggers string
			var created, revoked int64
			if err := rows.Scan(&t.Name, &role, &triggers, &created, &revoked); err != nil {
				return err
			}
			t.Role, t.Created = model.Role(role), fromMS(created)
			t.SetScope(splitPatterns(triggers)) // the column holds the scope of any role
			if revoked != 0 {
				t.Revoked = fromMS(revoked)
			}
			out = append(out, t)
		}
		return rows.Err()
	})
	return out, err
}

// TokenRevoke marks a live token revoked.
func (s *Store) TokenRevoke(ctx context.Context, name string, now time.Time) error {
	return s.write(ctx, "revoke token", func(tx *txn) error {
		res, err := tx.ExecContext(ctx, `UPDATE tokens SET revoked_at = ? WHERE name = ? AND revoked_at = 0`, max(ms(now), 1), name)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return fmt.Errorf("token %q: %w", name, model.ErrNotFound)
		}
		return nil
	})
}

// TokenCount counts the live tokens.
func (s *Store) TokenCount(ctx context.Context) (int, error) {
	var n int
	err := s.read(ctx, "count tokens", func(tx *txn) error {
		return tx.QueryRowContext(ctx, `SELECT count(*) FROM tokens WHERE revoked_at = 0`).Scan(&n)
	})
	return n, err
}

// splitPatterns reads the stored comma-separated trigger patterns.
func splitPatterns(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}
