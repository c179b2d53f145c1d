// Package coredb opens the core database named by a DSN: postgres://...
// (or postgresql://...) for PostgreSQL, sqlite:PATH for embedded SQLite.
package coredb

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/dpe-engine/dpe/internal/dsn"
	"github.com/dpe-engine/dpe/internal/model"
	"github.com/dpe-engine/dpe/internal/store"
	"github.com/dpe-engine/dpe/internal/store/postgres"
	"github.com/dpe-engine/dpe/internal/store/sqlite"
)

// Engine names the database engine of a DSN (db): "postgres" or "sqlite". An
// unsupported DSN is a *model.FieldError on "db".
func Engine(db string) (string, error) {
	switch {
	case strings.HasPrefix(db, "postgres://"), strings.HasPrefix(db, "postgresql://"):
		return "postgres", nil
	case strings.HasPrefix(db, "sqlite:"):
		if strings.TrimPrefix(db, "sqlite:") == "" {
			return "", model.Invalid("db", "sqlite: needs a file path, e.g. sqlite:./dpe-data/dpe.db")
		}
		return "sqlite", nil
	case db == "":
		return "", model.Invalid("db", "required: postgres://... or sqlite:PATH (flag --db or env DPE_DB)")
	default:
		return "", model.Invalid("db", "unsupported DSN %q: want postgres://... or sqlite:PATH", dsn.Redact(db))
	}
}

// Open opens and migrates the core database.
func Open(ctx context.Context, db string, log *slog.Logger) (store.Store, error) {
	engine, err := Engine(db)
	if err != nil {
		return nil, err
	}
	switch engine {
	case "postgres":
		s, err := postgres.Open(ctx, dsn.Normalize(db), log)
		if err != nil {
			return nil, err
		}
		return s, nil
	default:
		path := strings.TrimPrefix(db, "sqlite:")
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return nil, fmt.Errorf("sqlite: create directory of %s: %w", path, err)
		}
		s, err := sqlite.Open(ctx, path, log)
		if err != nil {
			return nil, err
		}
		return s, nil
	}
}
