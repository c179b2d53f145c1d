package postgres

import (
	"context"
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

// TypePut registers a type and sets its cluster-wide limits. Setting limits
// refills the type's token bucket.
func (s *Store) TypePut(ctx context.Context, l model.TypeLimit) error {
	switch {
	case l.Type == "":
		return s.wrap("put type", model.Invalid("type", "required"))
	case l.MaxRunning < 0:
		return s.wrap("put type", model.Invalid("max_running", "must not be negative"))
	case l.Rate < 0 || math.IsNaN(l.Rate) || math.IsInf(l.Rate, 0):
		return s.wrap("put type", model.Invalid("rate", "must be a non-negative number"))
	case l.Burst < 0:
		return s.wrap("put type", model.Invalid("burst", "must not be negative"))
	}
	_, err := s.pool.Exec(ctx, `
		INSERT INTO job_types (name, max_running, rate, burst)
		VALUES ($1, $2, $3, $4)
		ON CONFLICT (name) DO UPDATE SET
			max_running = excluded.max_running,
			rate        = excluded.rate,
			burst       = excluded.burst,
			tokens      = NULL,
			tokens_at   = NULL`,
		l.Type, l.MaxRunning, l.Rate, l.Burst)
	return s.wrap("put type", err)
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
