package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/dpe-engine/dpe/internal/model"
)

// TemplatePut stores a template version. Version 0 takes the next one
// after the highest stored; a template whose Canonical bytes equal the
// latest version's is not stored again (created false). An explicit
// version that exists answers with it when its Canonical is the same and
// is model.ErrConflict otherwise.
func (s *Store) TemplatePut(ctx context.Context, t model.Template, now time.Time) (model.Template, bool, error) {
	var (
		out     model.Template
		created bool
	)
	err := s.write(ctx, "put template", func(tx *txn) error {
		created = false
		if t.Version > 0 {
			cur, err := scanTemplate(tx.QueryRowContext(ctx, `SELECT `+templateCols+` FROM templates WHERE name = ? AND version = ?`,
				t.Name, t.Version))
			switch {
			case err == nil && bytes.Equal(cur.Canonical, t.Canonical):
				out = cur
				return nil
			case err == nil:
				return fmt.Errorf("template %s version %d exists with other content: %w", t.Name, t.Version, model.ErrConflict)
			case !errors.Is(err, sql.ErrNoRows):
				return err
			}
		}
		// The primary key (name, version) makes this a backwards index walk.
		latest, err := scanTemplate(tx.QueryRowContext(ctx, `SELECT `+templateCols+` FROM templates
			WHERE name = ? ORDER BY version DESC LIMIT 1`, t.Name))
		switch {
		case err == nil && bytes.Equal(latest.Canonical, t.Canonical):
			out = latest
			return nil
		case err != nil && !errors.Is(err, sql.ErrNoRows):
			return err
		}
		version := t.Version
		if version == 0 {
			version = latest.Version + 1 // 1 when there is none
		}
		out, err = scanTemplate(tx.QueryRowContext(ctx, `
			INSERT INTO templates (name, version, description, source, canonical, created_at)
			VALUES (?, ?, ?, ?, ?, ?)
			RETURNING `+templateCols,
			t.Name, version, t.Description, t.Source, string(t.Canonical), ms(now)))
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
	if s.closed.Load() {
		return model.Template{}, s.fail("get template", errClosed)
	}
	query, args := `SELECT `+templateCols+` FROM templates WHERE name = ? AND version = ?`, []any{name, version}
	if version == 0 {
		query, args = `SELECT `+templateCols+` FROM templates WHERE name = ? ORDER BY version DESC LIMIT 1`, []any{name}
	}
	t, err := scanTemplate(s.r.QueryRowContext(ctx, query, args...))
	if err != nil {
		return model.Template{}, s.fail("get template", fmt.Errorf("template %s version %d: %w", name, version, err))
	}
	return t, nil
}

// TemplateList returns the latest version of every template, by name in
// byte order.
func (s *Store) TemplateList(ctx context.Context) ([]model.Template, error) {
	out := []model.Template{}
	err := s.read(ctx, "list templates", func(tx *txn) error {
		// The correlated MAX is one primary-key seek per name.
		rows, err := tx.QueryContext(ctx, `
			SELECT `+templateCols+` FROM templates AS t
			WHERE version = (SELECT MAX(version) FROM templates WHERE name = t.name)
			ORDER BY name`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			t, err := scanTemplate(rows)
			if err != nil {
				return err
			}
			out = append(out, t)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// TemplateDelete deletes every version of a template: model.ErrNotFound
// when there is none, model.ErrConflict while an instance of it is live
// (its worker still needs the document).
func (s *Store) TemplateDelete(ctx context.Context, name string) error {
	return s.write(ctx, "delete template", func(tx *txn) error {
		var exists bool
		if err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM templates WHERE name = ?)`, name).Scan(&exists); err != nil {
			return err
		}
		if !exists {
			return fmt.Errorf("template %s: %w", name, model.ErrNotFound)
		}
		var (
			id    int64
			state string
		)
		err := tx.QueryRowContext(ctx, `SELECT id, state FROM instances WHERE template = ? AND state IN `+liveStates+` LIMIT 1`, name).
			Scan(&id, &state)
		switch {
		case err == nil:
			return fmt.Errorf("template %s: instance %d is %s: %w", name, id, state, model.ErrConflict)
		case !errors.Is(err, sql.ErrNoRows):
			return err
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM templates WHERE name = ?`, name)
		return err
	})
}
