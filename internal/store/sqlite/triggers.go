package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/dpe-engine/dpe/internal/model"
	"github.com/dpe-engine/dpe/internal/store"
)

var _ store.TriggerStore = (*Store)(nil)

// triggerCols lists the triggers columns (table alias t) in the order
// scanTrigger reads them; the mirror count follows them in every query.
const triggerCols = `t.name, t.kind, t.state, t.last_event_at, t.last_error, t.error_at, t.updated_at`

// getTriggerSQL reads one trigger with its mirror count. A correlated
// count is one index range of mirror's primary key.
const getTriggerSQL = `SELECT ` + triggerCols + `,
	(SELECT COUNT(*) FROM mirror AS m WHERE m."trigger" = t.name)
	FROM triggers AS t WHERE t.name = ?`

// listTriggersSQL reads every trigger with its mirror count: one grouped
// count for all, not one count per trigger.
const listTriggersSQL = `SELECT ` + triggerCols + `, COALESCE(m.n, 0)
	FROM triggers AS t
	LEFT JOIN (SELECT "trigger", COUNT(*) AS n FROM mirror GROUP BY "trigger") AS m ON m."trigger" = t.name
	ORDER BY t.name`

// activeInstancesSQL counts the live instances of a trigger. The state
// term repeats the predicate of the partial index instances_trigger.
const activeInstancesSQL = `SELECT COUNT(*) FROM instances WHERE "trigger" = ? AND state IN ` + liveStates

// scanTrigger reads one row of triggerCols followed by the mirror count.
func scanTrigger(sc scanner) (model.Trigger, error) {
	var (
		tr             model.Trigger
		state          string
		event, errorAt sql.NullInt64
		updated        int64
	)
	if err := sc.Scan(&tr.Name, &tr.Kind, &state, &event, &tr.LastError, &errorAt, &updated, &tr.Mirrored); err != nil {
		return model.Trigger{}, err
	}
	tr.State = json.RawMessage(state)
	tr.LastEventAt = fromNullMS(event)
	tr.ErrorAt = fromNullMS(errorAt)
	tr.UpdatedAt = fromMS(updated)
	return tr, nil
}

// TriggerDo runs fn in one write transaction on the trigger's row, created
// with kind on first use. No row lock is needed: every write transaction
// of this process runs on the one writer connection, and BEGIN IMMEDIATE
// keeps other processes out until the commit, so concurrent calls for one
// trigger run one after the other and each sees the state the previous one
// committed.
//
// fn must not call other methods of s that write: they would wait for the
// writer connection fn's transaction holds. fn's error is returned as is
// (the errors of the TriggerTx methods are already wrapped); ErrRollback,
// wrapped or not, rolls back and returns nil. On commit the row's
// UpdatedAt is now.
func (s *Store) TriggerDo(ctx context.Context, name, kind string, now time.Time, fn func(tx store.TriggerTx) error) error {
	if s.closed.Load() {
		return s.fail("trigger", errClosed)
	}
	sqlTx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return s.fail("trigger", err)
	}
	tx := &txn{Tx: sqlTx, stmts: s.wstmts, detached: true}
	// Rolls back on every return but the commit, including a t.Fatal or a
	// panic in fn, so the writer connection is never left inside a
	// transaction.
	defer func() { _ = tx.Rollback() }()

	ttx := &triggerTx{s: s, ctx: ctx, tx: tx, name: name, now: now}
	if _, err := tx.ExecContext(ctx, `INSERT INTO triggers (name, kind, state, updated_at) VALUES (?, ?, '{}', ?)
		ON CONFLICT (name) DO NOTHING`, name, kind, ms(now)); err != nil {
		return s.fail("trigger", fmt.Errorf("%s: create: %w", name, err))
	}
	if ttx.trigger, err = scanTrigger(tx.QueryRowContext(ctx, getTriggerSQL, name)); err != nil {
		return s.fail("trigger", fmt.Errorf("%s: read: %w", name, err))
	}

	if err := fn(ttx); err != nil {
		if errors.Is(err, store.ErrRollback) {
			return nil // a dry run: the deferred rollback undoes it all
		}
		return err
	}
	if _, err := tx.ExecContext(ctx, `UPDATE triggers SET updated_at = ? WHERE name = ?`, ms(now), name); err != nil {
		return s.fail("trigger", fmt.Errorf("%s: %w", name, err))
	}
	if err := s.commit(tx); err != nil {
		return s.fail("trigger", fmt.Errorf("%s: commit: %w", name, err))
	}
	return nil
}

