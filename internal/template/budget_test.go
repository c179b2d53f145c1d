package template

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// quadratic is finding 3 of issue 13: nested predicates over the same
// list, 10^10 passes over 100,000 items.
const quadratic = "count(args.l, count(args.l, # == 1) > 0)"

// budgetTemplate parses a template whose set step n assigns expr.
func budgetTemplate(t *testing.T, expr string) *Template {
	t.Helper()
	src := "name: budget\nargs:\n  l: {type: list}\nsteps:\n  - id: s\n    set: {n: \"${{ " + expr + " }}\"}\n"
	tp, err := Parse([]byte(src), ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return tp
}

// bigList is n strings as the args of an instance: none equals 1, so
// count(..., # == 1) > 0 (which expr turns into any(...)) scans the whole
// list every time.
func bigList(t *testing.T, tp *Template, n int) map[string]any {
	t.Helper()
	l := make([]any, n)
	for i := range l {
		l[i] = fmt.Sprintf("item-%d", i)
	}
	args, err := tp.BindArgs(map[string]any{"l": l})
	if err != nil {
		t.Fatal(err)
	}
	return args
}

func TestEvalBudget(t *testing.T) {
	tests := []struct {
		name  string
		expr  string
		items int
		want  any // nil: want ErrBudget
		limit time.Duration
	}{
		{"quadratic over 100000 items", quadratic, 100_000, nil, 20 * time.Second},
		{"quadratic over 900 items fits", quadratic, 900, 0, 20 * time.Second},
		{"linear over 100000 items fits", "count(args.l, # != '')", 100_000, 100_000, 20 * time.Second},
		{"three deep over 200 items", "count(args.l, count(args.l, count(args.l, # == 1) > 0) > 0)", 200, nil, 20 * time.Second},
		{"map and filter fit", "len(filter(map(args.l, # + 'x'), # endsWith '9x'))", 1000, 100, 20 * time.Second},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tp := budgetTemplate(t, tc.expr)
			env := Env{Args: bigList(t, tp, tc.items)}
			v := tp.Find("s").Set["n"]
			start := time.Now()
			got, err := v.Eval(env)
			took := time.Since(start)
			if tc.want == nil {
				if !errors.Is(err, ErrBudget) {
					t.Fatalf("Eval = %v, %v; want ErrBudget", got, err)
				}
				if !strings.Contains(err.Error(), tc.expr) || strings.Contains(err.Error(), "\n") {
					t.Errorf("error %q does not name the expression on one line", err)
				}
			} else if err != nil || toInt(got) != tc.want {
				t.Fatalf("Eval = %v (%T), %v; want %v", got, got, err, tc.want)
			}
			// A generous bound for a loaded machine: without the budget the
			// first case runs for minutes.
			if took > tc.limit {
				t.Errorf("took %v, want under %v", took, tc.limit)
			}
		})
	}
}

// toInt turns an integer-valued result into an int for comparison.
func toInt(v any) any {
	switch n := v.(type) {
	case int:
		return n
	case int64:
		return int(n)
	case float64:
		return int(n)
	}
	return v
}

// TestEvalCancel stops an evaluation that is within its budget by
// cancelling its context, as a worker shutting down does.
func TestEvalCancel(t *testing.T) {
	tp := budgetTemplate(t, quadratic)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	env := Env{Args: bigList(t, tp, 100_000), Context: ctx}
	_, err := tp.Find("s").Set["n"].Eval(env)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Eval with a cancelled context = %v, want context.Canceled", err)
	}
	if errors.Is(err, ErrBudget) {
		t.Errorf("cancel reported as budget: %v", err)
	}
}

// TestBudgetNamesReserved: a template cannot reach the budget itself.
func TestBudgetNamesReserved(t *testing.T) {
	for _, e := range []string{"$tick($budget)", "$budget", "count(args.l, $tick($budget))"} {
		src := "name: x\nargs:\n  l: {type: list}\nsteps:\n  - {id: s, set: {n: \"${{ " + e + " }}\"}}\n"
		_, err := Parse([]byte(src), ParseOptions{})
		if err == nil || !strings.Contains(err.Error(), "reserved") {
			t.Errorf("%s: Parse = %v, want it refused as reserved", e, err)
		}
	}
}
