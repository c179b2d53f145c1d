package sqlite

import (
	"context"
	"database/sql"
	"errors"

	"github.com/dpe-engine/dpe/internal/model"
)

// TypeEnsure registers type names, leaving known ones (and their limits)
// alone.
func (s *Store) TypeEnsure(ctx context.Context, names []string) error {
	if len(names) == 0 {
		return nil
	}
	return s.write(ctx, "ensure types", func(tx *txn) error {
		return ensureTypes(ctx, tx, names)
	})
}

// ensureTypes inserts the names not yet known.
func ensureTypes(ctx context.Context, tx *txn, names []string) error {
	for _, name := range names {
		if _, err := tx.ExecContext(ctx, `INSERT INTO types (name) VALUES (?) ON CONFLICT (name) DO NOTHING`, name); err != nil {
			return err
		}
	}
	return nil
}

// TypePut registers a type and sets its limits. The token bucket is kept:
// re-applying a limit must not grant a fresh burst (the refill is capped
// by the new burst at the next claim anyway).
func (s *Store) TypePut(ctx context.Context, l model.TypeLimit) error {
	return s.write(ctx, "put type", func(tx *txn) error { return putType(ctx, tx, l) })
}

// putType writes l, keeping the type's token bucket.
func putType(ctx context.Context, tx *txn, l model.TypeLimit) error {
	_, err := tx.ExecContext(ctx, `
		INSERT INTO types (name, max_running, rate, burst) VALUES (?, ?, ?, ?)
		ON CONFLICT (name) DO UPDATE SET
			max_running = excluded.max_running, rate = excluded.rate, burst = excluded.burst`,
		l.Type, l.MaxRunning, l.Rate, l.Burst)
	return err
}

// TypeUpdate changes one type's limits in one write transaction (writes
// are serialized on the writer connection, so no other change of the type
// comes between the read and the write).
func (s *Store) TypeUpdate(ctx context.Context, name string, fn func(cur model.TypeLimit, exists bool) (model.TypeLimit, error)) (model.TypeLimit, error) {
	var out model.TypeLimit
	err := s.write(ctx, "update type", func(tx *txn) error {
		cur := model.TypeLimit{Type: name}
		err := tx.QueryRowContext(ctx, `SELECT max_running, rate, burst FROM types WHERE name = ?`, name).
			Scan(&cur.MaxRunning, &cur.Rate, &cur.Burst)
		exists := err == nil
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		l, err := fn(cur, exists)
		if err != nil {
			return err
		}
		l.Type = name
		if err := putType(ctx, tx, l); err != nil {
			return err
		}
		out = l
		return nil
	})
	return out, err
}

// TypeList returns every registered type with its limits, by name.
func (s *Store) TypeList(ctx context.Context) ([]model.TypeLimit, error) {
	out := []model.TypeLimit{}
	err := s.read(ctx, "list types", func(tx *txn) error {
		rows, err := tx.QueryContext(ctx, `SELECT name, max_running, rate, burst FROM types ORDER BY name`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var l model.TypeLimit
			if err := rows.Scan(&l.Type, &l.MaxRunning, &l.Rate, &l.Burst); err != nil {
				return err
			}
			out = append(out, l)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
