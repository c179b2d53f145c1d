package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/dpe-engine/dpe/internal/model"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// errClosed is what operations on a closed store fail with (as
// model.ErrUnavailable).
var errClosed = errors.New("store is closed")

// fail wraps err for op as "sqlite: op: ...", translating native errors into
// the model sentinels so that callers never import the driver.
func (s *Store) fail(op string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, model.ErrNotFound), errors.Is(err, model.ErrConflict),
		errors.Is(err, model.ErrInvalid), errors.Is(err, model.ErrUnavailable),
		errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("sqlite: %s: %w", op, err)
	case errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("sqlite: %s: %w", op, model.ErrNotFound)
	case errors.Is(err, errClosed), errors.Is(err, sql.ErrConnDone), s.closed.Load(),
		// database/sql does not export the error of a closed *sql.DB.
		strings.Contains(err.Error(), "sql: database is closed"):
		return fmt.Errorf("sqlite: %s: %w: %w", op, model.ErrUnavailable, err)
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() {
		case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
			return fmt.Errorf("sqlite: %s: %w: %w", op, model.ErrConflict, err)
		case sqlite3.SQLITE_CONSTRAINT_CHECK, sqlite3.SQLITE_CONSTRAINT_NOTNULL:
			// Validation is upstream; a CHECK that fires is bad input that
			// slipped through (an empty type, malformed JSON).
			return fmt.Errorf("sqlite: %s: %w: %w", op, model.ErrInvalid, err)
		}
		// Primary result codes (the low byte) of conditions that pass:
		// another process holds the lock past busy_timeout, the file is
		// missing, read-only or the disk is full.
		switch se.Code() & 0xff {
		case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_CANTOPEN,
			sqlite3.SQLITE_IOERR, sqlite3.SQLITE_FULL, sqlite3.SQLITE_READONLY:
			return fmt.Errorf("sqlite: %s: %w: %w", op, model.ErrUnavailable, err)
		}
	}
	return fmt.Errorf("sqlite: %s: %w", op, err)
}
