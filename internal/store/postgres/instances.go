package postgres

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/dpe-engine/dpe/internal/model"
	"github.com/dpe-engine/dpe/internal/store"
)

// InstanceCreate creates a pending instance, due at once (WakeAt = now), or
// returns the existing instance of the same name (existing true). With
// policy skip, a live instance of the same concurrency key is
// model.ErrConflict and nothing is created; with policy queue the instance
// is created and claims pass it over while an older live instance of its
// key exists.
//
// Version 0 takes the template's latest version when the template exists
// (the store does not insist that it does: validation is the service's).
// A spec without a name gets template-<random>; empty Args are {}; the
// policy is stored as given ("" behaves as allow).
func (s *Store) InstanceCreate(ctx context.Context, spec model.InstanceSpec, now time.Time) (model.Instance, bool, error) {
	const op = "create instance"
	spec, err := normalizeSpec(spec, "")
	if err != nil {
		return model.Instance{}, false, s.wrap(op, err)
	}
	var (
		out      model.Instance
		existing bool
	)
	err = s.tx(ctx, op, func(tx pgx.Tx) error {
		var err error
		out, existing, err = createInstance(ctx, tx, spec, now)
		if err == nil && !existing {
			err = notifyInstances(ctx, tx)
		}
		return err
	})
	if err != nil {
		return model.Instance{}, false, err
	}
	return out, existing, nil
}

// normalizeSpec checks a spec and fills its defaults; field prefixes the
// field names of errors ("children[2]." in an advance).
func normalizeSpec(spec model.InstanceSpec, field string) (model.InstanceSpec, error) {
	if len(spec.Args) == 0 {
		spec.Args = json.RawMessage(`{}`)
	}
	switch {
	case spec.Template == "":
		return spec, model.Invalid(field+"template", "required")
	case spec.Version < 0:
		return spec, model.Invalid(field+"version", "must not be negative")
	case !json.Valid(spec.Args):
		return spec, model.Invalid(field+"args", "not valid JSON")
	case spec.Priority > model.MaxPriority || spec.Priority < -model.MaxPriority:
		return spec, model.Invalid(field+"priority", "must be within ±%d", model.MaxPriority)
	}
	switch spec.ConcurrencyPolicy {
	case "", model.ConcurrencyAllow, model.ConcurrencySkip, model.ConcurrencyQueue:
		// Stored as given; "" behaves as allow.
	default:
		return spec, model.Invalid(field+"concurrency_policy", "unknown policy %q (want allow, skip or queue)", spec.ConcurrencyPolicy)
	}
	if spec.Name == "" {
		var b [6]byte
		_, _ = rand.Read(b[:])
		spec.Name = spec.Template + "-" + hex.EncodeToString(b[:])
	}
	return spec, nil
}

// insertInstanceSQL creates an instance unless its name exists. ON
// CONFLICT (name) DO NOTHING waits for a concurrent transaction inserting
// the same name and then skips, so concurrent creates of one name make
// exactly one instance; the loser reads it back.
var insertInstanceSQL = `
INSERT INTO instances (name, template, version, args, priority, state,
	concurrency_key, concurrency_policy, parent_id, parent_step, trigger,
	wake_at, created_at, updated_at)
VALUES ($1, $2, $3, $4::json, $5, 'pending', $6, $7, NULLIF($8::int8, 0), $9, $11, $10, $10, $10)
ON CONFLICT (name) DO NOTHING
RETURNING ` + instanceCols

