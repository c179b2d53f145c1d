package postgres

import (
	"context"
	"errors"
	"math"
	"slices"

	"github.com/jackc/pgx/v5"

	"github.com/dpe-engine/dpe/internal/model"
)

// TypeEnsure registers type names; known ones are left as they are.
func (s *Store) TypeEnsure(ctx context.Context, names []string) error {
	names = uniqueNames(names)
	if len(names) == 0 {
		return nil
	}
	// Sorted names: concurrent inserts of overlapping sets wait on each
	// other's index entries in one order, so they cannot deadlock.
	_, err := s.pool.Exec(ctx, `
		INSERT INTO job_types (name)
		SELECT n FROM unnest($1::text[]) AS n ORDER BY n
		ON CONFLICT (name) DO NOTHING`, names)
	return s.wrap("ensure types", err)
}

// uniqueNames returns the non-empty names sorted without repeats.
func uniqueNames(names []string) []string {
	out := slices.DeleteFunc(slices.Clone(names), func(n string) bool { return n == "" })
	slices.Sort(out)
	return slices.Compact(out)
}

// checkLimit refuses limits no claim could apply.
func checkLimit(l model.TypeLimit) error {
	switch {
	case l.Type == "":
		return model.Invalid("type", "required")
	case l.MaxRunning < 0:
		return model.Invalid("max_running", "must not be negative")
	case l.Rate < 0 || math.IsNaN(l.Rate) || math.IsInf(l.Rate, 0):
		return model.Invalid("rate", "must be a non-negative number")
	case l.Burst < 0:
		return model.Invalid("burst", "must not be negative")
	}
	return nil
}

// putTypeSQL registers a type with its limits. The token bucket is kept,
// as on SQLite: setting a limit again grants no fresh burst (available
// caps the bucket at the new burst at the next claim).
const putTypeSQL = `
	INSERT INTO job_types (name, max_running, rate, burst)
	VALUES ($1, $2, $3, $4)
	ON CONFLICT (name) DO UPDATE SET
		max_running = excluded.max_running,
		rate        = excluded.rate,
		burst       = excluded.burst`

// TypePut registers a type and sets its cluster-wide limits.
func (s *Store) TypePut(ctx context.Context, l model.TypeLimit) error {
	if err := checkLimit(l); err != nil {
		return s.wrap("put type", err)
	}
	_, err := s.pool.Exec(ctx, putTypeSQL, l.Type, l.MaxRunning, l.Rate, l.Burst)
	return s.wrap("put type", err)
}

// TypeUpdate changes one type's limits in one transaction holding the
// type's row lock. A type not yet registered is inserted first (so there
// is a row to lock: two first updates cannot both start from nothing);
// fn's error rolls that insert back.
func (s *Store) TypeUpdate(ctx context.Context, name string, fn func(cur model.TypeLimit, exists bool) (model.TypeLimit, error)) (model.TypeLimit, error) {
	var out model.TypeLimit
	err := s.tx(ctx, "update type", func(tx pgx.Tx) error {
		var inserted bool
		err := tx.QueryRow(ctx, `INSERT INTO job_types (name) VALUES ($1) ON CONFLICT (name) DO NOTHING RETURNING true`, name).Scan(&inserted)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		cur := model.TypeLimit{Type: name}
		if err := tx.QueryRow(ctx, `SELECT max_running, rate, burst FROM job_types WHERE name = $1 FOR UPDATE`, name).
			Scan(&cur.MaxRunning, &cur.Rate, &cur.Burst); err != nil {
			return err
		}
		l, err := fn(cur, !inserted)
		if err != nil {
			return err
		}
		l.Type = name
		if err := checkLimit(l); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, putTypeSQL, l.Type, l.MaxRunning, l.Rate, l.Burst); err != nil {
			return err
		}
		out = l
		return nil
	})
	return out, err
}

// TypeList returns every registered type with its limits, by name.
func (s *Store) TypeList(ctx context.Context) ([]model.TypeLimit, error) {
	rows, err := s.pool.Query(ctx, `SELECT name, max_running, rate, burst FROM job_types ORDER BY name`)
	if err != nil {
		return nil, s.wrap("list types", err)
	}
	out := []model.TypeLimit{}
	var l model.TypeLimit
	_, err = pgx.ForEachRow(rows, []any{&l.Type, &l.MaxRunning, &l.Rate, &l.Burst}, func() error {
		out = append(out, l)
		return nil
	})
	if err != nil {
		return nil, s.wrap("list types", err)
	}
	return out, nil
}
