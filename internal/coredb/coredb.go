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

	"github.com/dpe-engine/dpe/internal/model"
	"github.com/dpe-engine/dpe/internal/store"
	"github.com/dpe-engine/dpe/internal/store/postgres"
	"github.com/dpe-engine/dpe/internal/store/sqlite"
)

// Engine names the database engine of a DSN: "postgres" or "sqlite". An
// unsupported DSN is a *model.FieldError on "db".
func Engine(dsn string) (string, error) {
	switch {
	case strings.HasPrefix(dsn, "postgres://"), strings.HasPrefix(dsn, "postgresql://"):
		return "postgres", nil
	case strings.HasPrefix(dsn, "sqlite:"):
		if strings.TrimPrefix(dsn, "sqlite:") == "" {
			return "", model.Invalid("db", "sqlite: needs a file path, e.g. sqlite:./dpe-data/dpe.db")
		}
		return "sqlite", nil
	case dsn == "":
		return "", model.Invalid("db", "required: postgres://... or sqlite:PATH (flag --db or env DPE_DB)")
	default:
		return "", model.Invalid("db", "unsupported DSN %q: want postgres://... or sqlite:PATH", Redact(dsn))
	}
}

// Open opens and migrates the core database.
func Open(ctx context.Context, dsn string, log *slog.Logger) (store.Store, error) {
	engine, err := Engine(dsn)
	if err != nil {
		return nil, err
	}
	switch engine {
	case "postgres":
		s, err := postgres.Open(ctx, normalizeURL(dsn), log)
		if err != nil {
			return nil, err
		}
		return s, nil
	default:
		path := strings.TrimPrefix(dsn, "sqlite:")
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
