package tablewatcher

import (
	"bytes"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// row is one scanned row.
type row struct {
	data        map[string]any // JSON-friendly: ObservedItem.Data and the filter's row
	key         []any          // raw key values, bound to page past the row
	keyJSON     string         // ObservedItem.Key: canonical JSON of the key values
	version     any            // raw version value, bound as a cursor; nil: NULL or none
	versionKey  string         // canonical form of version, to compare cursors
	fingerprint string         // ObservedItem.Fingerprint
}

// scanRows reads every row of rows (a page) as planned by p.
func scanRows(rows *sql.Rows, p *plan) ([]row, error) {
	cts, err := rows.ColumnTypes()
	if err != nil {
		return nil, fmt.Errorf("column types: %w", err)
	}
	types := make([]string, len(cts))
	for i, ct := range cts {
		types[i] = strings.ToUpper(ct.DatabaseTypeName())
	}
	vals := make([]any, len(cts))
	ptrs := make([]any, len(cts))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	var out []row
	for rows.Next() {
		clear(vals)
		if err := rows.Scan(ptrs...); err != nil {
			return nil, fmt.Errorf("scan: %w", err)
		}
		r, err := p.row(vals, types)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

// row turns one row's driver values into a row.
func (p *plan) row(vals []any, types []string) (row, error) {
	r := row{data: make(map[string]any, len(p.cols))}
	for i, c := range p.cols {
		r.data[c] = jsonValue(vals[i], types[i])
	}
	keyData := make([]any, len(p.keyCol))
	r.key = make([]any, len(p.keyRaw))
	for i := range p.keyCol {
		keyData[i] = r.data[p.cols[p.keyCol[i]]]
		r.key[i] = bindValue(vals[p.keyRaw[i]], types[p.keyRaw[i]])
	}
	var err error
	if r.keyJSON, err = canonicalJSON(keyData); err != nil {
		return row{}, fmt.Errorf("key: %w", err)
	}
	if p.verRaw >= 0 && vals[p.verRaw] != nil {
		r.version = bindValue(vals[p.verRaw], types[p.verRaw])
		raw, typ, err := encodeCursor(r.version)
		if err != nil {
			return row{}, fmt.Errorf("row %s: version: %w", r.keyJSON, err)
		}
		r.versionKey = typ + ":" + string(raw)
		r.fingerprint = canonicalString(r.data[p.cols[p.verCol]])
		return r, nil
	}
	// No version (column or value): the row's content is its fingerprint.
	j, err := canonicalJSON(r.data)
	if err != nil {
		return row{}, fmt.Errorf("row %s: %w", r.keyJSON, err)
	}
	sum := sha256.Sum256([]byte(j))
	r.fingerprint = hex.EncodeToString(sum[:])
	return r, nil
}

// isIntType reports integer column types whose values a driver may hand
// over as decimal text (go-sql-driver/mysql does for BIGINT UNSIGNED).
func isIntType(t string) bool {
	switch strings.TrimPrefix(t, "UNSIGNED ") {
	case "TINYINT", "SMALLINT", "MEDIUMINT", "INT", "INTEGER", "BIGINT", "YEAR":
		return true
	}
	return false
}

// isBinaryType reports column types that hold bytes, not text.
func isBinaryType(t string) bool {
	return strings.Contains(t, "BINARY") || strings.Contains(t, "BLOB") || t == "BYTEA"
}

// bindValue is a driver value as it binds back in a query, comparing like
// the column does: text as a string (MySQL would compare []byte bytewise,
// ignoring the column's collation that ORDER BY uses), bytes as bytes,
// integers from text as integers.
func bindValue(v any, typ string) any {
	switch x := v.(type) {
	case []byte:
		if isIntType(typ) {
			if n, ok := parseInt(x); ok {
				return n
			}
		}
		if isBinaryType(typ) || !utf8.Valid(x) {
			return bytes.Clone(x)
		}
		return string(x)
	case float32:
		return float64(x) // exact: binds back equal
	case int:
		return int64(x)
	case int32:
		return int64(x)
	case int16:
		return int64(x)
	case int8:
		return int64(x)
	case uint32:
		return int64(x)
	}
	return v
}

// parseInt reads decimal digits as int64, or uint64 when too big.
func parseInt(b []byte) (any, bool) {
	if n, err := strconv.ParseInt(string(b), 10, 64); err == nil {
		return n, true
	}
	if n, err := strconv.ParseUint(string(b), 10, 64); err == nil {
		return n, true
	}
	return nil, false
}

// jsonValue is a driver value as JSON-friendly data: times as RFC 3339 UTC
// strings (so copies in other time zones agree), bytes as a string when
// they are UTF-8 and base64 otherwise, numbers as numbers (decimals, which
// a float would round, as strings), JSON columns decoded.
func jsonValue(v any, typ string) any {
	switch x := v.(type) {
	case nil:
		return nil
	case []byte:
		if isIntType(typ) {
			if n, ok := parseInt(x); ok {
				return n
			}
		}
		if typ == "JSON" || typ == "JSONB" {
			if d, ok := decodeJSON(x); ok {
				return d
			}
		}
		if utf8.Valid(x) {
			return string(x)
		}
		return base64.StdEncoding.EncodeToString(x)
	case string:
		if typ == "JSON" || typ == "JSONB" {
			if d, ok := decodeJSON([]byte(x)); ok {
				return d
			}
		}
		return x
	case time.Time:
		return x.UTC().Format(time.RFC3339Nano)
	case float32:
		return float32Value(x)
	case float64:
		if typ == "FLOAT4" { // PostgreSQL real, widened by pgx: print as the float32 it is
			return float32Value(float32(x))
		}
		return floatValue(x)
	case int:
		return int64(x)
	case int32:
		return int64(x)
	case int16:
		return int64(x)
	case int8:
		return int64(x)
	case uint32:
		return int64(x)
	}
	return v
}

// float32Value is f as the float64 with f's shortest decimal form (0.1,
// not 0.10000000149011612).
func float32Value(f float32) any {
	if math.IsNaN(float64(f)) || math.IsInf(float64(f), 0) {
		return floatValue(float64(f))
	}
	d, _ := strconv.ParseFloat(strconv.FormatFloat(float64(f), 'g', -1, 32), 64)
	return d
}

// floatValue is f, or its name when JSON has no number for it.
func floatValue(f float64) any {
	switch {
	case math.IsNaN(f):
		return "NaN"
	case math.IsInf(f, 1):
		return "+Inf"
	case math.IsInf(f, -1):
		return "-Inf"
	}
	return f
}

// decodeJSON decodes a JSON column, keeping numbers exact.
func decodeJSON(b []byte) (any, bool) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil || dec.More() {
		return nil, false
	}
	return v, true
}

// canonicalJSON encodes v deterministically: map keys sorted (as
// encoding/json does), no HTML escaping, no trailing newline.
func canonicalJSON(v any) (string, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return "", err
	}
	return strings.TrimSuffix(b.String(), "\n"), nil
}

// canonicalString is a JSON-friendly value as a fingerprint: a string as
// is, anything else as canonical JSON.
func canonicalString(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	s, err := canonicalJSON(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return s
}