// createInstance is InstanceCreate inside tx (also used for an advance's
// children); spec is normalised. It does not notify.
func createInstance(ctx context.Context, tx pgx.Tx, spec model.InstanceSpec, now time.Time) (model.Instance, bool, error) {
	// Shared: many creates of one template run side by side, but not while
	// TemplateDelete (exclusive) checks for live instances of it.
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock_shared($1, hashtext($2))`, lockTemplate, spec.Template); err != nil {
		return model.Instance{}, false, err
	}
	if spec.ConcurrencyKey != "" {
		// Every create with a key takes its turn, whatever its policy: a
		// skip-start must see any instance of the key another start is
		// creating right now.
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, hashtext($2))`, lockConcurrencyKey, spec.ConcurrencyKey); err != nil {
			return model.Instance{}, false, err
		}
	}
	// The name first: a repeated start returns its instance even when the
	// skip rule would now refuse it (the live instance is that one).
	in, err := scanInstance(tx.QueryRow(ctx, `SELECT `+instanceCols+` FROM instances WHERE name = $1`, spec.Name))
	if err == nil {
		return in, true, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return model.Instance{}, false, err
	}
	if spec.ConcurrencyPolicy == model.ConcurrencySkip && spec.ConcurrencyKey != "" {
		var busy bool
		err := tx.QueryRow(ctx, `
			SELECT EXISTS (SELECT 1 FROM instances
			               WHERE concurrency_key = $1 AND concurrency_key <> '' AND state IN `+liveStates+`)`,
			spec.ConcurrencyKey).Scan(&busy)
		if err != nil {
			return model.Instance{}, false, err
		}
		if busy {
			return model.Instance{}, false, fmt.Errorf("an instance with concurrency key %q is not final (policy skip): %w",
				spec.ConcurrencyKey, model.ErrConflict)
		}
	}
	if spec.Version == 0 {
		var latest *int32
		err := tx.QueryRow(ctx, `SELECT max(version) FROM templates WHERE name = $1`, spec.Template).Scan(&latest)
		if err != nil {
			return model.Instance{}, false, err
		}
		if latest != nil {
			spec.Version = int(*latest)
		}
	}
	in, err = scanInstance(tx.QueryRow(ctx, insertInstanceSQL,
		spec.Name, spec.Template, spec.Version, string(spec.Args), spec.Priority,
		spec.ConcurrencyKey, spec.ConcurrencyPolicy, spec.ParentID, spec.ParentStep, now, spec.Trigger))
	if err == nil {
		return in, false, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return model.Instance{}, false, err
	}
	// Lost a race for the name to a concurrent create that has committed.
	in, err = scanInstance(tx.QueryRow(ctx, `SELECT `+instanceCols+` FROM instances WHERE name = $1`, spec.Name))
	if err != nil {
		return model.Instance{}, false, fmt.Errorf("instance %q neither created nor found: %w", spec.Name, err)
	}
	return in, true, nil
}

