package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/dpe-engine/dpe/internal/model"
)

// Operator actions on instances: cancel, re-prioritise, purge.

// cancelInstanceSQL asks a live instance to stop and wakes it, so that its
// worker (or the next one) ends it at once.
var cancelInstanceSQL = `
WITH upd AS (
	UPDATE instances SET
		cancel_asked = true,
		wake_at      = $2,
		wake_seq     = wake_seq + 1,
		updated_at   = $2
	WHERE id = $1 AND state IN ` + liveStates + `
	RETURNING ` + instanceCols + `
), notified AS (
	` + notifyInstancesSQL + ` FROM upd
)
SELECT *, (SELECT count(*) FROM notified) FROM upd`

// InstanceCancel asks a live instance to stop and wakes it. A canceled
// instance is returned unchanged; a succeeded or failed one is
// model.ErrConflict; a missing one model.ErrNotFound.
func (s *Store) InstanceCancel(ctx context.Context, id int64, now time.Time) (model.Instance, error) {
	const op = "cancel instance"
	var notified int64
	in, err := scanInstance(s.pool.QueryRow(ctx, cancelInstanceSQL, id, now), &notified)
	if err == nil {
		return in, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return model.Instance{}, s.wrap(op, err)
	}
	// Not live: final states never change again, so this read is stable.
	in, err = s.InstanceGet(ctx, id)
	if err != nil {
		return model.Instance{}, s.wrap(op, err)
	}
	if in.State == model.InstanceCanceled {
		return in, nil
	}
	return model.Instance{}, fmt.Errorf("postgres: %s: instance %d is %s: %w", op, id, in.State, model.ErrConflict)
}

// InstanceSetPriority changes the priority of a live instance and of its
// queued jobs in one transaction; a final instance is model.ErrConflict.
func (s *Store) InstanceSetPriority(ctx context.Context, id int64, priority int, now time.Time) (model.Instance, error) {
	const op = "set instance priority"
	if priority > model.MaxPriority || priority < -model.MaxPriority {
		return model.Instance{}, s.wrap(op, model.Invalid("priority", "must be within ±%d", model.MaxPriority))
	}
	var out model.Instance
	err := s.tx(ctx, op, func(tx pgx.Tx) error {
		var state string
		if err := tx.QueryRow(ctx, `SELECT state FROM instances WHERE id = $1`, id).Scan(&state); err != nil {
			return err
		}
		if model.InstanceState(state).Final() {
			return fmt.Errorf("instance %d is %s: %w", id, state, model.ErrConflict)
		}
		// Jobs before the instance: the order in which the job methods
		// lock (a job, then the instance they wake), so neither waits on
		// the other in a cycle.
		if _, err := tx.Exec(ctx, `
			UPDATE jobs SET priority = $2, updated_at = $3
			WHERE instance_id = $1 AND state = 'queued' AND priority <> $2`, id, priority, now); err != nil {
			return err
		}
		var err error
		out, err = scanInstance(tx.QueryRow(ctx, `
			UPDATE instances SET priority = $2, updated_at = $3
			WHERE id = $1 AND state IN `+liveStates+`
			RETURNING `+instanceCols, id, priority, now))
		if errors.Is(err, pgx.ErrNoRows) {
			// It ended since the read above; the job update rolls back.
			return fmt.Errorf("instance %d is final: %w", id, model.ErrConflict)
		}
		return err
	})
	if err != nil {
		return model.Instance{}, err
	}
	return out, nil
}

// purgeInstancesSQL deletes final instances that finished before $1, with
// their jobs; their steps go by the foreign key's ON DELETE CASCADE.
const purgeInstancesSQL = `
WITH gone AS (
	DELETE FROM instances
	WHERE finished_at < $1 AND state IN ('succeeded', 'failed', 'canceled')
	RETURNING id
), jobs_gone AS (
	DELETE FROM jobs WHERE instance_id IN (SELECT id FROM gone)
), logs_gone AS (
	DELETE FROM log_lines WHERE instance_id IN (SELECT id FROM gone)
)
SELECT count(*) FROM gone`

// InstancePurge deletes final instances that finished before the time,
// with their steps and jobs, returning how many instances.
func (s *Store) InstancePurge(ctx context.Context, finishedBefore time.Time) (int, error) {
	const op = "purge instances"
	var n int
	err := s.tx(ctx, op, func(tx pgx.Tx) error {
		return tx.QueryRow(ctx, purgeInstancesSQL, finishedBefore).Scan(&n)
	})
	if err != nil {
		return 0, err
	}
	return n, nil
}
