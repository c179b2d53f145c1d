package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/dpe-engine/dpe/internal/store"
)

// IdempotencyGet returns the stored answer for key, or model.ErrNotFound.
func (s *Store) IdempotencyGet(ctx context.Context, key string) (store.Response, error) {
	r, err := scanResponse(s.pool.QueryRow(ctx,
		`SELECT fingerprint, status, body FROM idempotency WHERE key = $1`, key))
	if err != nil {
		return store.Response{}, s.wrap("get idempotent answer", err)
	}
	return r, nil
}

// IdempotencyPut stores the answer for key unless one is stored already and
// returns the stored one either way: of two concurrent puts of one key, the
// first to commit wins and both return its answer.
func (s *Store) IdempotencyPut(ctx context.Context, key string, r store.Response, now time.Time) (store.Response, error) {
	const op = "put idempotent answer"
	var got store.Response
	err := s.tx(ctx, op, func(tx pgx.Tx) error {
		// ON CONFLICT DO NOTHING waits for a concurrent insert of the key
		// to commit, so the read below (a new snapshot) finds its row.
		tag, err := tx.Exec(ctx, `
			INSERT INTO idempotency (key, fingerprint, status, body, created_at)
			VALUES ($1, $2, $3, $4, $5)
			ON CONFLICT (key) DO NOTHING`, key, r.Fingerprint, r.Status, []byte(r.Body), now)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 1 {
			got = r
			return nil
		}
		got, err = scanResponse(tx.QueryRow(ctx,
			`SELECT fingerprint, status, body FROM idempotency WHERE key = $1`, key))
		if errors.Is(err, pgx.ErrNoRows) {
			// Purged between the two statements: nothing is stored, so this
			// answer is the first. Rare enough not to retry.
			return errors.New("answer purged while being stored")
		}
		return err
	})
	if err != nil {
		return store.Response{}, err
	}
	return got, nil
}

func scanResponse(row pgx.Row) (store.Response, error) {
	var (
		r    store.Response
		body []byte
	)
	if err := row.Scan(&r.Fingerprint, &r.Status, &body); err != nil {
		return store.Response{}, err
	}
	if len(body) > 0 {
		r.Body = json.RawMessage(body)
	}
	return r, nil
}

// IdempotencyPurge forgets answers stored before the time.
func (s *Store) IdempotencyPurge(ctx context.Context, before time.Time) (int, error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM idempotency WHERE created_at < $1`, before)
	if err != nil {
		return 0, s.wrap("purge idempotent answers", err)
	}
	return int(tag.RowsAffected()), nil
}
