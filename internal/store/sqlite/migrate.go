package sqlite

import (
	"context"
	"embed"
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// migrationFS holds the numbered schema migrations, NNNN_name.sql, applied
// in order. A released migration is never edited: changes go in a new file.
//
//go:embed migrations/*.sql
var migrationFS embed.FS

// migration is one embedded schema step.
type migration struct {
	version int
	name    string
	sql     string
}

// migrations returns the embedded migrations in order, checking that they
// are numbered 1, 2, 3 ... without gaps. They are read once: Ping asks for
// the latest version on every /readyz.
var migrations = sync.OnceValues(readMigrations)

// readMigrations reads and checks the embedded migrations.
func readMigrations() ([]migration, error) {
	entries, err := migrationFS.ReadDir("migrations")
	if err != nil {
		return nil, err
	}
	var out []migration
	for _, e := range entries {
		name := e.Name()
		num, _, ok := strings.Cut(name, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || !strings.HasSuffix(name, ".sql") {
			return nil, fmt.Errorf("migration %s: want NNNN_name.sql", name)
		}
		b, err := migrationFS.ReadFile(path.Join("migrations", name))
		if err != nil {
			return nil, err
		}
		out = append(out, migration{version: v, name: name, sql: string(b)})
	}
	slices.SortFunc(out, func(a, b migration) int { return a.version - b.version })
	for i, m := range out {
		if m.version != i+1 {
			return nil, fmt.Errorf("migration %s: want version %d", m.name, i+1)
		}
	}
	return out, nil
}

// latestVersion is the schema version this binary writes and expects.
func latestVersion() int {
	ms, err := migrations()
	if err != nil {
		return -1 // never matches: Ping fails, as Open did
	}
	return len(ms)
}

// migrate brings the schema to the latest version in one transaction: a
// failure leaves the file as it was (SQLite DDL is transactional). Running
// it on a current file changes nothing. A file from a newer binary is
// refused rather than used with a schema this one does not know.
func (s *Store) migrate(ctx context.Context) error {
	ms, err := migrations()
	if err != nil {
		return fmt.Errorf("sqlite: migrate: %w", err)
	}
	var from int
	err = s.write(ctx, "migrate", func(tx *txn) error {
		if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_version (
			version    INTEGER PRIMARY KEY,
			name       TEXT    NOT NULL,
			applied_at INTEGER NOT NULL
		)`); err != nil {
			return err
		}
		if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_version`).Scan(&from); err != nil {
			return err
		}
		if from > len(ms) {
			return fmt.Errorf("database schema version %d is newer than this binary's %d", from, len(ms))
		}
		for _, m := range ms[from:] {
			if _, err := tx.ExecContext(ctx, m.sql); err != nil {
				return fmt.Errorf("%s: %w", m.name, err)
			}
			// Wall clock on purpose: when a migration ran is operator
			// information, not domain time.
			if _, err := tx.ExecContext(ctx, `INSERT INTO schema_version (version, name, applied_at) VALUES (?, ?, ?)`,
				m.version, m.name, time.Now().UnixMilli()); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	if from < len(ms) {
		s.log.Info("sqlite schema migrated", "path", s.path, "from", from, "to", len(ms))
	}
	return nil
}
