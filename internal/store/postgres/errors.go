package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/dpe-engine/dpe/internal/model"
)

// wrap returns err prefixed with "postgres: op: " and translated into the
// model sentinels, so that no caller needs to import pgx:
//
//   - no rows: model.ErrNotFound;
//   - a unique violation: model.ErrConflict (callers that expect one, such
//     as keyed inserts, handle it before it gets here);
//   - bad input the server refused (invalid JSON, out-of-range numbers):
//     model.ErrInvalid;
//   - a lost or refused connection, a server shutting down or out of
//     connections, a deadline passed while waiting for the database or the
//     pool: model.ErrUnavailable, still wrapping the cause.
//
// A cancelled context stays context.Canceled: that is a caller going away
// (a shutdown), not the database failing.
func wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	prefix := "postgres: " + op
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return fmt.Errorf("%s: %w", prefix, model.ErrNotFound)
	case errors.Is(err, model.ErrNotFound), errors.Is(err, model.ErrConflict),
		errors.Is(err, model.ErrInvalid), errors.Is(err, model.ErrUnavailable):
		return fmt.Errorf("%s: %w", prefix, err)
	case errors.Is(err, context.Canceled):
		return fmt.Errorf("%s: %w", prefix, err)
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch {
		case pgErr.Code == "23505": // unique_violation
			return fmt.Errorf("%s: %w: %w", prefix, model.ErrConflict, err)
		case strings.HasPrefix(pgErr.Code, "22"): // data exception
			return fmt.Errorf("%s: %w: %w", prefix, model.ErrInvalid, err)
		case unavailableCode(pgErr.Code):
			return fmt.Errorf("%s: %w: %w", prefix, model.ErrUnavailable, err)
		}
		return fmt.Errorf("%s: %w", prefix, err)
	}
	if connectionLost(err) {
		return fmt.Errorf("%s: %w: %w", prefix, model.ErrUnavailable, err)
	}
	return fmt.Errorf("%s: %w", prefix, err)
}

// retryable reports errors after which the server rolled the transaction
// back and running it again may succeed.
func retryable(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && (pgErr.Code == "40P01" || pgErr.Code == "40001")
}

// unavailableCode reports SQLSTATEs that mean "the database cannot serve
// right now" rather than "this request is wrong".
func unavailableCode(code string) bool {
	switch {
	case strings.HasPrefix(code, "08"): // connection exception
		return true
	case code == "57P01", code == "57P02", code == "57P03": // admin/crash shutdown, cannot connect now
		return true
	case code == "53300": // too_many_connections
		return true
	case code == "25006": // read_only_sql_transaction: a standby after fail-over
		return true
	}
	return false
}

// connectionLost reports errors below the SQL level: the network, the
// connection, the pool, or a deadline that passed while waiting for any of
// them.
func connectionLost(err error) bool {
	var connectErr *pgconn.ConnectError
	var netErr net.Error
	switch {
	case errors.As(err, &connectErr), errors.As(err, &netErr):
		return true
	case errors.Is(err, context.DeadlineExceeded):
		// A request deadline passed while waiting for the database or for
		// a pool connection: from the caller's side the database is not
		// answering.
		return true
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, syscall.EPIPE), errors.Is(err, net.ErrClosed):
		return true
	case pgconn.SafeToRetry(err), pgconn.Timeout(err):
		return true
	}
	// pgx reports a connection it closed after a failure as "conn closed",
	// and pgxpool after Close as "closed pool", without exported sentinels.
	msg := err.Error()
	return strings.Contains(msg, "conn closed") || strings.Contains(msg, "closed pool")
}
