package tablewatcher

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// prepare connects, checks that the table and every configured column
// exist and builds the plan, once; later calls return at once.
func (x *watch) prepare(ctx context.Context) error {
	if x.plan != nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, queryTimeout)
	defer cancel()
	if err := x.db.PingContext(ctx); err != nil {
		return fmt.Errorf("%s: connect to %s: %w", x.label(), x.src.redacted, err)
	}
	names, err := x.tableColumns(ctx)
	if err != nil {
		return fmt.Errorf("%s: read the columns of table %s: %w", x.label(), x.cfg.Table, err)
	}
	if len(names) == 0 {
		return fmt.Errorf("%s: table %s not found in %s", x.label(), x.cfg.Table, x.src.redacted)
	}

	var errs []error
	// resolve finds a configured column in the table, in the catalog's
	// spelling (MySQL and SQLite match names case-insensitively).
	resolve := func(col, field string) string {
		for _, n := range names {
			if n == col {
				return n
			}
		}
		if x.src.dialect.foldsCase() {
			for _, n := range names {
				if strings.EqualFold(n, col) {
					return n
				}
			}
		}
		errs = append(errs, fmt.Errorf("%s: column %q not found in table %s (%s)", x.label(), col, x.cfg.Table, field))
		return ""
	}
	var cols []string
	add := func(c string) {
		if c == "" {
			return
		}
		for _, have := range cols {
			if have == c {
				return
			}
		}
		cols = append(cols, c)
	}
	if len(x.cfg.Columns) == 0 {
		for _, n := range names {
			// Only names a query can carry quoted; others cannot be read
			// (and are not needed unless configured, which would fail
			// validation).
			if identRe.MatchString(n) {
				add(n)
			}
		}
	}
	for _, c := range x.cfg.Columns {
		add(resolve(c, "columns"))
	}
	key := make([]string, len(x.cfg.Key))
	for i, k := range x.cfg.Key {
		key[i] = resolve(k, "key")
		add(key[i])
	}
	version := ""
	if x.cfg.VersionColumn != "" {
		version = resolve(x.cfg.VersionColumn, "version_column")
		add(version)
	}
	for _, c := range x.cfg.filterCols {
		add(resolve(c, "filter"))
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}

	p := buildPlan(x.src.dialect, x.schema, x.table, cols, key, version, x.pageSize)
	// Preparing every query now proves the SQL and the privileges before
	// the first poll.
	for _, q := range []string{p.fullFirst, p.fullNext, p.incrAll, p.incrFirst, p.incrNext, p.maxVersion} {
		if q == "" {
			continue
		}
		if _, err := x.stmt(ctx, q); err != nil {
			x.dropPlan()
			return fmt.Errorf("%s: prepare a query on table %s: %w", x.label(), x.cfg.Table, err)
		}
	}
	x.plan = &p
	x.log.Debug("table watcher prepared", "columns", cols, "key", key, "version_column", version)
	return nil
}

// tableColumns lists the table's columns from the catalog; none when the
// table does not exist.
func (x *watch) tableColumns(ctx context.Context) ([]string, error) {
	if x.src.dialect == sqlite && x.schema != "" {
		// pragma_table_info fails on an unknown schema (an attached
		// database name) instead of returning nothing.
		var n int
		err := x.db.QueryRowContext(ctx, `SELECT count(*) FROM pragma_database_list WHERE name = ?`, x.schema).Scan(&n)
		if err != nil || n == 0 {
			return nil, err
		}
	}
	q, args := x.src.dialect.columnsQuery(x.schema, x.table)
	rows, err := x.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, err
		}
		names = append(names, n)
	}
	return names, rows.Err()
}
