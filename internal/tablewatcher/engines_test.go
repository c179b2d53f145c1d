package tablewatcher

import (
	"context"
	"database/sql"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"go.uber.org/goleak"

	"github.com/dpe-engine/dpe/internal/testdb"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// engine is a fresh content database of one kind: the DSN a watcher is
// given and a handle the test writes through.
type engine struct {
	name string
	d    dialect
	dsn  string
	db   *sql.DB
}

// engines lists the databases to run a test against: SQLite always,
// PostgreSQL and MariaDB/MySQL when DPE_TEST_POSTGRES / DPE_TEST_MYSQL
// name servers (skipped otherwise, failed under DPE_TEST_STRICT=1).
var engines = []struct {
	name string
	open func(t *testing.T) engine
}{
	{"sqlite", openSQLite},
	{"postgres", openPostgres},
	{"mysql", openMySQL},
}

// forEngines runs fn as a parallel subtest per engine.
func forEngines(t *testing.T, fn func(t *testing.T, e engine)) {
	t.Helper()
	for _, eng := range engines {
		t.Run(eng.name, func(t *testing.T) {
			t.Parallel()
			fn(t, eng.open(t))
		})
	}
}

func openSQLite(t *testing.T) engine {
	path := filepath.Join(t.TempDir(), "content.db")
	// The application writing the content database, in WAL mode as a
	// busy one would be.
	db, err := sql.Open("sqlite", path+"?_pragma=journal_mode(WAL)&_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	t.Cleanup(func() { db.Close() })
	return engine{name: "sqlite", d: sqlite, dsn: "sqlite:" + path, db: db}
}

func openPostgres(t *testing.T) engine {
	dsn := testdb.Postgres(t)
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return engine{name: "postgres", d: postgres, dsn: dsn, db: db}
}

func openMySQL(t *testing.T) engine {
	driverDSN := testdb.MySQL(t)
	cfg, err := mysql.ParseDSN(driverDSN)
	if err != nil {
		t.Fatal(err)
	}
	cfg.ParseTime = true
	db, err := sql.Open("mysql", cfg.FormatDSN())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	// The watcher takes the mysql:// URL form.
	u := url.URL{Scheme: "mysql", Host: cfg.Addr, Path: "/" + cfg.DBName}
	if cfg.Passwd != "" {
		u.User = url.UserPassword(cfg.User, cfg.Passwd)
	} else {
		u.User = url.User(cfg.User)
	}
	return engine{name: "mysql", d: mariadb, dsn: u.String(), db: db}
}

// exec runs a statement written with ? placeholders.
func (e engine) exec(t *testing.T, query string, args ...any) {
	t.Helper()
	if e.d == postgres {
		var b strings.Builder
		n := 0
		for _, r := range query {
			if r == '?' {
				n++
				b.WriteString("$" + strconv.Itoa(n))
				continue
			}
			b.WriteRune(r)
		}
		query = b.String()
	}
	if _, err := e.db.ExecContext(context.Background(), query, args...); err != nil {
		t.Fatalf("%s: %s: %v", e.name, query, err)
	}
}

// timeType is the column type of a modified time.
func (e engine) timeType() string {
	switch e.d {
	case postgres:
		return "timestamptz"
	case mariadb:
		return "DATETIME(6)"
	}
	return "DATETIME"
}

// ts is a modified time as the application writes it: SQLite as text like
// CURRENT_TIMESTAMP (second precision), the others as times.
func (e engine) ts(t time.Time) any {
	if e.d == sqlite {
		return t.UTC().Format("2006-01-02 15:04:05")
	}
	return t
}

// createMusic creates the table the tests watch: a composite key (text
// and integer) and a modified time.
func (e engine) createMusic(t *testing.T) {
	t.Helper()
	e.exec(t, `CREATE TABLE music (grp VARCHAR(20) NOT NULL, id INT NOT NULL, title VARCHAR(100),
		category VARCHAR(20), modified `+e.timeType()+`, PRIMARY KEY (grp, id))`)
}
