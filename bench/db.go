package main

import (
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"
	_ "modernc.org/sqlite"             // the driver dpe's SQLite store uses
)

// coreDB is the core database of one engine's run: the DSN the server
// gets, and a direct connection (sql, after connect) the bench uses for
// what the API cannot do or would distort: bulk-loading a million jobs and
// counting finished work while a phase runs.
type coreDB struct {
	engine string // "postgres" or "sqlite"
	dsn    string // what `dpe server --db` gets
	name   string // PostgreSQL database name (for its backends' CPU)
	admin  string // PostgreSQL: DSN of the server's admin database, when we created name
	path   string // SQLite: file
	sql    *sql.DB
}

// connect opens db.sql; call it once the server has migrated the schema.
func (db *coreDB) connect() error {
	var err error
	if db.engine == "postgres" {
		db.sql, err = sql.Open("pgx", db.dsn)
		if err == nil {
			db.sql.SetMaxOpenConns(2)
		}
	} else {
		db.sql, err = sqliteOpen(db.path)
	}
	if err == nil {
		err = db.sql.Ping()
	}
	return err
}

// count runs a SELECT count(*) ... statement. The counts the phases poll
// are on state = '<final state>', which both engines answer from their
// (state, id) index reading only the rows in that state, however long the
// queue. (Not through GET /v1/jobs: its page query, ORDER BY id DESC with
// state = ANY(...), walks the primary key backwards on PostgreSQL 15 and
// reads through the whole queue to find the newest finished job.)
func (db *coreDB) count(ctx context.Context, query string) (int64, error) {
	var n int64
	err := db.sql.QueryRowContext(ctx, query).Scan(&n)
	return n, err
}

// openCoreDB resolves one -db entry: "postgres" makes a fresh database
// dpe_bench_<random> on the PostgreSQL server named by admin, "sqlite" a
// fresh file in dir; anything else is used as a DSN as it is (and neither
// created nor dropped).
func openCoreDB(ctx context.Context, spec, admin, dir string) (*coreDB, error) {
	switch {
	case spec == "postgres":
		name := "dpe_bench_" + randomHex()
		if err := pgExec(ctx, admin, "CREATE DATABASE "+name); err != nil {
			return nil, fmt.Errorf("create database %s: %w", name, err)
		}
		dsn, err := pgWithDatabase(admin, name)
		if err != nil {
			return nil, err
		}
		return &coreDB{engine: "postgres", dsn: dsn, name: name, admin: admin}, nil
	case spec == "sqlite":
		p := filepath.Join(dir, "core-"+randomHex()+".db")
		return &coreDB{engine: "sqlite", dsn: "sqlite:" + p, path: p}, nil
	case strings.HasPrefix(spec, "sqlite:"):
		return &coreDB{engine: "sqlite", dsn: spec, path: strings.TrimPrefix(spec, "sqlite:")}, nil
	case strings.HasPrefix(spec, "postgres://"), strings.HasPrefix(spec, "postgresql://"):
		u, err := url.Parse(spec)
		if err != nil {
			return nil, err
		}
		return &coreDB{engine: "postgres", dsn: spec, name: strings.TrimPrefix(u.Path, "/")}, nil
	}
	return nil, fmt.Errorf("-db %q: want postgres, sqlite, sqlite:PATH or postgres:// URL", spec)
}

// drop removes a database the bench created. SQLite files go with the
// temporary directory.
func (db *coreDB) drop() error {
	if db.sql != nil {
		db.sql.Close()
	}
	if db.admin == "" {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// FORCE: a connection left behind by a killed process must not keep
	// the database alive.
	return pgExec(ctx, db.admin, "DROP DATABASE IF EXISTS "+db.name+" WITH (FORCE)")
}

func randomHex() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return fmt.Sprintf("%x", b)
}

// pgExec runs one statement on a short-lived connection (CREATE/DROP
// DATABASE cannot run in a transaction).
func pgExec(ctx context.Context, dsn, stmt string) error {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	_, err = conn.Exec(ctx, stmt)
	return err
}

// pgWithDatabase returns the postgres:// URL dsn pointing at database name.
func pgWithDatabase(dsn, name string) (string, error) {
	u, err := url.Parse(dsn)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return "", fmt.Errorf("-pg %q: want a postgres:// URL", dsn)
	}
	u.Path, u.RawPath = "/"+name, ""
	return u.String(), nil
}

// sqliteOpen opens the SQLite file with the pragmas of dpe's own writer
// (busy timeout, synchronous FULL, WAL) and one connection.
func sqliteOpen(path string) (*sql.DB, error) {
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "synchronous(FULL)")
	q.Add("_pragma", "journal_mode(WAL)")
	db, err := sql.Open("sqlite", path+"?"+q.Encode())
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	return db, nil
}

