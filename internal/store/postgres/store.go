// Package postgres is the PostgreSQL engine of the core database contract
// (package store), built on a pgx v5 connection pool. It is the engine of
// redundant plants: any number of servers share one database, claims use
// FOR UPDATE SKIP LOCKED so no job goes to two processors, and LISTEN/NOTIFY
// on the channel "dpe_jobs" wakes long-polling claims on every server when
// jobs become claimable. Triggers (TriggerDo) hold a row lock per trigger
// for the whole transaction that consumes their events, so the copies of a
// trigger on several servers take turns.
//
// Every method takes its time from the caller (never the database's now())
// so that tests and the services control the clock. The schema lives in
// embedded numbered migrations applied by Open.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/dpe-engine/dpe/internal/model"
	"github.com/dpe-engine/dpe/internal/store"
)

// notifyChannel is the LISTEN/NOTIFY channel; the payload is a job type.
const notifyChannel = "dpe_jobs"

// defaultConnectTimeout bounds one connection attempt when the DSN sets no
// connect_timeout, so an unreachable host fails a request instead of hanging
// on the operating system's TCP timeout.
const defaultConnectTimeout = 10 * time.Second

// Store is the PostgreSQL engine. It is safe for concurrent use.
type Store struct {
	pool *pgxpool.Pool
	log  *slog.Logger

	closed    atomic.Bool
	closeOnce sync.Once
	// retries counts transactions run again after the server aborted them
	// (a deadlock broken, a serialization failure): with the lock order
	// the package keeps, it stays 0 in the concurrency tests.
	retries atomic.Int64
	// done is closed by Close; it ends running WatchJobs calls.
	done chan struct{}
	// commits times the commits of write transactions.
	commits store.Latency
}

var (
	_ store.Store         = (*Store)(nil)
	_ store.WorkflowStore = (*Store)(nil)
	_ store.Statser       = (*Store)(nil)
)

// Open connects to the database named by dsn (a postgres:// URL or a
// key=value connection string, as pgx accepts, including pool_max_conns),
// applies the pending migrations and returns the store. An unreachable
// database is model.ErrUnavailable. log may be nil.
func Open(ctx context.Context, dsn string, log *slog.Logger) (*Store, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		// The parse error may quote the DSN; pgconn redacts the password.
		return nil, fmt.Errorf("postgres: parse DSN: %w", model.Invalid("db", "%v", err))
	}
	if !strings.Contains(dsn, "pool_max_conns") {
		// pgx's default, max(4, NumCPU), queues a busy server's requests
		// behind four connections; group commit and claims need more in
		// flight. pool_max_conns in the DSN overrides this.
		cfg.MaxConns = int32(max(16, 4*runtime.NumCPU()))
	}
	if cfg.ConnConfig.ConnectTimeout == 0 {
		cfg.ConnConfig.ConnectTimeout = defaultConnectTimeout
	}
	if _, ok := cfg.ConnConfig.RuntimeParams["application_name"]; !ok {
		cfg.ConnConfig.RuntimeParams["application_name"] = "dpe"
	}
	return openConfig(ctx, cfg, log)
}

// openConfig is Open from a parsed pool configuration (tests add a tracer
// to it); log must not be nil.
func openConfig(ctx context.Context, cfg *pgxpool.Config, log *slog.Logger) (*Store, error) {
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, wrap("open", err)
	}
	s := &Store{pool: pool, log: log, done: make(chan struct{})}
	if err := s.migrate(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	return s, nil
}

// Close releases the pool's connections and ends running WatchJobs calls.
// It is safe to call more than once; later calls on the store fail with
// model.ErrUnavailable.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		close(s.done)
		s.pool.Close()
	})
	return nil
}

// Capabilities reports that WatchJobs delivers notifications from every
// server sharing the database.
func (s *Store) Capabilities() store.Capabilities {
	return store.Capabilities{Notify: true}
}

