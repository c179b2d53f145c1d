package postgres

import (
	"context"

	"github.com/jackc/pgx/v5"
)

// txBatch is tx for a transaction whose first statements are known before
// it begins: they travel with BEGIN in one round trip (pgx.Batch.BeginTx)
// instead of after it, which saves a quarter of a lock-then-write
// transaction's round trips (JobCompleteMany: 3 instead of 4). first
// queues those statements on b, reading their results with the queued
// queries' callbacks; fn then runs in the transaction, which commits when
// it returns nil. Deadlocks and serialization failures are retried as in
// txOpts, so first and fn must be safe to run more than once.
func (s *Store) txBatch(ctx context.Context, op string, first func(b *pgx.Batch), fn func(tx pgx.Tx) error) error {
	return s.wrap(op, s.retry(ctx, func() error {
		b := &pgx.Batch{}
		b.BeginTx(pgx.TxOptions{})
		first(b)
		br := s.pool.SendBatch(ctx, b)
		tx := br.Tx()
		// Rollback after Commit does nothing; on every other path it ends
		// the transaction and gives the connection back to the pool.
		defer func() { _ = tx.Rollback(ctx) }()
		if err := br.Close(); err != nil {
			return err
		}
		if err := fn(tx); err != nil {
			return err
		}
		return s.commit(ctx, tx)
	}))
}
