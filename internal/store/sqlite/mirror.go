package sqlite

import (
	"encoding/json"
	"slices"
	"time"

	"github.com/dpe-engine/dpe/internal/store"
)

// Chunk sizes of the mirror methods. A page of a watcher holds up to 5,000
// items; SQLite accepts 32,766 bound parameters, but a statement with
// thousands of them is slow to prepare and the limit is a compile option,
// so lists go in chunks of at most maxKeysPerStatement parameters.
const (
	maxKeysPerStatement = 500
	// mirrorPutRows rows of 6 parameters each stay within the same bound.
	mirrorPutRows = maxKeysPerStatement / 6
)

// mirrorCols lists the mirror columns in the order scanMirror reads them.
const mirrorCols = `key, fingerprint, data, seen_at, changed_seq`

// mirrorStaleSQL is MirrorStale's query. Left to itself the planner walks
// the primary key in key order (no sort) and filters on seen_at, which
// reads the whole mirror when few entries are stale, the common case at
// the end of a full pass. mirror_seen reads only the stale entries and
// sorts those; INDEXED BY pins that plan (and fails loudly should the
// index ever go).
const mirrorStaleSQL = `SELECT ` + mirrorCols + ` FROM mirror INDEXED BY mirror_seen
	WHERE "trigger" = ? AND seen_at < ? ORDER BY key LIMIT ?`

// scanMirror reads one row of mirrorCols.
func scanMirror(sc scanner) (store.MirrorEntry, error) {
	var (
		e    store.MirrorEntry
		data *string
		seen int64
	)
	if err := sc.Scan(&e.Key, &e.Fingerprint, &data, &seen, &e.Seq); err != nil {
		return store.MirrorEntry{}, err
	}
	if data != nil {
		e.Data = json.RawMessage(*data)
	}
	e.SeenAt = fromMS(seen)
	return e, nil
}

// keyArgs returns the trigger name followed by keys, as the arguments of a
// statement ending in "key IN (placeholders(len(keys)))".
func (t *triggerTx) keyArgs(keys []string) []any {
	args := make([]any, 0, len(keys)+1)
	args = append(args, t.name)
	for _, k := range keys {
		args = append(args, k)
	}
	return args
}

// MirrorGet returns the entries of the keys that exist, by key.
func (t *triggerTx) MirrorGet(keys []string) (map[string]store.MirrorEntry, error) {
	out := make(map[string]store.MirrorEntry, len(keys))
	for chunk := range slices.Chunk(keys, maxKeysPerStatement) {
		if err := t.mirrorGet(chunk, out); err != nil {
			return nil, t.fail("mirror get", err)
		}
	}
	return out, nil
}

// mirrorGet adds the entries of one chunk of keys to out.
func (t *triggerTx) mirrorGet(keys []string, out map[string]store.MirrorEntry) error {
	rows, err := t.tx.QueryContext(t.ctx, `SELECT `+mirrorCols+` FROM mirror
		WHERE "trigger" = ? AND key IN (`+placeholders(len(keys))+`)`, t.keyArgs(keys)...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		e, err := scanMirror(rows)
		if err != nil {
			return err
		}
		out[e.Key] = e
	}
	return rows.Err()
}

// MirrorPut upserts the entries with SeenAt = now: fingerprint, data and
// Seq are replaced (no data stores NULL), the entry's own SeenAt is ignored.
// Multi-row statements: one statement per row would cost a round through
// the driver per file of a 5,000-item page.
func (t *triggerTx) MirrorPut(entries []store.MirrorEntry) error {
	now := ms(t.now)
	for chunk := range slices.Chunk(entries, mirrorPutRows) {
		args := make([]any, 0, 6*len(chunk))
		for _, e := range chunk {
			args = append(args, t.name, e.Key, e.Fingerprint, nullJSON(e.Data), now, e.Seq)
		}
		q := `INSERT INTO mirror ("trigger", key, fingerprint, data, seen_at, changed_seq) VALUES ` + rowsOf(len(chunk), 6) + `
			ON CONFLICT ("trigger", key) DO UPDATE SET fingerprint = excluded.fingerprint, data = excluded.data,
				seen_at = excluded.seen_at, changed_seq = excluded.changed_seq`
		if _, err := t.tx.ExecContext(t.ctx, q, args...); err != nil {
			return t.fail("mirror put", err)
		}
	}
	return nil
}

// MirrorTouch sets SeenAt = now on the existing entries of the keys.
func (t *triggerTx) MirrorTouch(keys []string) error {
	for chunk := range slices.Chunk(keys, maxKeysPerStatement) {
		args := append([]any{ms(t.now)}, t.keyArgs(chunk)...)
		if _, err := t.tx.ExecContext(t.ctx, `UPDATE mirror SET seen_at = ?
			WHERE "trigger" = ? AND key IN (`+placeholders(len(chunk))+`)`, args...); err != nil {
			return t.fail("mirror touch", err)
		}
	}
	return nil
}

// MirrorStale returns up to limit entries with SeenAt before the time, by
// key; limit <= 0 returns none.
func (t *triggerTx) MirrorStale(before time.Time, limit int) ([]store.MirrorEntry, error) {
	if limit <= 0 {
		return nil, nil
	}
	rows, err := t.tx.QueryContext(t.ctx, mirrorStaleSQL, t.name, ms(before), limit)
	if err != nil {
		return nil, t.fail("mirror stale", err)
	}
	defer rows.Close()
	var out []store.MirrorEntry
	for rows.Next() {
		e, err := scanMirror(rows)
		if err != nil {
			return nil, t.fail("mirror stale", err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, t.fail("mirror stale", err)
	}
	return out, nil
}

// MirrorDelete removes the entries of the keys; missing ones are ignored.
func (t *triggerTx) MirrorDelete(keys []string) error {
	for chunk := range slices.Chunk(keys, maxKeysPerStatement) {
		if _, err := t.tx.ExecContext(t.ctx, `DELETE FROM mirror
			WHERE "trigger" = ? AND key IN (`+placeholders(len(chunk))+`)`, t.keyArgs(chunk)...); err != nil {
			return t.fail("mirror delete", err)
		}
	}
	return nil
}

// rowsOf returns n comma-separated rows of cols placeholders, for a
// multi-row VALUES list.
func rowsOf(n, cols int) string {
	row := "(" + placeholders(cols) + ")"
	b := make([]byte, 0, n*(len(row)+2))
	for i := range n {
		if i > 0 {
			b = append(b, ", "...)
		}
		b = append(b, row...)
	}
	return string(b)
}
