package tablewatcher

import (
	"strconv"
	"strings"
)

// plan is the SQL of one watcher, built once from the catalog's column
// names. Every identifier in it is quoted; every value is a placeholder.
type plan struct {
	cols   []string // data columns (catalog spelling), in select order
	keyCol []int    // index in cols of each key column
	verCol int      // index in cols of the version column; -1 without
	keyRaw []int    // index in a scanned row of each key's raw value
	verRaw int      // index in a scanned row of the version's raw value; -1 without

	// Full pass pages in key order: the first one, then the ones after
	// the last key seen.
	fullFirst, fullNext string
	// Incremental pages in (version, key) order: all versions (no cursor
	// yet), versions from the cursor on, then after the last (version,
	// key) seen.
	incrAll, incrFirst, incrNext string
	// maxVersion reads the current highest version.
	maxVersion string
	// fullNextArgs and incrNextArgs say which value of the last row's
	// (key...) resp. (version, key...) each placeholder takes.
	fullNextArgs, incrNextArgs []int
}

// buildPlan writes the queries for the table schema.table, reading cols
// (which include the key columns and the version column, if any), pages
// of pageSize rows. key and version use the catalog's spelling.
func buildPlan(d dialect, schema, table string, cols, key []string, version string, pageSize int) plan {
	p := plan{cols: cols, verCol: -1, verRaw: -1}
	idx := func(name string) int {
		for i, c := range cols {
			if c == name {
				return i
			}
		}
		panic("table: column " + name + " not among the selected ones") // buildPlan's callers add them
	}
	sel := make([]string, 0, len(cols)+len(key)+1)
	for _, c := range cols {
		sel = append(sel, d.quote(c))
	}
	// rawOf returns where the raw value of column i is read, adding a raw
	// expression to the select list when the dialect needs one.
	rawOf := func(i int) int {
		if r := d.raw(d.quote(cols[i])); r != "" {
			sel = append(sel, r)
			return len(sel) - 1
		}
		return i
	}
	qkey := make([]string, len(key))
	notNull := make([]string, len(key))
	for i, k := range key {
		c := idx(k)
		p.keyCol = append(p.keyCol, c)
		p.keyRaw = append(p.keyRaw, rawOf(c))
		qkey[i] = d.quote(k)
		// A row with a NULL key cannot be paged past or named: skip it
		// everywhere, so every query sees the same rows.
		notNull[i] = qkey[i] + " IS NOT NULL"
	}
	if version != "" {
		p.verCol = idx(version)
		p.verRaw = rawOf(p.verCol)
	}

	from := d.quoteTable(schema, table)
	head := "SELECT " + strings.Join(sel, ", ") + " FROM " + from + " WHERE " + strings.Join(notNull, " AND ")
	limit := " LIMIT " + strconv.Itoa(pageSize)
	byKey := " ORDER BY " + strings.Join(qkey, ", ")

	cond, args := keyset(d, qkey)
	p.fullFirst = head + byKey + limit
	p.fullNext = head + " AND " + cond + byKey + limit
	p.fullNextArgs = args

	if version != "" {
		qv := d.quote(version)
		byVer := " ORDER BY " + qv + ", " + strings.Join(qkey, ", ")
		p.incrAll = head + " AND " + qv + " IS NOT NULL" + byVer + limit
		// >= and not >: rows that share the cursor's version but were
		// committed after the last poll read it (a second-precision
		// modified time, a bulk update) are read again, not lost. The
		// server ignores the ones it has with the same fingerprint.
		p.incrFirst = head + " AND " + qv + " >= " + d.placeholder(1) + byVer + limit
		cond, args := keyset(d, append([]string{qv}, qkey...))
		p.incrNext = head + " AND " + cond + byVer + limit
		p.incrNextArgs = args
		p.maxVersion = "SELECT MAX(" + qv + ") FROM " + from
	}
	return p
}

// keyset writes "(c1, c2, ...) > (v1, v2, ...)" for the quoted columns
// cols as nested comparisons,
//
//	c1 >= ? AND (c1 > ? OR (c2 >= ? AND (c2 > ? OR c3 > ?)))
//
// which every engine understands and which leads with a range on c1 that
// an index serves (row-value comparisons are not optimised alike
// everywhere). It returns which value each placeholder takes.
func keyset(d dialect, cols []string) (string, []int) {
	var args []int
	ph := func(i int) string {
		args = append(args, i)
		return d.placeholder(len(args))
	}
	var nested func(i int) string
	nested = func(i int) string {
		c := cols[i]
		if i == len(cols)-1 {
			return c + " > " + ph(i)
		}
		lo, gt := ph(i), ph(i) // in this order: placeholders are numbered as written
		return "(" + c + " >= " + lo + " AND (" + c + " > " + gt + " OR " + nested(i+1) + "))"
	}
	s := nested(0)
	if len(cols) == 1 {
		s = "(" + s + ")"
	}
	return s, args
}
