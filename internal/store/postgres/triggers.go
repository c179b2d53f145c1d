package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/dpe-engine/dpe/internal/model"
	"github.com/dpe-engine/dpe/internal/store"
)

var _ store.TriggerStore = (*Store)(nil)

// triggerCols is the select list of a trigger row, in scanTrigger's order.
const triggerCols = `name, kind, state, mirrored, last_event_at, last_error, error_at, updated_at`

// scanTrigger reads one row of triggerCols.
func scanTrigger(row pgx.Row) (model.Trigger, error) {
	var (
		t       model.Trigger
		state   []byte
		lastEv  *time.Time
		errorAt *time.Time
	)
	if err := row.Scan(&t.Name, &t.Kind, &state, &t.Mirrored, &lastEv, &t.LastError, &errorAt, &t.UpdatedAt); err != nil {
		return model.Trigger{}, err
	}
	t.State = json.RawMessage(state)
	t.LastEventAt = utcPtr(lastEv)
	t.ErrorAt = utcPtr(errorAt)
	t.UpdatedAt = t.UpdatedAt.UTC()
	return t, nil
}

// TriggerDo runs fn in one read-committed transaction holding the row lock
// of the trigger (created with kind on first use), so the copies of a
// trigger on every server sharing the database take turns. fn's error rolls
// everything back and is returned as fn gave it; store.ErrRollback rolls
// back and returns nil. A commit sets UpdatedAt to now.
//
// A transaction the server aborted to break a deadlock (instance creates of
// two triggers taking concurrency-key locks in opposite orders) is run
// again from the start, fn included: fn must be safe to run more than once.
func (s *Store) TriggerDo(ctx context.Context, name, kind string, now time.Time, fn func(tx store.TriggerTx) error) error {
	const op = "trigger"
	if name == "" {
		return s.wrap(op, model.Invalid("name", "required"))
	}
	var fnErr error // fn's error in the last attempt, returned unwrapped
	err := s.retry(ctx, func() error {
		fnErr = nil
		return s.runTx(ctx, pgx.TxOptions{}, func(tx pgx.Tx) error {
			t, err := lockTrigger(ctx, tx, name, kind, now)
			if err != nil {
				return err
			}
			x := newTriggerTx(ctx, s, tx, t, now)
			if err := fn(x); err != nil {
				fnErr = err
				return err
			}
			return x.finish()
		})
	})
	switch {
	case err == nil, errors.Is(err, store.ErrRollback):
		return nil
	case fnErr != nil:
		// The TriggerTx methods wrapped and translated their own errors;
		// anything else is the caller's and stays as it is.
		return fnErr
	}
	return s.wrap(op, err)
}

// lockTrigger creates the trigger's row unless it exists and locks it,
// returning it as it is then. One round trip: both statements go in one
// batch, each with its own snapshot (read committed), so the SELECT sees a
// row a concurrent first use committed while the INSERT waited for it.
//
// Mirrored comes from the row, not from a count taken here: a count in the
// same statement as FOR UPDATE would be read in the snapshot from before
// the lock wait, i.e. before the previous holder's changes.
func lockTrigger(ctx context.Context, tx pgx.Tx, name, kind string, now time.Time) (model.Trigger, error) {
	b := &pgx.Batch{}
	b.Queue(`INSERT INTO triggers (name, kind, updated_at) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING`,
		name, kind, now)
	b.Queue(`SELECT `+triggerCols+` FROM triggers WHERE name = $1 FOR UPDATE`, name)
	br := tx.SendBatch(ctx, b)
	if _, err := br.Exec(); err != nil {
		_ = br.Close()
		return model.Trigger{}, err
	}
	t, err := scanTrigger(br.QueryRow())
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	return t, err
}

// TriggerGet returns one trigger, or model.ErrNotFound before its first
// TriggerDo or TriggerSetError.
func (s *Store) TriggerGet(ctx context.Context, name string) (model.Trigger, error) {
	t, err := scanTrigger(s.pool.QueryRow(ctx, `SELECT `+triggerCols+` FROM triggers WHERE name = $1`, name))
	if err != nil {
		return model.Trigger{}, s.wrap("trigger: get "+name, err)
	}
	return t, nil
}

// TriggerList returns every trigger by name (byte order). Active is left
// empty: standby leases are the lease service's business.
func (s *Store) TriggerList(ctx context.Context) ([]model.Trigger, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+triggerCols+` FROM triggers ORDER BY name`)
	if err != nil {
		return nil, s.wrap("trigger: list", err)
	}
	defer rows.Close()
	out := []model.Trigger{}
	for rows.Next() {
		t, err := scanTrigger(rows)
		if err != nil {
			return nil, s.wrap("trigger: list", err)
		}
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, s.wrap("trigger: list", err)
	}
	return out, nil
}

// triggerSetErrorSQL records or clears (an empty $3) a trigger's error,
// creating the row with kind $2 on first use. It waits for the row lock of
// a running TriggerDo, which never writes these columns, so neither
// overwrites the other.
const triggerSetErrorSQL = `
INSERT INTO triggers (name, kind, last_error, error_at, updated_at)
VALUES ($1, $2, $3, CASE WHEN $3 = '' THEN NULL ELSE $4::timestamptz END, $4)
ON CONFLICT (name) DO UPDATE SET
	last_error = excluded.last_error,
	error_at   = excluded.error_at,
	updated_at = excluded.updated_at`

// TriggerSetError records msg as the trigger's error at now, or clears the
// error when msg is "". UpdatedAt moves to now either way.
func (s *Store) TriggerSetError(ctx context.Context, name, kind, msg string, now time.Time) error {
	const op = "trigger: set error"
	if name == "" {
		return s.wrap(op, model.Invalid("name", "required"))
	}
	return s.wrap(op, s.retry(ctx, func() error {
		_, err := s.pool.Exec(ctx, triggerSetErrorSQL, name, kind, msg, now)
		return err
	}))
}
