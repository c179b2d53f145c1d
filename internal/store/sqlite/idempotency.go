package sqlite

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/dpe-engine/dpe/internal/store"
)

// IdempotencyGet returns the answer stored for key, or model.ErrNotFound.
func (s *Store) IdempotencyGet(ctx context.Context, key string) (store.Response, error) {
	if s.closed.Load() {
		return store.Response{}, s.fail("get idempotency key", errClosed)
	}
	r, err := getResponse(ctx, s.r, key)
	if err != nil {
		return store.Response{}, s.fail("get idempotency key", fmt.Errorf("key %q: %w", key, err))
	}
	return r, nil
}

// getResponse reads one stored answer (sql.ErrNoRows when missing).
func getResponse(ctx context.Context, q queryer, key string) (store.Response, error) {
	var (
		r    store.Response
		body string
	)
	err := q.QueryRowContext(ctx, `SELECT fingerprint, status, body FROM idempotency WHERE idem_key = ?`, key).
		Scan(&r.Fingerprint, &r.Status, &body)
	if len(body) > 0 {
		r.Body = json.RawMessage(body)
	}
	return r, err
}

// IdempotencyPut stores the answer for key unless one is stored, and
// returns the stored one.
func (s *Store) IdempotencyPut(ctx context.Context, key string, r store.Response, now time.Time) (store.Response, error) {
	var stored store.Response
	err := s.write(ctx, "put idempotency key", func(tx *txn) error {
		if _, err := tx.ExecContext(ctx, `
			INSERT INTO idempotency (idem_key, fingerprint, status, body, created_at) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (idem_key) DO NOTHING`,
			key, r.Fingerprint, r.Status, string(r.Body), ms(now)); err != nil {
			return err
		}
		var err error
		stored, err = getResponse(ctx, tx, key)
		return err
	})
	if err != nil {
		return store.Response{}, err
	}
	return stored, nil
}

// IdempotencyPurge forgets the answers stored before the time.
func (s *Store) IdempotencyPurge(ctx context.Context, before time.Time) (int, error) {
	var n int
	err := s.write(ctx, "purge idempotency keys", func(tx *txn) error {
		var err error
		n, err = execCount(ctx, tx, `DELETE FROM idempotency WHERE created_at < ?`, ms(before))
		return err
	})
	return n, err
}