// Ping succeeds when the database answers and its schema is at the version
// this build expects; anything else is model.ErrUnavailable, which is what
// /readyz reports.
func (s *Store) Ping(ctx context.Context) error {
	var version int
	err := s.pool.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM schema_version`).Scan(&version)
	if err != nil {
		return s.wrap("ping", err)
	}
	if want := latestVersion(); version != want {
		return fmt.Errorf("postgres: ping: schema version %d, this build needs %d: %w",
			version, want, model.ErrUnavailable)
	}
	return nil
}

// tx runs fn in one read-committed transaction, committing when fn returns
// nil. Errors are translated and prefixed with op.
func (s *Store) tx(ctx context.Context, op string, fn func(tx pgx.Tx) error) error {
	return s.txOpts(ctx, op, pgx.TxOptions{}, fn)
}

// txOpts is tx with explicit transaction options. A transaction the server
// aborted to break a deadlock (or a serialization failure) changed nothing,
// so it is run again, a few times after a short random pause (which lets
// the other party finish): the caller should not see an accident of
// timing. fn must therefore be safe to run more than once.
func (s *Store) txOpts(ctx context.Context, op string, opts pgx.TxOptions, fn func(tx pgx.Tx) error) error {
	return s.wrap(op, s.retry(ctx, func() error {
		return s.runTx(ctx, opts, fn)
	}))
}

// runTx runs fn in a transaction and commits it when fn returns nil,
// timing the commit (see Stats).
func (s *Store) runTx(ctx context.Context, opts pgx.TxOptions, fn func(tx pgx.Tx) error) error {
	tx, err := s.pool.BeginTx(ctx, opts)
	if err != nil {
		return err
	}
	// Rollback after Commit does nothing; on every other path it ends
	// the transaction and gives the connection back to the pool.
	defer func() { _ = tx.Rollback(ctx) }()
	if err := fn(tx); err != nil {
		return err
	}
	return s.commit(ctx, tx)
}

// commit commits tx and records how long it took.
func (s *Store) commit(ctx context.Context, tx pgx.Tx) error {
	start := time.Now()
	err := tx.Commit(ctx)
	s.commits.Observe(time.Since(start))
	return err
}

// Stats reports the connection pool and the commit latency.
func (s *Store) Stats() store.Stats {
	st := s.pool.Stat()
	return store.Stats{
		Pools: []store.PoolStats{{
			Name: "main", Max: int(st.MaxConns()), Open: int(st.TotalConns()), InUse: int(st.AcquiredConns()),
			Idle: int(st.IdleConns()), Waits: st.EmptyAcquireCount(), WaitTime: st.EmptyAcquireWaitTime(),
		}},
		Commits: s.commits.Snapshot(),
	}
}

// retry runs fn, one transaction (or one statement outside a transaction,
// which is its own), again while it fails with an error after which the
// server rolled it back and a new try may succeed: a deadlock broken or a
// serialization failure. Up to 4 tries, after a short random pause each.
func (s *Store) retry(ctx context.Context, fn func() error) error {
	var err error
	for attempt := range 4 {
		if attempt > 0 {
			s.retries.Add(1)
			select {
			case <-ctx.Done():
				return err
			case <-time.After(time.Duration(attempt) * (10*time.Millisecond + rand.N(20*time.Millisecond))):
			}
		}
		err = fn()
		if !retryable(err) {
			break
		}
	}
	return err
}

// errClosed is returned by a store after Close.
var errClosed = fmt.Errorf("store closed: %w", model.ErrUnavailable)

// wrap is the package's wrap (errors.go) that also knows the store was
// closed: after Close, every failure is model.ErrUnavailable.
func (s *Store) wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	if s.closed.Load() && !errors.Is(err, model.ErrUnavailable) {
		// pgxpool reports use after Close as a plain "closed pool" error.
		return fmt.Errorf("postgres: %s: %w", op, errClosed)
	}
	return wrap(op, err)
}
