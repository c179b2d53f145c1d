package template

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/dpe-engine/dpe/internal/model"
)

// FuzzParse checks that Parse never panics, that it refuses only with a
// *ValidationError, and that whatever it accepts exports and re-imports to
// the same canonical form. Every input runs, documents whose aliases name
// a huge tree included: Parse refuses those before reading the tree
// (checkSize), in microseconds.
func FuzzParse(f *testing.F) {
	for _, file := range exampleFiles(f) {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	for _, s := range []string{
		"",
		"name: t\nsteps: [{log: hi}]\n",
		"name: t\nsteps:\n  - &a {log: x}\n  - *a\n",
		"name: t\nargs: {n: {type: int, default: 1}}\nsteps: [{id: f, foreach: \"1..args.n\", do: [{set: {x: \"${{ item }}\"}}]}]\n",
		"name: t\nsteps: [{id: t1, try: [{fail: x}], catch: [{log: \"${{ error.message }}\"}], on_error: continue}]\n",
		"a: &a [*a]\n",
		"name: t\nsteps: [{log: \"${{ {a: '}}'} }}\"}]\n",
		`{"name": "t", "steps": [{"delay": "${{ '1s' }}"}]}`,
	} {
		f.Add([]byte(s))
	}
	opts := testOptions()
	f.Fuzz(func(t *testing.T, data []byte) {
		tp, err := Parse(data, opts)
		if err != nil {
			var ve *ValidationError
			if !errors.As(err, &ve) || len(ve.Problems) == 0 || !errors.Is(err, model.ErrInvalid) {
				t.Fatalf("bad error %T: %v", err, err)
			}
			_ = err.Error()
			return
		}
		roundTrip(t, tp, opts)
		_, _ = tp.BindArgs(nil)
	})
}

// FuzzExpressions places arbitrary text where expressions and values go,
// then checks Parse, the export round trip and evaluation: none may panic.
func FuzzExpressions(f *testing.F) {
	for _, s := range []string{
		"args.path", "${{ args.path }}", "x ${{ 1 + 2 }} y", "$${{ no }}", "[1, 2]",
		"steps.j.result.size > 3", "basename(args.path) + ext(args.path)",
		"sprintf('%v-%d', args.list, 3)", "keys({b: 1, a: 2})", "let x = 1; x + 1",
		"map(args.list, # * 2)", "${{ {a: '}}'} }}", "error.message", "item", "1..3",
		"date('2026-01-02')", "toJSON(args)", "}}", "${{", "'", "duration('1h') > duration('1m')",
	} {
		f.Add(s)
	}
	opts := testOptions()
	f.Fuzz(func(t *testing.T, s string) {
		q, err := yaml.Marshal(s)
		if err != nil {
			return
		}
		v := strings.TrimSuffix(string(q), "\n")
		if strings.Contains(v, "\n") {
			return // block scalars do not fit in a flow mapping
		}
		head := "name: fz\nargs:\n  path: {type: string, default: /a/b.wav}\n  list: {type: list, default: [1, 2]}\nsteps:\n"
		for _, step := range []string{
			"  - {id: j, job: noop, params: {v: " + v + "}}\n",
			"  - {id: c, if: " + v + ", then: [{log: " + v + "}]}\n",
			"  - {id: f, foreach: " + v + ", do: [{id: x, set: {x: " + v + "}}]}\n",
			"  - {id: g, try: [{id: x, delay: " + v + "}], catch: [{id: y, fail: " + v + "}]}\n",
		} {
			tp, err := Parse([]byte(head+step), opts)
			if err != nil {
				var ve *ValidationError
				if !errors.As(err, &ve) || len(ve.Problems) == 0 {
					t.Fatalf("bad error %T: %v", err, err)
				}
				continue
			}
			roundTrip(t, tp, opts)
			args, err := tp.BindArgs(nil)
			if err != nil {
				t.Fatal(err)
			}
			env := Env{Args: args, Locals: map[string]any{"item": s}, Error: &ErrorView{Message: s}}
			tp.Walk(func(a *Activity) bool {
				_, _ = a.Params.Eval(env)
				_, _ = a.Message.Eval(env)
				_, _ = a.Delay.EvalDuration(env)
				if a.Cond != nil {
					_, _ = a.Cond.EvalBool(env)
				}
				if a.Items != nil {
					_, _ = a.Items.EvalList(env)
				}
				for _, v := range a.Set {
					_, _ = v.Eval(env)
				}
				return true
			})
		}
	})
}

// TestAliasBudget checks the size limits that make a tiny document
// naming a huge tree (aliases of aliases) cheap to refuse: FuzzParse
// finds such documents and must not be slowed down by them.
func TestAliasBudget(t *testing.T) {
	var tenLevels strings.Builder
	tenLevels.WriteString("name: t\nsteps:\n  - &a0 {sequence: [{log: x}, {log: y}]}\n")
	for i := 1; i <= 9; i++ {
		fmt.Fprintf(&tenLevels, "  - &a%d {sequence: [*a%d, *a%d, *a%d, *a%d]}\n", i, i-1, i-1, i-1, i-1)
	}
	// 2,000 aliases of a 5-node step add 10,000 nodes: the most allowed.
	var atLimit strings.Builder
	atLimit.WriteString("name: t\nsteps:\n  - &s {log: \"${{ 1 + 2 }}\", on_error: continue}\n")
	atLimit.WriteString(strings.Repeat("  - *s\n", maxAliasNodes/5))
	wide := "name: t\nsteps: [{log: x}]\noutput: {a: [" + strings.Repeat("1,", maxNodes) + "1]}\n"
	cases := []struct {
		name   string
		src    []byte
		line   int
		reason string // substring; "" when accepted
	}{
		{"alias_bomb seed", fuzzSeed(t, "alias_bomb"), 8, "template too large: its aliases expand to more than 10000 nodes (counted up to alias *a4)"},
		{"ten levels", []byte(tenLevels.String()), 8, "more than 10000 nodes"},
		{"at the limit", []byte(atLimit.String()), 0, ""},
		{"past the limit", []byte(atLimit.String() + "  - *s\n"), 2004, "more than 10000 nodes (counted up to alias *s)"},
		{"recursive", []byte("name: t\nsteps: &a\n  - sequence: *a\n"), 3, "alias *a refers to a node that contains it"},
		{"recursive, unknown field", []byte("name: t\nx: &a [*a]\nsteps: [{log: x}]\n"), 2, "alias *a refers to a node that contains it"},
		{"many nodes", []byte(wide), 3, "template too large: more than 200000 nodes"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tp, err := Parse(c.src, testOptions())
			if c.reason == "" {
				if err != nil {
					t.Fatal(err)
				}
				if n := len(tp.Steps); n != maxAliasNodes/5+1 {
					t.Fatalf("%d steps, want %d", n, maxAliasNodes/5+1)
				}
				return
			}
			var ve *ValidationError
			if !errors.As(err, &ve) || len(ve.Problems) != 1 {
				t.Fatalf("Parse = %v, want one problem", err)
			}
			if p := ve.Problems[0]; p.Line != c.line || !strings.Contains(p.Reason, c.reason) {
				t.Fatalf("problem %v, want line %d and %q", p, c.line, c.reason)
			}
		})
	}
}

// TestCompileDataSize checks that trigger values get the same size limit.
func TestCompileDataSize(t *testing.T) {
	big := make([]any, maxNodes)
	for i := range big {
		big[i] = i
	}
	_, err := CompileData(map[string]any{"a": big}, "on.x.args")
	var ve *ValidationError
	if !errors.As(err, &ve) || len(ve.Problems) != 1 || ve.Problems[0].Field != "on.x.args" ||
		!strings.Contains(ve.Problems[0].Reason, "value too large: more than 200000 nodes") {
		t.Fatalf("CompileData of %d items = %v", len(big), err)
	}
}
