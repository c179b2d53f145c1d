// Package sqlite is the embedded core-database engine: store.Store on one
// SQLite file through modernc.org/sqlite (pure Go, no cgo), for a single
// node (`dpe up`). It passes store/storetest like every engine.
//
// Concurrency model: every write transaction goes through one connection
// (a *sql.DB capped at one open connection), so writes from this process are
// serialised in Go instead of contending for SQLite's file lock; reads use a
// separate pool and, thanks to WAL, never wait for the writer. Another
// process on the same file (a second dpe, the CLI, a backup) is handled by
// BEGIN IMMEDIATE and busy_timeout.
//
// Storage conventions: times are INTEGER unix milliseconds in UTC (so every
// timestamp is exact at the millisecond and index friendly), durations
// INTEGER nanoseconds, JSON documents TEXT checked with json_valid.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dpe-engine/dpe/internal/model"
	"github.com/dpe-engine/dpe/internal/store"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// readConns is the size of the read pool. Reads are short (one indexed
// query or a list page); a few connections are plenty on the small
// machines a single node runs on.
const readConns = 4

// Store is the SQLite engine. It is safe for concurrent use.
type Store struct {
	path string
	log  *slog.Logger
	w    *sql.DB // the single writer connection
	r    *sql.DB // read-only pool

	wstmts   *stmtCache     // prepared statements of w (see stmtcache.go)
	rstmts   *stmtCache     // and of r
	writes   chan *writeReq // to writeLoop (see groupcommit.go)
	stopped  chan struct{}  // closed by Close
	loopDone chan struct{}  // closed when writeLoop returned
	queued   atomic.Int32   // writes waiting for the writer loop to take them
	commits  store.Latency  // times of the writer's commits

	closed    atomic.Bool
	closeOnce sync.Once
	closeErr  error
}

var (
	_ store.Store   = (*Store)(nil)
	_ store.Statser = (*Store)(nil)
)

// Stats reports the writer connection, the reader pool and the commit
// latency.
func (s *Store) Stats() store.Stats {
	pool := func(name string, db *sql.DB) store.PoolStats {
		st := db.Stats()
		return store.PoolStats{Name: name, Max: st.MaxOpenConnections, Open: st.OpenConnections, InUse: st.InUse,
			Idle: st.Idle, Waits: st.WaitCount, WaitTime: st.WaitDuration}
	}
	return store.Stats{Pools: []store.PoolStats{pool("writer", s.w), pool("reader", s.r)}, Commits: s.commits.Snapshot()}
}

// commit commits tx and records how long it took.
func (s *Store) commit(tx interface{ Commit() error }) error {
	start := time.Now()
	err := tx.Commit()
	s.commits.Observe(time.Since(start))
	return err
}

// Open opens (creating it if needed) the database file at path, applies the
// pending migrations and returns the store. path is a file path; ":memory:"
// is refused because every connection would get its own empty database.
// log may be nil.
func Open(ctx context.Context, path string, log *slog.Logger) (*Store, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	switch {
	case path == "", path == ":memory:", strings.HasPrefix(path, "file:"):
		return nil, fmt.Errorf("sqlite: open %q: %w", path, model.Invalid("db", "want the path of a database file"))
	case strings.Contains(path, "?"):
		// The driver splits its DSN at the first '?'.
		return nil, fmt.Errorf("sqlite: open %q: %w", path, model.Invalid("db", "a database path may not contain '?'"))
	}
	w, err := sql.Open("sqlite", dsn(path, true))
	if err != nil {
		return nil, fmt.Errorf("sqlite: open: %w", err)
	}
	// One connection, kept forever: all writes queue here, in Go.
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)
	r, err := sql.Open("sqlite", dsn(path, false))
	if err != nil {
		_ = w.Close()
		return nil, fmt.Errorf("sqlite: open: %w", err)
	}
	r.SetMaxOpenConns(readConns)
	r.SetMaxIdleConns(readConns)

	s := &Store{path: path, log: log, w: w, r: r,
		wstmts: newStmtCache(w), rstmts: newStmtCache(r),
		writes: make(chan *writeReq), stopped: make(chan struct{}), loopDone: make(chan struct{})}
	go s.writeLoop()
	if err := s.migrate(ctx); err != nil {
		_ = s.Close()
		return nil, err
	}
	return s, nil
}

