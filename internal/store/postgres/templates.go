package postgres

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/dpe-engine/dpe/internal/model"
)

// templateCols is the select list of a template version, in scanTemplate's
// order.
const templateCols = `name, version, description, source, canonical, created_at`

func scanTemplate(row pgx.Row) (model.Template, error) {
	var t model.Template
	var canonical []byte
	if err := row.Scan(&t.Name, &t.Version, &t.Description, &t.Source, &canonical, &t.CreatedAt); err != nil {
		return model.Template{}, err
	}
	t.Canonical = canonical
	t.CreatedAt = t.CreatedAt.UTC()
	return t, nil
}

// lockTemplateName takes the transaction's exclusive lock on a template
// name. Why: "the next version" is read then written, and two imports of
// one name must not both take the same number; the primary key would
// refuse the second, but as an error rather than as the version the first
// one stored. An advisory lock also covers a name with no row yet.
func lockTemplateName(ctx context.Context, tx pgx.Tx, name string) error {
	_, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, hashtext($2))`, lockTemplate, name)
	return err
}

// TemplatePut stores a template. Version 0 takes the next version (1 for a
// new name). Content whose Canonical bytes equal those of the latest
// version is not stored again: that version is returned with created
// false. An explicit version that exists returns it (created false) when
// its content is the same, else model.ErrConflict; one that does not
// exist is stored as given.
func (s *Store) TemplatePut(ctx context.Context, t model.Template, now time.Time) (model.Template, bool, error) {
	const op = "put template"
	switch {
	case t.Name == "":
		return model.Template{}, false, s.wrap(op, model.Invalid("name", "required"))
	case t.Version < 0:
		return model.Template{}, false, s.wrap(op, model.Invalid("version", "must not be negative"))
	}
	var (
		out     model.Template
		created bool
	)
	err := s.tx(ctx, op, func(tx pgx.Tx) error {
		created = false // fn may run again after a deadlock
		if err := lockTemplateName(ctx, tx, t.Name); err != nil {
			return err
		}
		if t.Version > 0 {
			cur, err := scanTemplate(tx.QueryRow(ctx,
				`SELECT `+templateCols+` FROM templates WHERE name = $1 AND version = $2`, t.Name, t.Version))
			switch {
			case err == nil && bytes.Equal(cur.Canonical, t.Canonical):
				out = cur
				return nil
			case err == nil:
				return fmt.Errorf("template %s version %d exists with other content: %w", t.Name, t.Version, model.ErrConflict)
			case !errors.Is(err, pgx.ErrNoRows):
				return err
			}
		}
		latest, err := scanTemplate(tx.QueryRow(ctx,
			`SELECT `+templateCols+` FROM templates WHERE name = $1 ORDER BY version DESC LIMIT 1`, t.Name))
		switch {
		case err == nil && bytes.Equal(latest.Canonical, t.Canonical):
			out = latest
			return nil
		case err != nil && !errors.Is(err, pgx.ErrNoRows):
			return err
		}
		version := t.Version
		if version == 0 {
			version = latest.Version + 1 // 0 + 1 for a new name
		}
		canonical := t.Canonical
		if canonical == nil {
			canonical = []byte{} // NOT NULL: no content is empty content
		}
		out, err = scanTemplate(tx.QueryRow(ctx, `
			INSERT INTO templates (name, version, description, source, canonical, created_at)
			VALUES ($1, $2, $3, $4, $5, $6)
			RETURNING `+templateCols,
			t.Name, version, t.Description, t.Source, []byte(canonical), now))
		created = err == nil
		return err
	})
	if err != nil {
		return model.Template{}, false, err
	}
	return out, created, nil
}

// TemplateGet returns a version of a template (0: the latest), or
// model.ErrNotFound.
func (s *Store) TemplateGet(ctx context.Context, name string, version int) (model.Template, error) {
	const op = "get template"
	if version < 0 {
		return model.Template{}, s.wrap(op, model.Invalid("version", "must not be negative"))
	}
	// version 0 matches every row; ORDER BY ... LIMIT 1 then picks the
	// latest, through the primary key index backwards.
	t, err := scanTemplate(s.pool.QueryRow(ctx, `
		SELECT `+templateCols+` FROM templates
		WHERE name = $1 AND ($2 = 0 OR version = $2)
		ORDER BY version DESC LIMIT 1`, name, version))
	if err != nil {
		return model.Template{}, s.wrap(op, err)
	}
	return t, nil
}

// TemplateList returns the latest version of every template, by name.
func (s *Store) TemplateList(ctx context.Context) ([]model.Template, error) {
	const op = "list templates"
	rows, err := s.pool.Query(ctx, `
		SELECT DISTINCT ON (name) `+templateCols+` FROM templates
		ORDER BY name, version DESC`)
	if err != nil {
		return nil, s.wrap(op, err)
	}
	defer rows.Close()
	out := []model.Template{}
	for rows.Next() {
		t, err := scanTemplate(rows)
		if err != nil {
			return nil, s.wrap(op, err)
		}
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, s.wrap(op, err)
	}
	return out, nil
}

// TemplateDelete deletes every version of a template: model.ErrNotFound
// when there is none, model.ErrConflict while an instance of it is not
// final.
func (s *Store) TemplateDelete(ctx context.Context, name string) error {
	const op = "delete template"
	return s.tx(ctx, op, func(tx pgx.Tx) error {
		// Exclusive against InstanceCreate's shared lock: no instance of
		// the template can be created between the check and the delete.
		if err := lockTemplateName(ctx, tx, name); err != nil {
			return err
		}
		// Delete first, so that a missing template is model.ErrNotFound;
		// a refusal below rolls the delete back.
		tag, err := tx.Exec(ctx, `DELETE FROM templates WHERE name = $1`, name)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("template %s: %w", name, model.ErrNotFound)
		}
		var live bool
		err = tx.QueryRow(ctx, `
			SELECT EXISTS (SELECT 1 FROM instances WHERE template = $1 AND state IN `+liveStates+`)`,
			name).Scan(&live)
		if err != nil {
			return err
		}
		if live {
			return fmt.Errorf("template %s has instances that are not final: %w", name, model.ErrConflict)
		}
		return nil
	})
}
