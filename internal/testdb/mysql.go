package testdb

import (
	"context"
	"database/sql"
	"fmt"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
)

// MySQL returns the DSN of a new, empty MySQL or MariaDB database on the
// server named by DPE_TEST_MYSQL, dropped when the test and its subtests
// end.
//
// DPE_TEST_MYSQL is a URL, mysql://user:password@host:port/db?param=value
// (port 3306 by default; the database in it is only used to reach the
// server; query parameters are driver settings such as tls or parseTime),
// or a DSN in the driver's own form. The result is always in the driver's
// own form, user:password@tcp(host:port)/dpe_t_...?param=value, ready for
// sql.Open("mysql", dsn) with github.com/go-sql-driver/mysql or
// mysql.ParseDSN.
//
// Unset variable: the test is skipped (fails with DPE_TEST_STRICT=1).
// Unreachable server: the test fails.
func MySQL(t testing.TB) string {
	t.Helper()
	server := serverURL(t, EnvMySQL, "MySQL", "mysql://")
	cfg, err := mysqlConfig(server)
	if err != nil {
		t.Fatalf("testdb: %s: %v", EnvMySQL, err)
	}
	name := newName()
	if err := mysqlExec(cfg, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("testdb: %s is set, but creating a database there failed: %v", EnvMySQL, err)
	}
	t.Cleanup(func() {
		if err := mysqlExec(cfg, "DROP DATABASE IF EXISTS "+name); err != nil {
			t.Errorf("testdb: drop database %s: %v", name, err)
		}
	})
	db := cfg.Clone()
	db.DBName = name
	return db.FormatDSN()
}

// mysqlConfig reads a mysql:// URL or a driver DSN into a driver config.
// A dial timeout is set when none is given, so an unreachable server fails
// the test quickly.
func mysqlConfig(s string) (*mysql.Config, error) {
	var (
		cfg *mysql.Config
		err error
	)
	if rest, ok := strings.CutPrefix(s, "mysql://"); ok {
		cfg, err = mysqlConfigFromURL("mysql://" + rest)
	} else {
		cfg, err = mysql.ParseDSN(s)
	}
	if err != nil {
		return nil, err
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 10 * time.Second
	}
	return cfg, nil
}

func mysqlConfigFromURL(s string) (*mysql.Config, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("not a valid URL: %w", err)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("%s: no host", u.Redacted())
	}
	// The driver parses its own settings (and rejects unknown values)
	// from the query part of a DSN; reuse that instead of mapping them.
	cfg, err := mysql.ParseDSN("/?" + u.RawQuery)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", u.Redacted(), err)
	}
	cfg.User = u.User.Username()
	cfg.Passwd, _ = u.User.Password()
	cfg.Net = "tcp"
	cfg.Addr = u.Host
	if u.Port() == "" {
		cfg.Addr = net.JoinHostPort(u.Hostname(), "3306")
	}
	cfg.DBName = strings.TrimPrefix(u.Path, "/")
	return cfg, nil
}

// mysqlExec runs one statement on the server of cfg (without selecting a
// database) on a connection that is closed afterwards.
func mysqlExec(cfg *mysql.Config, stmt string) error {
	admin := cfg.Clone()
	admin.DBName = ""
	connector, err := mysql.NewConnector(admin)
	if err != nil {
		return err
	}
	db := sql.OpenDB(connector)
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	_, err = db.ExecContext(ctx, stmt)
	return err
}
