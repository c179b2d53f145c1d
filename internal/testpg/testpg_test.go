package testpg

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// TestClusterRestart: a new cluster serves its database; while stopped it
// refuses connections; after StartAgain and Restart the data is still
// there, on the same DSN.
func TestClusterRestart(t *testing.T) {
	c := Start(t)
	ctx := context.Background()
	execSQL(t, c.DSN(), "CREATE TABLE kept (v int); INSERT INTO kept VALUES (42)")

	c.Stop()
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if conn, err := pgx.Connect(cctx, c.DSN()); err == nil {
		conn.Close(ctx)
		t.Fatal("connected to a stopped cluster")
	}
	c.StartAgain()
	if got := count(t, c.DSN()); got != 1 {
		t.Fatalf("after StartAgain: %d rows, want 1", got)
	}
	c.Restart(100 * time.Millisecond)
	if got := count(t, c.DSN()); got != 1 {
		t.Fatalf("after Restart: %d rows, want 1", got)
	}
}

func execSQL(t *testing.T, dsn, sql string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql); err != nil {
		t.Fatal(err)
	}
}

func count(t *testing.T, dsn string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var n int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM kept WHERE v = 42").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestRunAsPostgres: as root, commands run as the user postgres, through
// runuser and through the su fallback alike.
func TestRunAsPostgres(t *testing.T) {
	b := findBinaries(t)
	if !b.asRoot {
		t.Skip("not root: the programs run as the test's own user")
	}
	dir := t.TempDir()
	b.prepareDir(t, dir)
	viaSu := b
	viaSu.runuser = ""
	if viaSu.su, _ = lookPath("su"); viaSu.su == "" {
		t.Skip("no su")
	}
	for name, bb := range map[string]binaries{"runuser": b, "su": viaSu} {
		if b.runuser == "" && name == "runuser" {
			continue
		}
		out, err := bb.shell(dir, "id -un").CombinedOutput()
		if err != nil || strings.TrimSpace(string(out)) != "postgres" {
			t.Errorf("%s: id -un: %q, %v", name, out, err)
		}
		out, err = bb.command(dir, "pg_ctl", "--version").CombinedOutput()
		if err != nil || !strings.Contains(string(out), "PostgreSQL") {
			t.Errorf("%s: pg_ctl --version: %q, %v", name, out, err)
		}
	}
}
