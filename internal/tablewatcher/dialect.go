package tablewatcher

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"

	"github.com/dpe-engine/dpe/internal/dsn"

	// The drivers of the content databases a watcher reads.
	_ "github.com/jackc/pgx/v5/stdlib"
	_ "modernc.org/sqlite"
)

// dialect is what differs between the content database engines: how to
// reach them, quote identifiers, number placeholders and read the catalog.
type dialect int

const (
	postgres dialect = iota + 1
	mariadb          // MySQL or MariaDB
	sqlite
)

func (d dialect) String() string {
	switch d {
	case postgres:
		return "postgres"
	case mariadb:
		return "mysql"
	case sqlite:
		return "sqlite"
	}
	return "unknown"
}

// source is a parsed content database DSN.
type source struct {
	dialect  dialect
	driver   string // database/sql driver name
	dsn      string // in the driver's own form
	redacted string // for messages: the DSN without its password
}

// sqliteBusyTimeout is how long a read waits for a writer's lock (a
// checkpoint, or a database not in WAL mode) before failing.
const sqliteBusyTimeout = 5000 // ms

// parseSource reads a watcher's dsn: postgres:// (or postgresql://),
// mysql://user:password@host:port/db?param=value (TCP; query parameters
// are go-sql-driver/mysql settings; parseTime is always on so times come
// back as times), or sqlite:PATH (opened read-only; the file must exist).
func parseSource(raw string) (source, error) {
	switch {
	case strings.HasPrefix(raw, "postgres://"), strings.HasPrefix(raw, "postgresql://"):
		// Parse now so a malformed DSN is refused at start, not at the
		// first poll. pgx redacts the password in its errors.
		// Re-encoded first: pgx cuts the user info at the first '@', so a
		// password holding one would reach the server split in two.
		norm := dsn.Normalize(raw)
		if _, err := pgx.ParseConfig(norm); err != nil {
			return source{}, err
		}
		return source{dialect: postgres, driver: "pgx", dsn: norm, redacted: dsn.Redact(raw)}, nil
	case strings.HasPrefix(raw, "mysql://"):
		cfg, err := mysqlConfig(raw)
		if err != nil {
			return source{}, fmt.Errorf("%s: %w", dsn.Redact(raw), err)
		}
		return source{dialect: mariadb, driver: "mysql", dsn: cfg.FormatDSN(), redacted: dsn.Redact(raw)}, nil
	case strings.HasPrefix(raw, "sqlite:"):
		path := strings.TrimPrefix(raw, "sqlite:")
		switch {
		case path == "":
			return source{}, errors.New("sqlite: needs a file path, e.g. sqlite:/data/content.db")
		case strings.ContainsAny(path, "?#"):
			return source{}, fmt.Errorf("%q: a sqlite: path takes no parameters", raw)
		}
		// A URI filename so the database opens read-only (mode=ro): a
		// watcher never writes the content database, nor creates a
		// missing file. query_only guards against writes in any case.
		u := "file:" + (&url.URL{Path: path}).EscapedPath() +
			"?mode=ro&_pragma=busy_timeout(" + strconv.Itoa(sqliteBusyTimeout) + ")&_pragma=query_only(1)"
		return source{dialect: sqlite, driver: "sqlite", dsn: u, redacted: raw}, nil
	default:
		return source{}, fmt.Errorf("unsupported DSN %q: want postgres://..., mysql://... or sqlite:PATH", dsn.Redact(raw))
	}
}

// mysqlConfig turns a mysql:// URL into the driver's config.
func mysqlConfig(dsn string) (*mysql.Config, error) {
	u, err := url.Parse(dsn)
	if err != nil {
		return nil, errors.New("not a valid URL")
	}
	if u.Host == "" {
		return nil, errors.New("no host")
	}
	db := strings.TrimPrefix(u.Path, "/")
	if db == "" || strings.Contains(db, "/") {
		return nil, errors.New("want one database name as the path, e.g. mysql://user@host:3306/content")
	}
	// The driver reads (and checks) its own settings from a DSN's query;
	// reuse that instead of mapping them one by one.
	cfg, err := mysql.ParseDSN("/?" + u.RawQuery)
	if err != nil {
		return nil, err
	}
	cfg.User = u.User.Username()
	cfg.Passwd, _ = u.User.Password()
	cfg.Net = "tcp"
	cfg.Addr = u.Host
	if u.Port() == "" {
		cfg.Addr = net.JoinHostPort(u.Hostname(), "3306")
	}
	cfg.DBName = db
	// Times as time.Time, so versions and keys bind back with their type.
	cfg.ParseTime = true
	if cfg.Timeout == 0 {
		cfg.Timeout = 10 * time.Second
	}
	return cfg, nil
}

// quote quotes an identifier that matched identRe. Doubling the quote
// character is redundant after that check but keeps quote safe on its own.
func (d dialect) quote(id string) string {
	if d == mariadb {
		return "`" + strings.ReplaceAll(id, "`", "``") + "`"
	}
	return `"` + strings.ReplaceAll(id, `"`, `""`) + `"`
}

// quoteTable quotes table or schema.table.
func (d dialect) quoteTable(schema, table string) string {
	if schema == "" {
		return d.quote(table)
	}
	return d.quote(schema) + "." + d.quote(table)
}

// placeholder is the n-th (1-based) bind parameter.
func (d dialect) placeholder(n int) string {
	if d == postgres {
		return "$" + strconv.Itoa(n)
	}
	return "?"
}

// raw returns an expression that reads column q (quoted) exactly as stored,
// or "" when the column itself does. modernc.org/sqlite turns text in
// DATE/DATETIME/TIMESTAMP columns into time.Time, which would bind back
// in another text format and compare wrongly; an expression has no
// declared type, so +col (SQLite's no-op unary plus) comes back as
// stored. The other drivers return values that bind back as they were.
func (d dialect) raw(q string) string {
	if d == sqlite {
		return "+" + q
	}
	return ""
}

// foldsCase reports whether column names match case-insensitively.
func (d dialect) foldsCase() bool { return d != postgres }

// columnsQuery lists the columns of schema.table (schema "": the one an
// unqualified name resolves to) in table order; no rows when the table
// does not exist. Names are bound, never spliced.
func (d dialect) columnsQuery(schema, table string) (string, []any) {
	switch d {
	case postgres:
		// to_regclass resolves the name like a query would (search_path)
		// and gives NULL instead of an error when there is no such table.
		return `SELECT a.attname FROM pg_catalog.pg_attribute a
WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attnum`, []any{d.quoteTable(schema, table)}
	case mariadb:
		var s any // NULL: the connection's database
		if schema != "" {
			s = schema
		}
		return `SELECT COLUMN_NAME FROM information_schema.COLUMNS
WHERE TABLE_SCHEMA = COALESCE(?, DATABASE()) AND TABLE_NAME = ?
ORDER BY ORDINAL_POSITION`, []any{s, table}
	default:
		if schema == "" {
			return `SELECT name FROM pragma_table_info(?) ORDER BY cid`, []any{table}
		}
		return `SELECT name FROM pragma_table_info(?, ?) ORDER BY cid`, []any{table, schema}
	}
}
