package postgres

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/dpe-engine/dpe/internal/model"
	"github.com/dpe-engine/dpe/internal/store"
)

// The mirror methods of triggerTx. Each is one statement however many keys
// it gets (the keys travel as one array parameter), so a watcher's page of
// 1,000 items costs a handful of round trips, not one per item. They run
// under the trigger's row lock, so no other transaction writes this
// trigger's mirror meanwhile: that is what keeps triggers.mirrored exact
// and makes lock order among mirror rows irrelevant.

// mirrorCols is the select list of a mirror entry, in scanMirror's order.
const mirrorCols = `key, fingerprint, data, seen_at, changed_seq`

// scanMirror reads one row of mirrorCols.
func scanMirror(row pgx.Row) (store.MirrorEntry, error) {
	var (
		e    store.MirrorEntry
		data []byte
	)
	if err := row.Scan(&e.Key, &e.Fingerprint, &data, &e.SeenAt, &e.Seq); err != nil {
		return store.MirrorEntry{}, err
	}
	if len(data) > 0 {
		e.Data = json.RawMessage(data)
	}
	e.SeenAt = e.SeenAt.UTC()
	return e, nil
}

// mirrorGetSQL reads the entries of an array of keys: key = ANY(array) is
// one scan of the primary key per key, however many there are.
const mirrorGetSQL = `SELECT ` + mirrorCols + ` FROM mirror WHERE trigger = $1 AND key = ANY($2::text[])`

// MirrorGet returns the entries of the keys that exist, by key, in one
// query.
func (x *triggerTx) MirrorGet(keys []string) (map[string]store.MirrorEntry, error) {
	const op = "mirror get"
	out := map[string]store.MirrorEntry{}
	if len(keys) == 0 {
		return out, nil
	}
	rows, err := x.tx.Query(x.ctx, mirrorGetSQL, x.locked.Name, keys)
	if err != nil {
		return nil, x.wrap(op, err)
	}
	defer rows.Close()
	for rows.Next() {
		e, err := scanMirror(rows)
		if err != nil {
			return nil, x.wrap(op, err)
		}
		out[e.Key] = e
	}
	if err := rows.Err(); err != nil {
		return nil, x.wrap(op, err)
	}
	return out, nil
}

// mirrorPutSQL upserts entries given as parallel arrays and returns how
// many of the keys existed before. Every part of a statement reads one
// snapshot, so "existing" counts the rows as they were before the insert
// in the same statement.
const mirrorPutSQL = `
WITH existing AS (
	SELECT count(*) AS n FROM mirror WHERE trigger = $1 AND key = ANY($2::text[])
), up AS (
	INSERT INTO mirror (trigger, key, fingerprint, data, seen_at, changed_seq)
	SELECT $1, e.key, e.fingerprint, e.data::json, $5, e.seq
	FROM unnest($2::text[], $3::text[], $4::text[], $6::bigint[]) AS e (key, fingerprint, data, seq)
	ON CONFLICT (trigger, key) DO UPDATE SET
		fingerprint = excluded.fingerprint,
		data        = excluded.data,
		seen_at     = excluded.seen_at,
		changed_seq = excluded.changed_seq
)
SELECT n FROM existing`

// MirrorPut inserts or replaces entries (fingerprint, data and Seq; no
// data stores none) with SeenAt = now, in one statement. Of entries repeating a
// key, the last counts (one statement may not upsert a row twice).
func (x *triggerTx) MirrorPut(entries []store.MirrorEntry) error {
	const op = "mirror put"
	if len(entries) == 0 {
		return nil
	}
	index := make(map[string]int, len(entries))
	keys := make([]string, 0, len(entries))
	fps := make([]string, 0, len(entries))
	data := make([]*string, 0, len(entries))
	seqs := make([]int64, 0, len(entries))
	for i, e := range entries {
		switch {
		case e.Key == "":
			return x.wrap(op, model.Invalid(fmt.Sprintf("entries[%d].key", i), "required"))
		case len(e.Data) > 0 && !json.Valid(e.Data):
			return x.wrap(op, model.Invalid(fmt.Sprintf("entries[%d].data", i), "not valid JSON"))
		}
		d := rawJSON(e.Data)
		if j, ok := index[e.Key]; ok {
			fps[j], data[j], seqs[j] = e.Fingerprint, d, e.Seq
			continue
		}
		index[e.Key] = len(keys)
		keys, fps, data = append(keys, e.Key), append(fps, e.Fingerprint), append(data, d)
		seqs = append(seqs, e.Seq)
	}
	var existing int
	if err := x.tx.QueryRow(x.ctx, mirrorPutSQL, x.locked.Name, keys, fps, data, x.now, seqs).Scan(&existing); err != nil {
		return x.wrap(op, err)
	}
	x.mirrored += len(keys) - existing
	return nil
}

// MirrorTouch sets SeenAt = now on the existing entries of the keys;
// missing keys are ignored. Since seen_at has no index, these are HOT
// updates (see migration 0003); an entry already seen at now is not
// written again.
func (x *triggerTx) MirrorTouch(keys []string) error {
	if len(keys) == 0 {
		return nil
	}
	_, err := x.tx.Exec(x.ctx, `
		UPDATE mirror SET seen_at = $3
		WHERE trigger = $1 AND key = ANY($2::text[]) AND seen_at <> $3`,
		x.locked.Name, keys, x.now)
	return x.wrap("mirror touch", err)
}

// mirrorStaleSQL reads entries not seen since $2, by key. It can walk the
// primary key in key order and stop after $3 matches: cheaper overall than
// an index on seen_at (see migration 0003).
const mirrorStaleSQL = `
SELECT ` + mirrorCols + ` FROM mirror
WHERE trigger = $1 AND seen_at < $2
ORDER BY key LIMIT $3`

// MirrorStale returns up to limit entries with SeenAt strictly before the
// time, by key in byte order; a limit of zero or less returns none (as the
// SQLite engine does).
func (x *triggerTx) MirrorStale(before time.Time, limit int) ([]store.MirrorEntry, error) {
	const op = "mirror stale"
	out := []store.MirrorEntry{}
	if limit <= 0 {
		return out, nil
	}
	rows, err := x.tx.Query(x.ctx, mirrorStaleSQL, x.locked.Name, before, limit)
	if err != nil {
		return nil, x.wrap(op, err)
	}
	defer rows.Close()
	for rows.Next() {
		e, err := scanMirror(rows)
		if err != nil {
			return nil, x.wrap(op, err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, x.wrap(op, err)
	}
	return out, nil
}

// MirrorDelete removes the entries of the keys; missing keys are ignored.
func (x *triggerTx) MirrorDelete(keys []string) error {
	if len(keys) == 0 {
		return nil
	}
	tag, err := x.tx.Exec(x.ctx, `DELETE FROM mirror WHERE trigger = $1 AND key = ANY($2::text[])`, x.locked.Name, keys)
	if err != nil {
		return x.wrap("mirror delete", err)
	}
	x.mirrored -= int(tag.RowsAffected())
	return nil
}
