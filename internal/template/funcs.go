package template

import (
	"fmt"
	"path"
	"reflect"
	"sort"
	"strings"

	"github.com/expr-lang/expr"
)

// Helper functions offered to expressions on top of expr's builtins
// (which already give lower, upper, trim, split, join, replace, string,
// int, float, duration, date, toJSON, len, filter, map, ...).
//
// Paths use forward slashes on every platform (path, not path/filepath):
// the worker that evaluates an expression may run on another OS than the
// one that evaluated it first, and a replay must compute the same value.
//
// Left out on purpose: now() (disabled) and anything random, so that a step
// replayed after a crash computes exactly what it computed before.
// keys(), values() and toPairs() are replaced by versions sorted by key,
// because Go map order changes from run to run.

// funcNames lists the helper names, which loop variables may not take.
var funcNames = []string{"basename", "dirname", "ext", "stem", "joinpath", "sprintf", "keys", "values", "toPairs"}

// exprOptions returns the compile options shared by every expression.
func exprOptions() []expr.Option {
	return append(budgetOptions(),
		expr.DisableBuiltin("now"),
		expr.Function("basename", func(a ...any) (any, error) {
			s, err := strArg("basename", a, 0)
			if err != nil || s == "" {
				return "", err
			}
			return path.Base(s), nil
		}, new(func(string) string)),
		expr.Function("dirname", func(a ...any) (any, error) {
			s, err := strArg("dirname", a, 0)
			if err != nil {
				return "", err
			}
			return path.Dir(s), nil
		}, new(func(string) string)),
		expr.Function("ext", func(a ...any) (any, error) {
			s, err := strArg("ext", a, 0)
			if err != nil {
				return "", err
			}
			return path.Ext(s), nil
		}, new(func(string) string)),
		expr.Function("stem", func(a ...any) (any, error) {
			s, err := strArg("stem", a, 0)
			if err != nil || s == "" {
				return "", err
			}
			b := path.Base(s)
			return strings.TrimSuffix(b, path.Ext(b)), nil
		}, new(func(string) string)),
		expr.Function("joinpath", func(a ...any) (any, error) {
			parts := make([]string, len(a))
			for i := range a {
				s, err := strArg("joinpath", a, i)
				if err != nil {
					return "", err
				}
				parts[i] = s
			}
			return path.Join(parts...), nil
		}, new(func(...string) string)),
		expr.Function("sprintf", func(a ...any) (any, error) {
			f, err := strArg("sprintf", a, 0)
			if err != nil {
				return "", err
			}
			return fmt.Sprintf(f, a[1:]...), nil
		}, new(func(string, ...any) string)),
		expr.Function("keys", func(a ...any) (any, error) {
			ks, _, err := sortedEntries("keys", a)
			return ks, err
		}),
		expr.Function("values", func(a ...any) (any, error) {
			_, vs, err := sortedEntries("values", a)
			return vs, err
		}),
		expr.Function("toPairs", func(a ...any) (any, error) {
			ks, vs, err := sortedEntries("toPairs", a)
			if err != nil {
				return nil, err
			}
			out := make([]any, len(ks))
			for i := range ks {
				out[i] = []any{ks[i], vs[i]}
			}
			return out, nil
		}),
	)
}

// strArg returns argument i of a call as a string.
func strArg(fn string, a []any, i int) (string, error) {
	if i >= len(a) {
		return "", fmt.Errorf("%s: missing argument %d", fn, i+1)
	}
	s, ok := a[i].(string)
	if !ok {
		return "", fmt.Errorf("%s: argument %d is %T, want a string", fn, i+1, a[i])
	}
	return s, nil
}

// sortedEntries returns the keys and values of a map argument, sorted by
// key.
func sortedEntries(fn string, a []any) ([]any, []any, error) {
	if len(a) != 1 {
		return nil, nil, fmt.Errorf("%s: want 1 argument, got %d", fn, len(a))
	}
	rv := reflect.ValueOf(a[0])
	if rv.Kind() != reflect.Map || rv.Type().Key().Kind() != reflect.String {
		return nil, nil, fmt.Errorf("%s: argument is %T, want a map", fn, a[0])
	}
	names := make([]string, 0, rv.Len())
	for _, k := range rv.MapKeys() {
		names = append(names, k.String())
	}
	sort.Strings(names)
	ks := make([]any, len(names))
	vs := make([]any, len(names))
	for i, n := range names {
		ks[i] = n
		vs[i] = rv.MapIndex(reflect.ValueOf(n).Convert(rv.Type().Key())).Interface()
	}
	return ks, vs, nil
}
