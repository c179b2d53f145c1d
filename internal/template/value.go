package template

import (
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"
)

// valueKind says which field of a Value is set.
type valueKind uint8

const (
	valueLiteral valueKind = iota // lit: nil, bool, int, float64 or string
	valueInterp                   // str: a string with ${{ }}
	valueList                     // list
	valueMap                      // dict
)

// Value is a template value as written: a literal, a string with ${{ }}
// expressions, or a list or map of values. The zero Value is the literal
// nil. Values are immutable; Eval never changes them.
type Value struct {
	kind valueKind
	lit  any
	str  *interp
	list []Value
	dict map[string]Value
	dyn  bool // an expression is somewhere inside
	line int
}

// literalValue wraps a scalar literal.
func literalValue(v any, line int) Value { return Value{kind: valueLiteral, lit: v, line: line} }

// IsLiteral reports whether v holds no expression: Eval gives the same
// result in every environment.
func (v Value) IsLiteral() bool { return !v.dyn }

// Line is the source line of v (0 when unknown).
func (v Value) Line() int { return v.line }

// Keys returns the keys of a map value, sorted; nil for other values.
func (v Value) Keys() []string {
	if v.kind != valueMap {
		return nil
	}
	keys := make([]string, 0, len(v.dict))
	for k := range v.dict {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// Get returns the entry k of a map value.
func (v Value) Get(k string) (Value, bool) {
	e, ok := v.dict[k]
	return e, ok
}

// Source returns v as written: interpolated strings as their source text,
// lists as []any and maps as map[string]any. The result is a fresh copy.
func (v Value) Source() any {
	switch v.kind {
	case valueInterp:
		return v.str.src
	case valueList:
		out := make([]any, len(v.list))
		for i, e := range v.list {
			out[i] = e.Source()
		}
		return out
	case valueMap:
		out := make(map[string]any, len(v.dict))
		for k, e := range v.dict {
			out[k] = e.Source()
		}
		return out
	}
	return v.lit
}

// Eval evaluates v in env. The result is JSON-compatible: nil, bool, int,
// float64, string, []any or map[string]any. A string that is exactly one
// ${{ expr }} keeps the expression's type (durations become their string
// form, times RFC 3339 in UTC); other interpolated strings concatenate.
func (v Value) Eval(env Env) (any, error) {
	switch v.kind {
	case valueInterp:
		return v.str.eval(env)
	case valueList:
		out := make([]any, len(v.list))
		for i, e := range v.list {
			r, err := e.Eval(env)
			if err != nil {
				return nil, fmt.Errorf("[%d]: %w", i, err)
			}
			out[i] = r
		}
		return out, nil
	case valueMap:
		out := make(map[string]any, len(v.dict))
		for _, k := range v.Keys() {
			r, err := v.dict[k].Eval(env)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", k, err)
			}
			out[k] = r
		}
		return out, nil
	}
	return v.lit, nil
}

// EvalString evaluates v and stringifies the result (as in an
// interpolated string).
func (v Value) EvalString(env Env) (string, error) {
	r, err := v.Eval(env)
	if err != nil {
		return "", err
	}
	return stringify(r)
}

// EvalDuration evaluates v as a duration: a Go duration string ("1m30s"),
// positive or zero.
func (v Value) EvalDuration(env Env) (time.Duration, error) {
	r, err := v.Eval(env)
	if err != nil {
		return 0, err
	}
	s, ok := r.(string)
	if !ok {
		return 0, fmt.Errorf("want a duration such as \"30s\", got %s", typeName(r))
	}
	return parseDuration(s, true)
}

// eval evaluates an interpolated string.
func (in *interp) eval(env Env) (any, error) {
	if in.whole {
		r, err := in.parts[0].expr.Eval(env)
		if err != nil {
			return nil, err
		}
		return normalize(r, 0)
	}
	var b strings.Builder
	for _, p := range in.parts {
		if p.expr == nil {
			b.WriteString(p.text)
			continue
		}
		r, err := p.expr.Eval(env)
		if err != nil {
			return nil, err
		}
		n, err := normalize(r, 0)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p.expr.src, err)
		}
		s, err := stringify(n)
		if err != nil {
			return nil, err
		}
		b.WriteString(s)
	}
	return b.String(), nil
}

