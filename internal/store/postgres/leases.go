package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/dpe-engine/dpe/internal/model"
)

// acquireLeaseSQL takes the lease in one statement when it is free (never
// held, released, or expired: until before now) or already the holder's.
// A renewal keeps the epoch; a change of holder increments it, so work
// fenced by the old epoch is refused. The DO UPDATE ... WHERE leaves a lease
// held by another untouched and returns no row.
const acquireLeaseSQL = `
INSERT INTO leases AS l (name, holder, epoch, until)
VALUES ($1, $2, 1, $3)
ON CONFLICT (name) DO UPDATE SET
	epoch  = CASE WHEN l.holder = excluded.holder THEN l.epoch ELSE l.epoch + 1 END,
	holder = excluded.holder,
	until  = excluded.until
WHERE l.holder = excluded.holder OR l.holder = '' OR l.until < $4
RETURNING name, holder, epoch, until`

// LeaseAcquire takes the lease when it is free, expired or already the
// holder's, until now+ttl. Held by another: model.ErrConflict, with the
// current lease returned. A lease is held through its Until instant.
func (s *Store) LeaseAcquire(ctx context.Context, name, holder string, ttl time.Duration, now time.Time) (model.Lease, error) {
	const op = "acquire lease"
	if name == "" || holder == "" {
		return model.Lease{}, s.wrap(op, model.Invalid("lease", "name and holder are required"))
	}
	l, err := scanLease(s.pool.QueryRow(ctx, acquireLeaseSQL, name, holder, now.Add(ttl), now))
	if err == nil {
		return l, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return model.Lease{}, s.wrap(op, err)
	}
	// Held by another. Read it back for the caller; if it was released in
	// the meantime, report the conflict all the same: the caller retries.
	cur, err := scanLease(s.pool.QueryRow(ctx, `SELECT name, holder, epoch, until FROM leases WHERE name = $1`, name))
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return model.Lease{}, s.wrap(op, err)
	}
	return cur, fmt.Errorf("postgres: %s: %s is held by %s: %w", op, name, cur.Holder, model.ErrConflict)
}

// LeaseRelease frees the lease if holder holds it (no-op otherwise). The row
// stays with an empty holder, so the epoch keeps growing across holders.
func (s *Store) LeaseRelease(ctx context.Context, name, holder string) error {
	_, err := s.pool.Exec(ctx, `
		UPDATE leases SET holder = ''
		WHERE name = $1 AND holder = $2 AND holder <> ''`, name, holder)
	return s.wrap("release lease", err)
}

// LeaseList returns leases whose name starts with prefix, by name, released
// ones included (with an empty Holder).
func (s *Store) LeaseList(ctx context.Context, prefix string) ([]model.Lease, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT name, holder, epoch, until FROM leases
		WHERE starts_with(name, $1)
		ORDER BY name`, prefix)
	if err != nil {
		return nil, s.wrap("list leases", err)
	}
	defer rows.Close()
	out := []model.Lease{}
	for rows.Next() {
		l, err := scanLease(rows)
		if err != nil {
			return nil, s.wrap("list leases", err)
		}
		out = append(out, l)
	}
	if err := rows.Err(); err != nil {
		return nil, s.wrap("list leases", err)
	}
	return out, nil
}

func scanLease(row pgx.Row) (model.Lease, error) {
	var l model.Lease
	if err := row.Scan(&l.Name, &l.Holder, &l.Epoch, &l.Until); err != nil {
		return model.Lease{}, err
	}
	l.Until = l.Until.UTC()
	return l, nil
}
