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
// the same canonical form.
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
		if expanded(data) > fuzzNodes {
			// A few aliases expand a tiny input to the parser's whole
			// node budget (maxNodes), whose tens of thousands of
			// expressions take about a second to compile (1.2 s for
			// testdata/fuzz/FuzzParse/alias_bomb). The budget itself is
			// TestAliasBudget's. The rest of the "~290 execs in 20 s" was
			// minimizing (60 s per new input by default, not counted as
			// execs): make fuzz bounds it with -fuzzminimizetime.
			return
		}
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

// fuzzNodes bounds the alias-expanded nodes of a FuzzParse input.
const fuzzNodes = 2000

// expanded counts the nodes of the YAML in data with aliases expanded,
// stopping past fuzzNodes; 0 when it is not YAML.
func expanded(data []byte) int {
	var doc yaml.Node
	if yaml.Unmarshal(data, &doc) != nil {
		return 0
	}
	n := 0
	var walk func(*yaml.Node, int)
	walk = func(y *yaml.Node, depth int) {
		if y == nil || n > fuzzNodes || depth > 1000 {
			n = fuzzNodes + 1
			return
		}
		n++
		if y.Kind == yaml.AliasNode {
			walk(y.Alias, depth+1)
			return
		}
		for _, c := range y.Content {
			walk(c, depth+1)
		}
	}
	walk(&doc, 0)
	return n
}

// TestAliasBudget shows the node budget that FuzzParse steps around: a
// document whose aliases expand past maxNodes is refused as too large.
func TestAliasBudget(t *testing.T) {
	var b strings.Builder
	b.WriteString("name: t\nsteps:\n  - &a0 {sequence: [{log: x}, {log: y}]}\n")
	for i := 1; i <= 9; i++ {
		fmt.Fprintf(&b, "  - &a%d {sequence: [*a%d, *a%d, *a%d, *a%d]}\n", i, i-1, i-1, i-1, i-1)
	}
	src := []byte(b.String())
	if n := expanded(src); n <= fuzzNodes {
		t.Fatalf("expanded(%q) = %d, want past %d", src, n, fuzzNodes)
	}
	_, err := Parse(src, testOptions())
	var ve *ValidationError
	if !errors.As(err, &ve) || !strings.Contains(err.Error(), "template too large") {
		t.Fatalf("Parse of an alias bomb = %v, want a too-large refusal", err)
	}
}
