package sqlite

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
)

// maxGroup caps the write transactions committed together.
const maxGroup = 128

// Group commit. Every commit of the writer connection waits for an fsync
// (synchronous=FULL), which costs far more than the statements of a
// typical write. So the writes that queue up while one commit is under way
// run together in the next transaction, each inside its own savepoint, and
// share its one commit: a lone write still commits at once, a busy server
// makes one fsync for many requests. Each caller learns its outcome only
// after the shared commit, so an acknowledged write is on disk as before.

// writeReq is one write transaction waiting for the writer.
type writeReq struct {
	ctx  context.Context
	op   string
	fn   func(tx *txn) error
	done chan error // buffered 1: the outcome, after the commit
}

// write runs fn in a write transaction on the writer connection and
// commits it, possibly together with other writes (see above). fn must use
// tx only: any other use of s.w would wait forever for the one connection
// fn's transaction holds. fn's error undoes fn's writes only.
func (s *Store) write(ctx context.Context, op string, fn func(tx *txn) error) error {
	if s.closed.Load() {
		return s.fail(op, errClosed)
	}
	req := &writeReq{ctx: ctx, op: op, fn: fn, done: make(chan error, 1)}
	s.queued.Add(1)
	select {
	case s.writes <- req:
		s.queued.Add(-1)
	case <-ctx.Done():
		s.queued.Add(-1)
		return s.fail(op, ctx.Err())
	case <-s.stopped:
		s.queued.Add(-1)
		return s.fail(op, errClosed)
	}
	return <-req.done
}

// writeLoop runs the queued writes until Close, a group at a time.
func (s *Store) writeLoop() {
	defer close(s.loopDone)
	for {
		var group []*writeReq
		select {
		case r := <-s.writes:
			group = append(group, r)
		case <-s.stopped:
			return
		}
	fill:
		for len(group) < maxGroup {
			select {
			case r := <-s.writes:
				group = append(group, r)
			default:
				break fill
			}
		}
		s.commitGroup(group)
		s.wstmts.flush(context.Background()) // the writer is free now
	}
}

// commitGroup runs the group's writes in one transaction and commits it.
func (s *Store) commitGroup(group []*writeReq) {
	if len(group) == 1 {
		r := group[0]
		r.done <- s.fail(r.op, s.runAlone(r))
		return
	}
	sqlTx, err := s.w.BeginTx(context.Background(), nil)
	if err != nil {
		for _, r := range group {
			r.done <- s.fail(r.op, err)
		}
		return
	}
	tx := &txn{Tx: sqlTx, stmts: s.wstmts, detached: true}
	defer func() { _ = tx.Rollback() }() // no-op after Commit
	var applied []*writeReq
	for i, r := range group {
		if err := r.ctx.Err(); err != nil {
			r.done <- s.fail(r.op, err)
			continue
		}
		err, broken := runSavepoint(tx, r.fn)
		if broken != nil {
			// SQLite rolled the whole transaction back (an interrupted
			// statement, an I/O error): nothing of the group is kept.
			broken = fmt.Errorf("group commit: %w", broken)
			for _, a := range applied {
				a.done <- s.fail(a.op, broken)
			}
			r.done <- s.fail(r.op, errors.Join(err, broken))
			for _, rest := range group[i+1:] {
				rest.done <- s.fail(rest.op, broken)
			}
			return
		}
		if err != nil {
			r.done <- s.fail(r.op, err)
			continue
		}
		applied = append(applied, r)
	}
	err = s.commit(tx)
	for _, a := range applied {
		a.done <- s.fail(a.op, err)
	}
}

// runAlone runs one write in its own transaction (no savepoint needed).
func (s *Store) runAlone(r *writeReq) error {
	// Not r.ctx: database/sql rolls a transaction back when its context
	// ends, and the write must run to its end (see txn).
	if err := r.ctx.Err(); err != nil {
		return err
	}
	sqlTx, err := s.w.BeginTx(context.Background(), nil)
	if err != nil {
		return err
	}
	defer func() { _ = sqlTx.Rollback() }()
	tx := &txn{Tx: sqlTx, stmts: s.wstmts, detached: true}
	if err := safely(r.fn, tx); err != nil {
		return err
	}
	return s.commit(tx)
}

// safely runs fn, turning a panic into an error: fn runs on the writer's
// goroutine, where a panic would end the whole server, not one request.
func safely(fn func(tx *txn) error, tx *txn) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic in write transaction: %v\n%s", p, debug.Stack())
		}
	}()
	return fn(tx)
}

// runSavepoint runs fn inside a savepoint of tx: fn's error rolls back
// fn's writes only. broken is set when the transaction itself is gone
// (the savepoint cannot be rolled back to or released).
func runSavepoint(tx *txn, fn func(tx *txn) error) (err, broken error) {
	ctx := context.Background() // the savepoint must outlive a caller gone away
	if _, err := tx.ExecContext(ctx, `SAVEPOINT w`); err != nil {
		return err, err
	}
	if err = safely(fn, tx); err != nil {
		if _, rb := tx.ExecContext(ctx, `ROLLBACK TO w`); rb != nil {
			return err, rb
		}
	}
	if _, rel := tx.ExecContext(ctx, `RELEASE w`); rel != nil {
		return err, rel
	}
	return err, nil
}
