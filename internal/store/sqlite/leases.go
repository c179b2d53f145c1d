package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/dpe-engine/dpe/internal/model"
)

// LeaseAcquire takes or renews a named lease. A lease is held while
// now <= Until (the same boundary as job leases, which expire strictly
// before now). A released lease keeps its row (holder ”) so that the next
// holder still gets a higher epoch.
func (s *Store) LeaseAcquire(ctx context.Context, name, holder string, ttl time.Duration, now time.Time) (model.Lease, error) {
	l := model.Lease{Name: name, Holder: holder, Until: fromMS(ms(now.Add(ttl)))}
	var held model.Lease
	err := s.write(ctx, "acquire lease", func(tx *txn) error {
		cur := model.Lease{Name: name}
		var until int64
		err := tx.QueryRowContext(ctx, `SELECT holder, epoch, until_at FROM leases WHERE name = ?`, name).
			Scan(&cur.Holder, &cur.Epoch, &until)
		cur.Until = fromMS(until)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			l.Epoch = 1
			_, err = tx.ExecContext(ctx, `INSERT INTO leases (name, holder, epoch, until_at) VALUES (?, ?, ?, ?)`,
				name, holder, l.Epoch, ms(l.Until))
			return err
		case err != nil:
			return err
		case cur.Holder != "" && cur.Holder == holder:
			l.Epoch = cur.Epoch // renewal
		case cur.Holder != "" && ms(now) <= until:
			held = cur
			return fmt.Errorf("lease %q held by %s until %s: %w", name, cur.Holder, cur.Until.Format(time.RFC3339Nano), model.ErrConflict)
		default:
			l.Epoch = cur.Epoch + 1 // free or expired: a new holder
		}
		_, err = tx.ExecContext(ctx, `UPDATE leases SET holder = ?, epoch = ?, until_at = ? WHERE name = ?`,
			holder, l.Epoch, ms(l.Until), name)
		return err
	})
	if err != nil {
		return held, err
	}
	return l, nil
}

// LeaseRelease frees the lease if holder holds it.
func (s *Store) LeaseRelease(ctx context.Context, name, holder string) error {
	return s.write(ctx, "release lease", func(tx *txn) error {
		_, err := tx.ExecContext(ctx, `UPDATE leases SET holder = '', until_at = 0 WHERE name = ? AND holder = ? AND holder <> ''`,
			name, holder)
		return err
	})
}

// LeaseList returns the leases whose name starts with prefix, by name,
// released ones included (Holder empty).
func (s *Store) LeaseList(ctx context.Context, prefix string) ([]model.Lease, error) {
	out := []model.Lease{}
	err := s.read(ctx, "list leases", func(tx *txn) error {
		// substr, not LIKE or GLOB: the prefix is compared as plain text,
		// so '%', '_' or '*' in it match only themselves.
		rows, err := tx.QueryContext(ctx, `
			SELECT name, holder, epoch, until_at FROM leases
			WHERE substr(name, 1, length(?1)) = ?1
			ORDER BY name`, prefix)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var (
				l     model.Lease
				until int64
			)
			if err := rows.Scan(&l.Name, &l.Holder, &l.Epoch, &until); err != nil {
				return err
			}
			l.Until = fromMS(until)
			out = append(out, l)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
