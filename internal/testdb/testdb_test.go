package testdb

import (
	"context"
	"database/sql"
	"fmt"
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// recorder is a testing.TB that records Skip and Fatal instead of ending the
// real test, so the helpers' refusals can be checked. Cleanups run when the
// helper returns. Anything else goes to the embedded real test.
type recorder struct {
	testing.TB
	mu       sync.Mutex
	skipped  string
	fatal    string
	errors   []string
	cleanups []func()
}

func (r *recorder) Helper() {}

func (r *recorder) Skip(args ...any) {
	r.mu.Lock()
	r.skipped = fmt.Sprint(args...)
	r.mu.Unlock()
	runtime.Goexit()
}

func (r *recorder) Fatal(args ...any) {
	r.mu.Lock()
	r.fatal = fmt.Sprint(args...)
	r.mu.Unlock()
	runtime.Goexit()
}

func (r *recorder) Fatalf(format string, args ...any) { r.Fatal(fmt.Sprintf(format, args...)) }

func (r *recorder) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errors = append(r.errors, fmt.Sprintf(format, args...))
}

func (r *recorder) Cleanup(fn func()) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.cleanups = append(r.cleanups, fn)
}

// run calls helper with a recorder on its own goroutine (Skip and Fatal end
// that goroutine, as they do a test's), then runs the cleanups.
func run(t *testing.T, helper func(testing.TB) string) (*recorder, string) {
	t.Helper()
	r := &recorder{TB: t}
	var got string
	done := make(chan struct{})
	go func() {
		defer close(done)
		got = helper(r)
	}()
	<-done
	for i := len(r.cleanups) - 1; i >= 0; i-- {
		r.cleanups[i]()
	}
	for _, e := range r.errors {
		t.Errorf("helper reported: %s", e)
	}
	return r, got
}

// closedPort returns a local TCP address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func TestUnsetSkipsOrFailsWhenStrict(t *testing.T) {
	for _, c := range []struct {
		env    string
		helper func(testing.TB) string
		want   string
	}{
		{EnvPostgres, Postgres, "DPE_TEST_POSTGRES not set: skipping PostgreSQL test; set it to a postgres:// URL to run"},
		{EnvMySQL, MySQL, "DPE_TEST_MYSQL not set: skipping MySQL test; set it to a mysql:// URL to run"},
	} {
		t.Run(c.env, func(t *testing.T) {
			t.Setenv(c.env, "")
			t.Setenv(EnvStrict, "")
			r, _ := run(t, c.helper)
			if r.skipped != c.want || r.fatal != "" {
				t.Errorf("unset, not strict: skipped %q, fatal %q; want skip %q", r.skipped, r.fatal, c.want)
			}
			t.Setenv(EnvStrict, "1")
			r, _ = run(t, c.helper)
			if r.fatal != c.want || r.skipped != "" {
				t.Errorf("unset, strict: skipped %q, fatal %q; want fatal %q", r.skipped, r.fatal, c.want)
			}
		})
	}
}

func TestUnreachableFails(t *testing.T) {
	addr := closedPort(t)
	for _, c := range []struct {
		env, value string
		helper     func(testing.TB) string
	}{
		{EnvPostgres, "postgres://postgres@" + addr + "/test?sslmode=disable&connect_timeout=5", Postgres},
		{EnvMySQL, "mysql://root@" + addr + "/test", MySQL},
	} {
		t.Run(c.env, func(t *testing.T) {
			t.Setenv(c.env, c.value)
			t.Setenv(EnvStrict, "")
			r, got := run(t, c.helper)
			if r.fatal == "" || r.skipped != "" || got != "" {
				t.Fatalf("unreachable server: fatal %q, skipped %q, returned %q; want a failure", r.fatal, r.skipped, got)
			}
			if !strings.Contains(r.fatal, c.env) {
				t.Errorf("failure %q does not name %s", r.fatal, c.env)
			}
		})
	}
}

func TestPostgresWithDatabase(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"postgres://u:p@h:5432/test?sslmode=disable", "postgres://u:p@h:5432/dpe_t_x?sslmode=disable"},
		{"postgresql://h/", "postgresql://h/dpe_t_x"},
		{"postgres://h", "postgres://h/dpe_t_x"},
		{"host=h user=u dbname=test", "host=h user=u dbname=test dbname=dpe_t_x"},
	} {
		got, err := postgresWithDatabase(c.in, "dpe_t_x")
		if err != nil || got != c.want {
			t.Errorf("postgresWithDatabase(%q) = %q, %v; want %q", c.in, got, err, c.want)
		}
	}
	if _, err := postgresWithDatabase("just-a-word", "x"); err == nil {
		t.Error("postgresWithDatabase accepted a DSN that is neither form")
	}
	// The key=value form really selects the last dbname.
	cfg, err := pgx.ParseConfig("host=h user=u dbname=test dbname=dpe_t_x")
	if err != nil || cfg.Database != "dpe_t_x" {
		t.Errorf("last dbname does not win: %v, %v", cfg, err)
	}
}