// parseDuration parses a Go duration; zero is allowed only when zeroOK.
func parseDuration(s string, zeroOK bool) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("bad duration %q: want e.g. \"30s\" or \"1h30m\"", s)
	}
	if d < 0 || (d == 0 && !zeroOK) {
		return 0, fmt.Errorf("duration %q must be positive", s)
	}
	return d, nil
}

// maxDepth bounds the nesting of values (and of activities).
const maxDepth = 64

// normalize turns an expression result into a JSON-compatible value.
func normalize(v any, depth int) (any, error) {
	if depth > maxDepth {
		return nil, fmt.Errorf("value nested deeper than %d", maxDepth)
	}
	switch x := v.(type) {
	case nil, bool, string, int:
		return x, nil
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return nil, fmt.Errorf("result %v is not a finite number", x)
		}
		return x, nil
	case time.Duration:
		return x.String(), nil
	case time.Time:
		return x.UTC().Format(time.RFC3339Nano), nil
	case *time.Location:
		return x.String(), nil
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			n, err := normalize(e, depth+1)
			if err != nil {
				return nil, err
			}
			out[k] = n
		}
		return out, nil
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			n, err := normalize(e, depth+1)
			if err != nil {
				return nil, err
			}
			out[i] = n
		}
		return out, nil
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n := rv.Int()
		if n > math.MaxInt || n < math.MinInt {
			return float64(n), nil
		}
		return int(n), nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		n := rv.Uint()
		if n > math.MaxInt {
			return float64(n), nil
		}
		return int(n), nil
	case reflect.Float32:
		return normalize(rv.Float(), depth)
	case reflect.String:
		return rv.String(), nil
	case reflect.Bool:
		return rv.Bool(), nil
	case reflect.Slice, reflect.Array:
		out := make([]any, rv.Len())
		for i := range out {
			n, err := normalize(rv.Index(i).Interface(), depth+1)
			if err != nil {
				return nil, err
			}
			out[i] = n
		}
		return out, nil
	case reflect.Map:
		if rv.Type().Key().Kind() != reflect.String {
			return nil, fmt.Errorf("map with %s keys is not a JSON object", rv.Type().Key())
		}
		out := make(map[string]any, rv.Len())
		it := rv.MapRange()
		for it.Next() {
			n, err := normalize(it.Value().Interface(), depth+1)
			if err != nil {
				return nil, err
			}
			out[it.Key().String()] = n
		}
		return out, nil
	case reflect.Pointer, reflect.Interface:
		if rv.IsNil() {
			return nil, nil
		}
		return normalize(rv.Elem().Interface(), depth+1)
	}
	return nil, fmt.Errorf("cannot use a value of type %T", v)
}

// stringify renders a normalized value as text: strings as they are, nil
// as "", numbers without exponent noise, lists and maps as JSON.
func stringify(v any) (string, error) {
	switch x := v.(type) {
	case nil:
		return "", nil
	case string:
		return x, nil
	case bool:
		return strconv.FormatBool(x), nil
	case int:
		return strconv.Itoa(x), nil
	case float64:
		if x == math.Trunc(x) && math.Abs(x) < 1e15 {
			return strconv.FormatInt(int64(x), 10), nil
		}
		return strconv.FormatFloat(x, 'g', -1, 64), nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return "", fmt.Errorf("stringify: %w", err)
	}
	return string(b), nil
}

// typeName names the type of a normalized value for messages.
func typeName(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "a string"
	case bool:
		return "a bool"
	case int, float64:
		return "a number"
	case []any:
		return "a list"
	case map[string]any:
		return "a map"
	}
	return fmt.Sprintf("%T", v)
}