// dsn builds the driver DSN. Pragmas go in _pragma parameters so that every
// connection the pools open gets them, not just the first.
func dsn(path string, writer bool) string {
	q := url.Values{}
	// Wait up to 10 s for a lock held by another process instead of
	// failing at once with "database is locked".
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "foreign_keys(1)")
	// FULL, not the NORMAL usually paired with WAL: NORMAL skips the fsync
	// at commit, so the last transactions survive a process crash but not a
	// power loss or kernel panic. The server acknowledges a request only
	// after its commit (DESIGN §2, durable acknowledgement), so the commit
	// must be on disk.
	q.Add("_pragma", "synchronous(FULL)")
	// Savepoints (one per write of a group commit) journal the pages they
	// change; in memory, not in a temporary file written at every step.
	q.Add("_pragma", "temp_store(MEMORY)")
	if writer {
		// WAL: readers see the last commit without blocking the writer and
		// the writer never waits for readers. The mode is stored in the
		// file, so setting it on the writer is enough.
		q.Add("_pragma", "journal_mode(WAL)")
		// BEGIN IMMEDIATE takes the write lock when the transaction starts.
		// A deferred transaction that reads and then writes must upgrade
		// its lock, and when another process wrote in between the upgrade
		// fails with SQLITE_BUSY at once, which busy_timeout cannot help.
		q.Set("_txlock", "immediate")
	} else {
		// The read pool can never write, whatever a bug asks of it.
		q.Add("_pragma", "query_only(1)")
	}
	return path + "?" + q.Encode()
}

// Close closes both pools. It is safe to call more than once.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		close(s.stopped)
		<-s.loopDone // the group under way finishes; later writes fail
		s.wstmts.close()
		s.rstmts.close()
		s.closeErr = errors.Join(s.r.Close(), s.w.Close())
		if s.closeErr != nil {
			s.closeErr = fmt.Errorf("sqlite: close: %w", s.closeErr)
		}
	})
	return s.closeErr
}

// Ping checks that the file answers and holds the schema this binary
// expects. Every failure matches model.ErrUnavailable: whatever the cause,
// this server is not ready.
func (s *Store) Ping(ctx context.Context) error {
	if s.closed.Load() {
		return s.fail("ping", errClosed)
	}
	var v int
	if err := s.r.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_version`).Scan(&v); err != nil {
		if err = s.fail("ping", err); !errors.Is(err, model.ErrUnavailable) {
			err = fmt.Errorf("%w: %w", model.ErrUnavailable, err)
		}
		return err
	}
	if latest := latestVersion(); v != latest {
		return fmt.Errorf("sqlite: ping: schema version %d, this binary needs %d: %w", v, latest, model.ErrUnavailable)
	}
	return nil
}

// Capabilities reports no cross-process notification: servers sharing one
// SQLite file do not exist (it is a single-node engine).
func (s *Store) Capabilities() store.Capabilities { return store.Capabilities{Notify: false} }

// WatchJobs returns nil at once: SQLite has no notification channel, and
// the one server on the file learns of new jobs from its own inserts.
func (s *Store) WatchJobs(ctx context.Context, fn func(jobType string)) error { return nil }

// read runs fn in a read transaction, so that several queries (a page and
// its total) see one snapshot.
func (s *Store) read(ctx context.Context, op string, fn func(tx *txn) error) error {
	if s.closed.Load() {
		return s.fail(op, errClosed)
	}
	err := s.readTx(ctx, fn)
	s.rstmts.flush(ctx) // the connection is back in the pool
	return s.fail(op, err)
}

func (s *Store) readTx(ctx context.Context, fn func(tx *txn) error) error {
	tx, err := s.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback() }()
	return fn(&txn{Tx: tx, stmts: s.rstmts})
}