// bulkQueue inserts n queued noop jobs straight into the jobs table of the
// migrated core database, as a submit would leave them (priority 0, no
// key, the default attempts and back-off), and returns how long it took.
// PostgreSQL: one INSERT ... SELECT generate_series, then VACUUM ANALYZE,
// which autovacuum would do on its own after such a load, so the claim
// plan is the one a long-running plant gets. SQLite: WITH RECURSIVE in
// chunks of 100,000 rows per transaction, so the server's writer (waiting
// up to its 10 s busy timeout) is never locked out for long; no ANALYZE,
// since dpe never runs one either.
func (db *coreDB) bulkQueue(ctx context.Context, n int) (time.Duration, error) {
	start := time.Now()
	now := time.Now()
	switch db.engine {
	case "postgres":
		if _, err := db.sql.ExecContext(ctx, `
INSERT INTO jobs (type, params, priority, state, max_attempts, backoff_ns, backoff_max_ns,
                  run_after, created_at, updated_at)
SELECT 'noop', '{}', 0, 'queued', 3, 2000000000, 300000000000, $1, $1, $1
FROM generate_series(1, $2)`, now, n); err != nil {
			return 0, fmt.Errorf("bulk insert: %w", err)
		}
		if _, err := db.sql.ExecContext(ctx, `VACUUM ANALYZE jobs`); err != nil {
			return 0, fmt.Errorf("vacuum analyze: %w", err)
		}
	case "sqlite":
		ms := now.UnixMilli()
		for left := n; left > 0; left -= 100_000 {
			if _, err := db.sql.ExecContext(ctx, `
WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < ?)
INSERT INTO jobs (type, params, priority, state, max_attempts, backoff, backoff_max,
                  run_after, created_at, updated_at)
SELECT 'noop', '{}', 0, 'queued', 3, 2000000000, 300000000000, ?, ?, ? FROM c`,
				min(left, 100_000), ms, ms, ms); err != nil {
				return 0, fmt.Errorf("bulk insert: %w", err)
			}
		}
	}
	return time.Since(start), nil
}

// deleteQueued removes the queued jobs a phase left, so the next starts
// from the depth it loads itself.
func (db *coreDB) deleteQueued(ctx context.Context) error {
	_, err := db.sql.ExecContext(ctx, `DELETE FROM jobs WHERE state = 'queued'`)
	return err
}

// Baseline is what the database does without dpe, on the same server (or
// disk) in the same run.
type Baseline struct {
	What string  `json:"what"`
	TPS  float64 `json:"tps"`
}

var tpsRe = regexp.MustCompile(`tps = ([0-9.]+) \(without initial connection time\)`)

// pgbenchBaseline runs `pgbench -N` (the TPC-B-like script without the
// contended branch/teller updates: three single-row updates or inserts and
// a select per transaction) with clients clients on a scratch database of
// the same PostgreSQL server, which it creates and drops.
func pgbenchBaseline(ctx context.Context, admin string, clients int, d time.Duration) (Baseline, error) {
	name := "dpe_bench_" + randomHex() + "_pgbench"
	if err := pgExec(ctx, admin, "CREATE DATABASE "+name); err != nil {
		return Baseline{}, err
	}
	defer func() {
		c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = pgExec(c, admin, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
	}()
	dsn, err := pgWithDatabase(admin, name)
	if err != nil {
		return Baseline{}, err
	}
	if out, err := exec.CommandContext(ctx, "pgbench", "-i", "-q", "-s", "1", dsn).CombinedOutput(); err != nil {
		return Baseline{}, fmt.Errorf("pgbench -i: %w\n%s", err, out)
	}
	c, secs := strconv.Itoa(clients), strconv.Itoa(max(1, int(d.Seconds())))
	out, err := exec.CommandContext(ctx, "pgbench", "-N", "-c", c, "-j", c, "-T", secs, dsn).CombinedOutput()
	if err != nil {
		return Baseline{}, fmt.Errorf("pgbench -N: %w\n%s", err, out)
	}
	m := tpsRe.FindSubmatch(out)
	if m == nil {
		return Baseline{}, fmt.Errorf("pgbench -N: no tps in its output:\n%s", out)
	}
	tps, _ := strconv.ParseFloat(string(m[1]), 64)
	return Baseline{What: fmt.Sprintf("pgbench -N -c %s -j %s -T %s", c, c, secs), TPS: round3(tps)}, nil
}

// sqliteBaseline inserts one row per transaction in a loop for d into a
// scratch file next to the core database, with dpe's durability settings
// (WAL, synchronous FULL): the commit rate the disk allows one writer.
func sqliteBaseline(ctx context.Context, dir string, d time.Duration) (Baseline, error) {
	db, err := sqliteOpen(filepath.Join(dir, "baseline-"+randomHex()+".db"))
	if err != nil {
		return Baseline{}, err
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, `CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL)`); err != nil {
		return Baseline{}, err
	}
	start := time.Now()
	n := 0
	for time.Since(start) < d {
		if _, err := db.ExecContext(ctx, `INSERT INTO t (v) VALUES (?)`, "x"); err != nil {
			return Baseline{}, err
		}
		n++
	}
	if n == 0 {
		return Baseline{}, errors.New("sqlite baseline: no insert")
	}
	return Baseline{What: "single-row INSERT loop, WAL, synchronous=FULL",
		TPS: round3(float64(n) / time.Since(start).Seconds())}, nil
}
