package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/dpe-engine/dpe/internal/model"
	"github.com/dpe-engine/dpe/internal/store"
)

var _ store.WorkflowStore = (*Store)(nil)

// InstanceCreate creates an instance, or returns the one of the same name
// (existing true). Like JobInsert it needs no extra locking: the lookup and
// the insert run under the one writer (and BEGIN IMMEDIATE against other
// processes); the UNIQUE name is the backstop.
func (s *Store) InstanceCreate(ctx context.Context, spec model.InstanceSpec, now time.Time) (model.Instance, bool, error) {
	var (
		out      model.Instance
		existing bool
	)
	err := s.write(ctx, "create instance", func(tx *txn) error {
		var err error
		out, existing, err = createInstance(ctx, tx, spec, now)
		return err
	})
	if err != nil {
		return model.Instance{}, false, err
	}
	return out, existing, nil
}

// createInstance creates one instance or finds the one holding its name.
// The new instance is pending and due at once. Version 0 takes the latest
// stored version of the template, so that an instance never changes
// version under its worker; with no template stored it stays 0 (the
// service checks templates, the store does not).
// spec.Trigger is stored as given: TriggerTx.InstanceCreate sets it, and
// ActiveInstances counts by it.
func createInstance(ctx context.Context, tx *txn, spec model.InstanceSpec, now time.Time) (model.Instance, bool, error) {
	in, err := scanInstance(tx.QueryRowContext(ctx, `SELECT `+instCols+` FROM instances WHERE name = ?`, spec.Name))
	switch {
	case err == nil:
		return in, true, nil
	case !errors.Is(err, sql.ErrNoRows):
		return model.Instance{}, false, err
	}
	version := spec.Version
	if version == 0 {
		if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM templates WHERE name = ?`,
			spec.Template).Scan(&version); err != nil {
			return model.Instance{}, false, err
		}
	}
	if spec.ConcurrencyPolicy == model.ConcurrencySkip && spec.ConcurrencyKey != "" {
		var (
			id   int64
			name string
		)
		err := tx.QueryRowContext(ctx, `SELECT id, name FROM instances
			WHERE concurrency_key = ? AND state IN `+liveStates+` LIMIT 1`, spec.ConcurrencyKey).Scan(&id, &name)
		switch {
		case err == nil:
			return model.Instance{}, false, fmt.Errorf("instance %s: instance %d (%s) of concurrency key %q is not finished: %w",
				spec.Name, id, name, spec.ConcurrencyKey, model.ErrConflict)
		case !errors.Is(err, sql.ErrNoRows):
			return model.Instance{}, false, err
		}
	}
	args := string(spec.Args)
	if len(spec.Args) == 0 {
		args = "{}"
	}
	in, err = scanInstance(tx.QueryRowContext(ctx, `
		INSERT INTO instances (name, template, version, args, priority, state, concurrency_key,
			concurrency_policy, parent_id, parent_step, "trigger", wake_at, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, 'pending', ?, ?, ?, ?, ?, ?, ?, ?)
		RETURNING `+instCols,
		spec.Name, spec.Template, version, args, spec.Priority, spec.ConcurrencyKey, spec.ConcurrencyPolicy,
		spec.ParentID, spec.ParentStep, spec.Trigger, ms(now), ms(now), ms(now)))
	if err != nil {
		return model.Instance{}, false, err
	}
	return in, false, nil
}

// InstanceCreateMany creates the instances in one write transaction, in
// the order given. A spec refused by its concurrency key is found before
// createInstance writes anything.
func (s *Store) InstanceCreateMany(ctx context.Context, specs []model.InstanceSpec, now time.Time) ([]store.CreateResult, error) {
	const op = "create instances"
	out := make([]store.CreateResult, len(specs))
	err := s.write(ctx, op, func(tx *txn) error {
		for i, spec := range specs {
			inst, existing, err := createInstance(ctx, tx, spec, now)
			switch {
			case errors.Is(err, model.ErrConflict):
				out[i] = store.CreateResult{Err: s.fail(op, err)}
				continue
			case err != nil:
				return fmt.Errorf("%s: %w", spec.Name, err)
			}
			out[i] = store.CreateResult{Instance: inst, Existing: existing}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// InstanceGet returns one instance or model.ErrNotFound.
func (s *Store) InstanceGet(ctx context.Context, id int64) (model.Instance, error) {
	if s.closed.Load() {
		return model.Instance{}, s.fail("get instance", errClosed)
	}
	in, err := getInstance(ctx, s.r, id)
	if err != nil {
		return model.Instance{}, s.fail("get instance", fmt.Errorf("instance %d: %w", id, err))
	}
	return in, nil
}

// InstanceGetByName returns the instance of a name or model.ErrNotFound.
func (s *Store) InstanceGetByName(ctx context.Context, name string) (model.Instance, error) {
	if s.closed.Load() {
		return model.Instance{}, s.fail("get instance", errClosed)
	}
	in, err := scanInstance(s.r.QueryRowContext(ctx, `SELECT `+instCols+` FROM instances WHERE name = ?`, name))
	if err != nil {
		return model.Instance{}, s.fail("get instance", fmt.Errorf("instance %q: %w", name, err))
	}
	return in, nil
}

// InstanceSteps returns the step records of an instance by path in byte
// order, or model.ErrNotFound when the instance does not exist.
func (s *Store) InstanceSteps(ctx context.Context, id int64) ([]model.Step, error) {
	out := []model.Step{}
	err := s.read(ctx, "instance steps", func(tx *txn) error {
		var exists bool
		if err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM instances WHERE id = ?)`, id).Scan(&exists); err != nil {
			return err
		}
		if !exists {
			return fmt.Errorf("instance %d: %w", id, model.ErrNotFound)
		}
		// The primary key (instance_id, path) returns them in order.
		rows, err := tx.QueryContext(ctx, `SELECT `+stepCols+` FROM steps WHERE instance_id = ? ORDER BY path`, id)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			st, err := scanStep(rows)
			if err != nil {
				return err
			}
			out = append(out, st)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// InstanceList returns a page of instances, newest (highest id) first, and
// the number of instances matching the filter (up to model.CountCap) on
// every page. A zero Limit
// means defaultListLimit.
func (s *Store) InstanceList(ctx context.Context, f model.InstanceFilter) (model.Page[model.Instance], error) {
	where, args := instanceFilter(f)
	limit := f.Limit
	if limit <= 0 {
		limit = defaultListLimit
	}
	var page model.Page[model.Instance]
	err := s.read(ctx, "list instances", func(tx *txn) error {
		// Total ignores the cursor: it counts the whole result.
		var n int
		if err := tx.QueryRowContext(ctx, cappedCount(`SELECT 1 FROM instances WHERE `+where), args...).Scan(&n); err != nil {
			return err
		}
		page.CappedTotal(n)
		pageWhere, pageArgs := where, args
		if f.After > 0 {
			pageWhere += ` AND id < ?`
			pageArgs = append(pageArgs[:len(pageArgs):len(pageArgs)], f.After)
		}
		rows, err := tx.QueryContext(ctx, `SELECT `+instCols+` FROM instances WHERE `+pageWhere+
			` ORDER BY id DESC LIMIT ?`, append(pageArgs, limit)...)
		if err != nil {
			return err
		}
		page.Items, err = scanInstances(rows)
		return err
	})
	if err != nil {
		return model.Page[model.Instance]{}, err
	}
	return page, nil
}

// instanceFilter turns a filter (without its cursor) into a WHERE clause.
// Only placeholders are spliced in, never values.
func instanceFilter(f model.InstanceFilter) (string, []any) {
	conds := []string{"1 = 1"}
	var args []any
	if len(f.States) > 0 {
		conds = append(conds, "state IN ("+placeholders(len(f.States))+")")
		for _, st := range f.States {
			args = append(args, string(st))
		}
	}
	if len(f.Templates) > 0 {
		conds = append(conds, "template IN ("+placeholders(len(f.Templates))+")")
		for _, t := range f.Templates {
			args = append(args, t)
		}
	}
	if f.ParentID != 0 {
		// Repeats the predicate of the partial index instances_parent.
		conds = append(conds, "parent_id = ? AND parent_id <> 0")
		args = append(args, f.ParentID)
	}
	if f.Trigger != "" {
		conds = append(conds, `"trigger" = ?`)
		args = append(args, f.Trigger)
	}
	if !f.CreatedAfter.IsZero() {
		conds = append(conds, "created_at > ?")
		args = append(args, ms(f.CreatedAfter))
	}
	if !f.CreatedBefore.IsZero() {
		conds = append(conds, "created_at < ?")
		args = append(args, ms(f.CreatedBefore))
	}
	return strings.Join(conds, " AND "), args
}

// placeholders returns n comma-separated "?".
func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?, ", n), ", ")
}
