package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/dpe-engine/dpe/internal/model"
)

// InstanceCancel asks a live instance to stop and wakes it, so that its
// worker (or any, once the lease is gone) decides the cancel at once. A
// canceled instance is returned unchanged; a succeeded or failed one is
// model.ErrConflict.
func (s *Store) InstanceCancel(ctx context.Context, id int64, now time.Time) (model.Instance, error) {
	var out model.Instance
	err := s.write(ctx, "cancel instance", func(tx *txn) error {
		var err error
		out, err = cancelInstance(ctx, tx, id, now)
		return err
	})
	if err != nil {
		return model.Instance{}, err
	}
	return out, nil
}

// cancelInstance is InstanceCancel within tx.
func cancelInstance(ctx context.Context, tx *txn, id int64, now time.Time) (model.Instance, error) {
	in, err := scanInstance(tx.QueryRowContext(ctx, `
		UPDATE instances SET cancel_asked = 1, wake_at = ?, wake_seq = wake_seq + 1, updated_at = ?
		WHERE id = ? AND state IN `+liveStates+`
		RETURNING `+instCols, ms(now), ms(now), id))
	if !errors.Is(err, sql.ErrNoRows) {
		return in, err
	}
	in, err = getInstance(ctx, tx, id) // missing or final?
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return model.Instance{}, fmt.Errorf("instance %d: %w", id, model.ErrNotFound)
	case err != nil:
		return model.Instance{}, err
	case in.State == model.InstanceCanceled:
		return in, nil
	}
	return model.Instance{}, fmt.Errorf("instance %d is %s: %w", id, in.State, model.ErrConflict)
}

// InstanceSetPriority changes the priority of a live instance and of its
// queued jobs in one transaction; running jobs keep theirs (they hold a
// processor already). A final instance is model.ErrConflict.
func (s *Store) InstanceSetPriority(ctx context.Context, id int64, priority int, now time.Time) (model.Instance, error) {
	var out model.Instance
	err := s.write(ctx, "set instance priority", func(tx *txn) error {
		var err error
		out, err = scanInstance(tx.QueryRowContext(ctx, `
			UPDATE instances SET priority = ?, updated_at = ?
			WHERE id = ? AND state IN `+liveStates+`
			RETURNING `+instCols, priority, ms(now), id))
		if errors.Is(err, sql.ErrNoRows) {
			in, err := getInstance(ctx, tx, id) // missing or final?
			if err != nil {
				return fmt.Errorf("instance %d: %w", id, err)
			}
			return fmt.Errorf("instance %d is %s: %w", id, in.State, model.ErrConflict)
		}
		if err != nil {
			return err
		}
		// instance_id <> 0 repeats the predicate of the partial index
		// jobs_instance, which SQLite needs to see to use it.
		_, err = tx.ExecContext(ctx, `
			UPDATE jobs SET priority = ?, updated_at = ?
			WHERE instance_id = ? AND instance_id <> 0 AND state = 'queued' AND priority <> ?`,
			priority, ms(now), id, priority)
		return err
	})
	if err != nil {
		return model.Instance{}, err
	}
	return out, nil
}

// InstancePurge deletes final instances that finished before the time,
// with their steps (ON DELETE CASCADE) and every job of theirs, returning
// how many instances. The three statements see one snapshot: the
// transaction holds the write lock.
func (s *Store) InstancePurge(ctx context.Context, finishedBefore time.Time) (int, error) {
	var n int
	err := s.write(ctx, "purge instances", func(tx *txn) error {
		const old = `SELECT id FROM instances WHERE finished_at < ? AND state IN ` + finalStates
		if _, err := tx.ExecContext(ctx, `DELETE FROM jobs WHERE instance_id <> 0 AND instance_id IN (`+old+`)`,
			ms(finishedBefore)); err != nil {
			return fmt.Errorf("jobs: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM log_lines WHERE instance_id <> 0 AND instance_id IN (`+old+`)`,
			ms(finishedBefore)); err != nil {
			return fmt.Errorf("log lines: %w", err)
		}
		var err error
		n, err = execCount(ctx, tx, `DELETE FROM instances WHERE id IN (`+old+`)`, ms(finishedBefore))
		return err
	})
	return n, err
}