func TestMySQLConfig(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"mysql://root@127.0.0.1:3306/test", "root@tcp(127.0.0.1:3306)/test?timeout=10s"},
		{"mysql://u:p%40ss@db/content?parseTime=true", "u:p@ss@tcp(db:3306)/content?parseTime=true&timeout=10s"},
		{"root@tcp(h:3307)/x?timeout=2s", "root@tcp(h:3307)/x?timeout=2s"},
	} {
		cfg, err := mysqlConfig(c.in)
		if err != nil {
			t.Errorf("mysqlConfig(%q): %v", c.in, err)
			continue
		}
		if got := cfg.FormatDSN(); got != c.want {
			t.Errorf("mysqlConfig(%q) = %q, want %q", c.in, got, c.want)
		}
	}
	for _, bad := range []string{"mysql:///nohost", "mysql://h/db?parseTime=maybe"} {
		if _, err := mysqlConfig(bad); err == nil {
			t.Errorf("mysqlConfig(%q) accepted", bad)
		}
	}
}

func TestPostgres(t *testing.T) {
	server := serverURL(t, EnvPostgres, "PostgreSQL", "postgres://")
	var names [2]string
	t.Run("fresh", func(t *testing.T) {
		for i := range names {
			dsn := Postgres(t)
			ctx := t.Context()
			conn, err := pgx.Connect(ctx, dsn)
			if err != nil {
				t.Fatalf("connect to the new database: %v", err)
			}
			if err := conn.QueryRow(ctx, `SELECT current_database()`).Scan(&names[i]); err != nil {
				t.Fatal(err)
			}
			var tables int
			if err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_tables WHERE schemaname = 'public'`).Scan(&tables); err != nil {
				t.Fatal(err)
			}
			if tables != 0 {
				t.Errorf("new database has %d tables", tables)
			}
			if _, err := conn.Exec(ctx, `CREATE TABLE t (x int)`); err != nil {
				t.Fatalf("new database is not writable: %v", err)
			}
			// Left open on purpose: the drop must not be blocked by it.
			t.Cleanup(func() { conn.Close(context.Background()) })
		}
		if names[0] == names[1] || !strings.HasPrefix(names[0], "dpe_t_") {
			t.Fatalf("databases %q and %q: want two distinct dpe_t_ databases", names[0], names[1])
		}
	})
	conn, err := pgx.Connect(t.Context(), server)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var left int
	if err := conn.QueryRow(t.Context(), `SELECT count(*) FROM pg_database WHERE datname = ANY($1)`, names[:]).Scan(&left); err != nil {
		t.Fatal(err)
	}
	if left != 0 {
		t.Errorf("%d of the test databases %v still exist after the test", left, names)
	}
}

func TestMySQL(t *testing.T) {
	server := serverURL(t, EnvMySQL, "MySQL", "mysql://")
	var names [2]string
	t.Run("fresh", func(t *testing.T) {
		for i := range names {
			cfg, err := mysql.ParseDSN(MySQL(t))
			if err != nil {
				t.Fatalf("MySQL returned a DSN the driver cannot parse: %v", err)
			}
			names[i] = cfg.DBName
			connector, err := mysql.NewConnector(cfg)
			if err != nil {
				t.Fatal(err)
			}
			db := sql.OpenDB(connector)
			var current string
			if err := db.QueryRowContext(t.Context(), `SELECT DATABASE()`).Scan(&current); err != nil {
				t.Fatalf("query the new database: %v", err)
			}
			if current != cfg.DBName {
				t.Errorf("connected to %q, want %q", current, cfg.DBName)
			}
			if _, err := db.ExecContext(t.Context(), `CREATE TABLE t (x int)`); err != nil {
				t.Fatalf("new database is not writable: %v", err)
			}
			db.Close()
		}
		if names[0] == names[1] || !strings.HasPrefix(names[0], "dpe_t_") {
			t.Fatalf("databases %q and %q: want two distinct dpe_t_ databases", names[0], names[1])
		}
	})
	cfg, err := mysqlConfig(server)
	if err != nil {
		t.Fatal(err)
	}
	cfg.DBName = ""
	connector, err := mysql.NewConnector(cfg)
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(connector)
	defer db.Close()
	var left int
	err = db.QueryRowContext(t.Context(),
		`SELECT count(*) FROM information_schema.schemata WHERE schema_name IN (?, ?)`, names[0], names[1]).Scan(&left)
	if err != nil {
		t.Fatal(err)
	}
	if left != 0 {
		t.Errorf("%d of the test databases %v still exist after the test", left, names)
	}
}