// TriggerGet returns one trigger with its mirror count, or
// model.ErrNotFound before its first use.
func (s *Store) TriggerGet(ctx context.Context, name string) (model.Trigger, error) {
	if s.closed.Load() {
		return model.Trigger{}, s.fail("trigger", errClosed)
	}
	tr, err := scanTrigger(s.r.QueryRowContext(ctx, getTriggerSQL, name))
	if err != nil {
		return model.Trigger{}, s.fail("trigger", fmt.Errorf("trigger %q: %w", name, err))
	}
	return tr, nil
}

// TriggerList returns every trigger by name (byte order), with mirror
// counts.
func (s *Store) TriggerList(ctx context.Context) ([]model.Trigger, error) {
	out := []model.Trigger{}
	err := s.read(ctx, "list triggers", func(tx *txn) error {
		rows, err := tx.QueryContext(ctx, listTriggersSQL)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			tr, err := scanTrigger(rows)
			if err != nil {
				return err
			}
			out = append(out, tr)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// TriggerSetError records msg as the trigger's error at now, or clears it
// when msg is "". A trigger not used yet gets its row (with kind), so that
// a watcher failing before its first observation still shows up; an
// existing row keeps its kind.
func (s *Store) TriggerSetError(ctx context.Context, name, kind, msg string, now time.Time) error {
	var errorAt any // NULL: no error
	if msg != "" {
		errorAt = ms(now)
	}
	return s.write(ctx, "trigger set error", func(tx *txn) error {
		_, err := tx.ExecContext(ctx, `
			INSERT INTO triggers (name, kind, state, last_error, error_at, updated_at) VALUES (?, ?, '{}', ?, ?, ?)
			ON CONFLICT (name) DO UPDATE SET last_error = excluded.last_error, error_at = excluded.error_at,
				updated_at = excluded.updated_at`,
			name, kind, msg, errorAt, ms(now))
		if err != nil {
			return fmt.Errorf("trigger %q: %w", name, err)
		}
		return nil
	})
}

// triggerTx is the store.TriggerTx of TriggerDo: the methods run on its
// write transaction, with TriggerDo's context and time.
type triggerTx struct {
	s       *Store
	ctx     context.Context
	tx      *txn
	name    string
	now     time.Time
	trigger model.Trigger // as read when TriggerDo began
}

// fail wraps an error of a TriggerTx method like every store error, so the
// service can match the model sentinels.
func (t *triggerTx) fail(op string, err error) error {
	if err == nil {
		return nil
	}
	return t.s.fail("trigger", fmt.Errorf("%s: %s: %w", t.name, op, err))
}

// Trigger returns the trigger's row as read when the transaction began.
// It does not follow SetState or the mirror methods.
func (t *triggerTx) Trigger() model.Trigger { return t.trigger }

// SetState replaces the trigger's state; empty stores {}.
func (t *triggerTx) SetState(state json.RawMessage) error {
	st := string(state)
	if len(state) == 0 {
		st = "{}"
	}
	_, err := t.tx.ExecContext(t.ctx, `UPDATE triggers SET state = ? WHERE name = ?`, st, t.name)
	return t.fail("set state", err)
}

// InstanceCreate creates an instance as InstanceStore.InstanceCreate does,
// in this transaction; createInstance stores spec.Trigger.
func (t *triggerTx) InstanceCreate(spec model.InstanceSpec) (model.Instance, bool, error) {
	in, existing, err := createInstance(t.ctx, t.tx, spec, t.now)
	if err != nil {
		return model.Instance{}, false, t.fail("create instance", err)
	}
	return in, existing, nil
}

// ActiveInstances counts the pending and running instances this trigger
// started, those of this transaction included.
func (t *triggerTx) ActiveInstances() (int, error) {
	var n int
	if err := t.tx.QueryRowContext(t.ctx, activeInstancesSQL, t.name).Scan(&n); err != nil {
		return 0, t.fail("active instances", err)
	}
	return n, nil
}
