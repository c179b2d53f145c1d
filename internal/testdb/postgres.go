package testdb

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

// Postgres returns the DSN of a new, empty PostgreSQL database on the server
// named by DPE_TEST_POSTGRES, dropped (WITH (FORCE), so connections left
// open do not block it) when the test and its subtests end. The DSN has the
// same form and settings as the variable, with only the database replaced,
// so it can be passed to pgx or to the dpe store.
//
// Unset variable: the test is skipped (fails with DPE_TEST_STRICT=1).
// Unreachable server: the test fails.
func Postgres(t testing.TB) string {
	t.Helper()
	server := serverURL(t, EnvPostgres, "PostgreSQL", "postgres://")
	name := newName()
	dsn, err := postgresWithDatabase(server, name)
	if err != nil {
		t.Fatalf("testdb: %s: %v", EnvPostgres, err)
	}
	if err := postgresExec(server, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("testdb: %s is set, but creating a database there failed: %v", EnvPostgres, err)
	}
	t.Cleanup(func() {
		if err := postgresExec(server, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("testdb: drop database %s: %v", name, err)
		}
	})
	return dsn
}

// postgresExec runs one statement on its own short-lived connection (CREATE
// and DROP DATABASE cannot run inside a transaction or on a connection to
// the database being dropped; the connection is not kept so tests do not
// hold server connections).
func postgresExec(server, sql string) error {
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	conn, err := pgx.Connect(ctx, server)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, sql)
	return err
}

// postgresWithDatabase returns dsn pointing at database name: the path of a
// postgres:// URL, or a dbname= setting appended to a key=value string
// (where the last setting of a key wins).
func postgresWithDatabase(dsn, name string) (string, error) {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			return "", fmt.Errorf("not a valid URL: %w", err)
		}
		u.Path = "/" + name
		u.RawPath = ""
		return u.String(), nil
	}
	if !strings.Contains(dsn, "=") {
		return "", fmt.Errorf("%q is neither a postgres:// URL nor key=value settings", dsn)
	}
	return dsn + " dbname=" + name, nil
}