// InstanceCreateMany creates the instances in one transaction, in the
// order given. A spec refused by its concurrency key is found before
// createInstance writes anything, so it leaves the transaction usable.
func (s *Store) InstanceCreateMany(ctx context.Context, specs []model.InstanceSpec, now time.Time) ([]store.CreateResult, error) {
	const op = "create instances"
	out := make([]store.CreateResult, len(specs))
	normal := make([]model.InstanceSpec, len(specs))
	valid := make([]bool, len(specs))
	for i, spec := range specs {
		n, err := normalizeSpec(spec, "")
		if err != nil {
			out[i].Err = s.wrap(op, err)
			continue
		}
		normal[i], valid[i] = n, true
	}
	err := s.tx(ctx, op, func(tx pgx.Tx) error {
		created := false
		for i := range normal {
			if !valid[i] {
				continue
			}
			inst, existing, err := createInstance(ctx, tx, normal[i], now)
			switch {
			case errors.Is(err, model.ErrConflict):
				out[i] = store.CreateResult{Err: s.wrap(op, err)}
				continue
			case err != nil:
				return fmt.Errorf("%s: %w", normal[i].Name, err)
			}
			out[i] = store.CreateResult{Instance: inst, Existing: existing}
			created = created || !existing
		}
		if created {
			return notifyInstances(ctx, tx)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// InstanceGet returns one instance, or model.ErrNotFound.
func (s *Store) InstanceGet(ctx context.Context, id int64) (model.Instance, error) {
	in, err := scanInstance(s.pool.QueryRow(ctx, `SELECT `+instanceCols+` FROM instances WHERE id = $1`, id))
	if err != nil {
		return model.Instance{}, s.wrap("get instance", err)
	}
	return in, nil
}

// InstanceGetByName returns the instance of a name, or model.ErrNotFound.
func (s *Store) InstanceGetByName(ctx context.Context, name string) (model.Instance, error) {
	in, err := scanInstance(s.pool.QueryRow(ctx, `SELECT `+instanceCols+` FROM instances WHERE name = $1`, name))
	if err != nil {
		return model.Instance{}, s.wrap("get instance by name", err)
	}
	return in, nil
}

// InstanceSteps returns the step records of an instance, by path (byte
// order); model.ErrNotFound when the instance does not exist.
func (s *Store) InstanceSteps(ctx context.Context, id int64) ([]model.Step, error) {
	const op = "instance steps"
	out := []model.Step{}
	// REPEATABLE READ: the existence check and the steps from one snapshot
	// (a purge in between would otherwise read as "no steps").
	err := s.txOpts(ctx, op, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		out = out[:0]
		var found bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM instances WHERE id = $1)`, id).Scan(&found); err != nil {
			return err
		}
		if !found {
			return fmt.Errorf("instance %d: %w", id, model.ErrNotFound)
		}
		rows, err := tx.Query(ctx, `SELECT `+stepCols+` FROM steps WHERE instance_id = $1 ORDER BY path`, id)
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

// InstanceList returns the newest instances matching f first. Total counts
// the matches up to model.CountCap, ignoring After and Limit; a Limit of zero or less means
// defaultListLimit.
func (s *Store) InstanceList(ctx context.Context, f model.InstanceFilter) (model.Page[model.Instance], error) {
	// Built like JobList's: fixed fragments, numbered parameters.
	var (
		conds []string
		args  []any
	)
	add := func(cond string, arg any) {
		args = append(args, arg)
		conds = append(conds, fmt.Sprintf(cond, len(args)))
	}
	if len(f.States) > 0 {
		states := make([]string, len(f.States))
		for i, st := range f.States {
			states[i] = string(st)
		}
		add("state = ANY($%d::text[])", states)
	}
	if len(f.Templates) > 0 {
		add("template = ANY($%d::text[])", f.Templates)
	}
	if f.ParentID != 0 {
		add("parent_id = $%d", f.ParentID)
	}
	if f.Trigger != "" {
		add("trigger = $%d", f.Trigger)
	}
	if !f.CreatedAfter.IsZero() {
		add("created_at > $%d", f.CreatedAfter)
	}
	if !f.CreatedBefore.IsZero() {
		add("created_at < $%d", f.CreatedBefore)
	}
	countSQL := cappedCount(`SELECT 1 FROM instances` + whereClause(conds))
	countArgs := slices.Clone(args)
	if f.After > 0 {
		add("id < $%d", f.After)
	}
	limit := f.Limit
	if limit <= 0 {
		limit = defaultListLimit
	}
	args = append(args, limit)
	listSQL := `SELECT ` + instanceCols + ` FROM instances` + whereClause(conds) +
		fmt.Sprintf(` ORDER BY id DESC LIMIT $%d`, len(args))

	page := model.Page[model.Instance]{Items: []model.Instance{}}
	// REPEATABLE READ: the count and the page come from one snapshot.
	err := s.txOpts(ctx, "list instances", pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		var n int
		if err := tx.QueryRow(ctx, countSQL, countArgs...).Scan(&n); err != nil {
			return err
		}
		page.CappedTotal(n)
		rows, err := tx.Query(ctx, listSQL, args...)
		if err != nil {
			return err
		}
		items, err := collectInstances(rows)
		if err != nil {
			return err
		}
		page.Items = []model.Instance{}
		if items != nil {
			page.Items = items
		}
		return nil
	})
	if err != nil {
		return model.Page[model.Instance]{}, err
	}
	return page, nil
}
