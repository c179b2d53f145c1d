package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// hotWrites are the statements the write paths run per job or per claim:
// a job's insert, a claim, a completion. SQLite parses a statement each
// time it is run unprepared, and for these parsing cost more than running
// (a third of the server's CPU on the noop bench). Open prepares them
// once on the writer connection; transactions use them through stmt.
var hotWrites = []string{
	insertJobSQL, claimSQL, claimedWithKeySQL, loadLimitSQL,
	fenceSQL, completeSQL, wakeSQL,
}

// prepareHot prepares hotWrites on the writer connection.
func (s *Store) prepareHot(ctx context.Context) error {
	s.prep = make(map[string]*sql.Stmt, len(hotWrites))
	for _, q := range hotWrites {
		st, err := s.w.PrepareContext(ctx, q)
		if err != nil {
			return fmt.Errorf("sqlite: prepare: %w", err)
		}
		s.prep[q] = st
	}
	return nil
}

// closeHot closes the statements of prepareHot.
func (s *Store) closeHot() error {
	var errs []error
	for _, st := range s.prep {
		errs = append(errs, st.Close())
	}
	return errors.Join(errs...)
}

// stmt returns query as a statement of tx: the one Open prepared when
// query is among hotWrites (no parsing), else one prepared now, which tx
// closes when it ends. Either is meant to be run many times in tx.
func (s *Store) stmt(ctx context.Context, tx *sql.Tx, query string) (*sql.Stmt, error) {
	if st := s.prep[query]; st != nil {
		return tx.StmtContext(ctx, st), nil
	}
	st, err := tx.PrepareContext(ctx, query)
	if err != nil {
		return nil, fmt.Errorf("prepare: %w", err)
	}
	return st, nil
}

// query runs query in tx, through its prepared statement when it is among
// hotWrites.
func (s *Store) query(ctx context.Context, tx *sql.Tx, query string, args ...any) (*sql.Rows, error) {
	if st := s.prep[query]; st != nil {
		return tx.StmtContext(ctx, st).QueryContext(ctx, args...)
	}
	return tx.QueryContext(ctx, query, args...)
}

// queryRow is query for one row.
func (s *Store) queryRow(ctx context.Context, tx *sql.Tx, query string, args ...any) *sql.Row {
	if st := s.prep[query]; st != nil {
		return tx.StmtContext(ctx, st).QueryRowContext(ctx, args...)
	}
	return tx.QueryRowContext(ctx, query, args...)
}
