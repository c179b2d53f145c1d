package sqlite

import (
	"context"
	"database/sql"
	"sync"
)

// maxStmts bounds the prepared statements kept per pool. Statements beyond
// it (queries built for a list of n ids, say, one text per n) run
// unprepared, as every statement did before the cache.
const maxStmts = 512

// txn is a transaction whose statements are parsed once per connection,
// not at every call: SQLite's parser was a third of the server's CPU on a
// busy single node. The first run of a query text goes unprepared and
// queues the text; once the transaction is over (its connection free),
// the pool prepares it (flush), and later transactions run it through
// database/sql's per-connection prepared statement.
//
// A write transaction is detached from its callers' cancellation: SQLite
// interrupts a statement whose context ends, and an interrupted write
// rolls back the whole transaction, which under group commit holds other
// callers' writes too. A write that has begun runs to its end (its
// statements are short); a caller gone before its turn is skipped.
type txn struct {
	*sql.Tx
	stmts    *stmtCache
	detached bool // a write: statements ignore their context's end
}

func (t *txn) ctx(ctx context.Context) context.Context {
	if t.detached {
		return context.WithoutCancel(ctx)
	}
	return ctx
}

func (t *txn) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	ctx = t.ctx(ctx)
	if st := t.stmts.get(query); st != nil {
		return t.Tx.StmtContext(ctx, st).ExecContext(ctx, args...)
	}
	return t.Tx.ExecContext(ctx, query, args...)
}

func (t *txn) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	ctx = t.ctx(ctx)
	if st := t.stmts.get(query); st != nil {
		return t.Tx.StmtContext(ctx, st).QueryContext(ctx, args...)
	}
	return t.Tx.QueryContext(ctx, query, args...)
}

func (t *txn) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	ctx = t.ctx(ctx)
	if st := t.stmts.get(query); st != nil {
		return t.Tx.StmtContext(ctx, st).QueryRowContext(ctx, args...)
	}
	return t.Tx.QueryRowContext(ctx, query, args...)
}

// stmtCache holds the prepared statements of one pool.
type stmtCache struct {
	db *sql.DB

	mu      sync.Mutex
	stmts   map[string]*sql.Stmt
	pending map[string]bool // seen, to prepare at the next flush
}

func newStmtCache(db *sql.DB) *stmtCache {
	return &stmtCache{db: db, stmts: map[string]*sql.Stmt{}, pending: map[string]bool{}}
}

// get returns query's prepared statement, or nil (queued for the next
// flush when there is room).
func (c *stmtCache) get(query string) *sql.Stmt {
	c.mu.Lock()
	defer c.mu.Unlock()
	if st := c.stmts[query]; st != nil {
		return st
	}
	if len(c.stmts)+len(c.pending) < maxStmts {
		c.pending[query] = true
	}
	return nil
}

// flush prepares the queued queries. Call it only while holding none of
// the pool's connections (preparing takes one). A query that does not
// prepare is dropped: it keeps running unprepared, reporting its error.
func (c *stmtCache) flush(ctx context.Context) {
	c.mu.Lock()
	if len(c.pending) == 0 {
		c.mu.Unlock()
		return
	}
	queries := make([]string, 0, len(c.pending))
	for q := range c.pending {
		queries = append(queries, q)
	}
	clear(c.pending)
	c.mu.Unlock()
	for _, q := range queries {
		st, err := c.db.PrepareContext(ctx, q)
		if err != nil {
			continue
		}
		c.mu.Lock()
		if c.stmts[q] == nil && len(c.stmts) < maxStmts {
			c.stmts[q], st = st, nil
		}
		c.mu.Unlock()
		if st != nil {
			_ = st.Close()
		}
	}
}

// close closes the prepared statements.
func (c *stmtCache) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for q, st := range c.stmts {
		_ = st.Close()
		delete(c.stmts, q)
	}
}
