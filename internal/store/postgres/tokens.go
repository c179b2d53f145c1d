package postgres

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/dpe-engine/dpe/internal/model"
	"github.com/dpe-engine/dpe/internal/store"
)

var _ store.TokenStore = (*Store)(nil)

// TokenCreate stores a token; a name in use (even revoked) is a conflict.
func (s *Store) TokenCreate(ctx context.Context, t model.Token) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO tokens (name, role, triggers, hash, created_at) VALUES ($1, $2, $3, $4, $5)`,
		t.Name, string(t.Role), strings.Join(t.Scope(), ","), t.Hash, t.Created)
	return s.wrap("create token", err)
}

// TokenByHash returns the live token with the hash.
func (s *Store) TokenByHash(ctx context.Context, hash []byte) (model.Token, error) {
	var t model.Token
	var role, triggers string
	err := s.pool.QueryRow(ctx, `SELECT name, role, triggers, hash, created_at FROM tokens WHERE hash = $1 AND revoked_at IS NULL`, hash).
		Scan(&t.Name, &role, &triggers, &t.Hash, &t.Created)
	t.Role, t.Created = model.Role(role), t.Created.UTC()
	t.SetScope(splitPatterns(triggers)) // the column holds the scope of any role
	return t, s.wrap("get token", err)
}

// TokenList returns every token by name.
func (s *Store) TokenList(ctx context.Context) ([]model.Token, error) {
	rows, err := s.pool.Query(ctx, `SELECT name, role, triggers, created_at, revoked_at FROM tokens ORDER BY name`)
	if err != nil {
		return nil, s.wrap("list tokens", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (model.Token, error) {
		var t model.Token
		var role, triggers string
		var revoked *time.Time
		err := r.Scan(&t.Name, &role, &triggers, &t.Created, &revoked)
		t.Role, t.Created = model.Role(role), t.Created.UTC()
		t.SetScope(splitPatterns(triggers)) // the column holds the scope of any role
		if revoked != nil {
			t.Revoked = revoked.UTC()
		}
		return t, err
	})
	return out, s.wrap("list tokens", err)
}

// TokenRevoke marks a live token revoked.
func (s *Store) TokenRevoke(ctx context.Context, name string, now time.Time) error {
	tag, err := s.pool.Exec(ctx, `UPDATE tokens SET revoked_at = $2 WHERE name = $1 AND revoked_at IS NULL`, name, now)
	if err != nil {
		return s.wrap("revoke token", err)
	}
	if tag.RowsAffected() == 0 {
		return s.wrap("revoke token", fmt.Errorf("token %q: %w", name, model.ErrNotFound))
	}
	return nil
}

// TokenCount counts the live tokens.
func (s *Store) TokenCount(ctx context.Context) (int, error) {
	var n int
	err := s.pool.QueryRow(ctx, `SELECT count(*) FROM tokens WHERE revoked_at IS NULL`).Scan(&n)
	return n, s.wrap("count tokens", err)
}

// splitPatterns reads the stored comma-separated trigger patterns.
func splitPatterns(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}
