package template

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

// evalTemplate declares args of several types and one set step whose
// value v is what the tests evaluate.
const evalTemplate = `name: eval
args:
  path: {type: string, default: /in/Show 1.wav}
  n: {type: int, default: 2}
  x: {type: number, default: 1.5}
  files: {type: list, default: [a.wav, b.mp3]}
  meta: {type: map, default: {z: 1, a: 2}}
  opt: {type: int}
steps:
  - id: first
    job: noop
  - id: loop
    foreach: args.files
    do:
      - set:
          v: %s
`

// evalValue parses evalTemplate around src and evaluates it with the
// default args bound.
func evalValue(t *testing.T, src string, env Env) (any, error) {
	t.Helper()
	tp, err := Parse([]byte(strings.Replace(evalTemplate, "%s", src, 1)), ParseOptions{})
	if err != nil {
		t.Fatalf("parse %s: %v", src, err)
	}
	args, err := tp.BindArgs(nil)
	if err != nil {
		t.Fatal(err)
	}
	if env.Args == nil {
		env.Args = args
	}
	set := tp.Find("s3").Set["v"]
	return set.Eval(env)
}

func TestValueEval(t *testing.T) {
	env := Env{
		Locals: map[string]any{"item": "b.mp3"},
		Steps:  map[string]StepView{"first": {Result: map[string]any{"size": 42.0}, State: "succeeded"}},
	}
	cases := []struct {
		src  string
		want any
	}{
		{`"${{ 1 + 2 }}"`, 3},
		{`"n=${{ 1+2 }}"`, "n=3"},
		{`"${{ 'a' + 'b' }}"`, "ab"},
		{`"${{ args.n > 1 }}"`, true},
		{`"${{ args.x * 2 }}"`, 3.0},
		{`"x=${{ args.x * 2 }}"`, "x=3"},
		{`"${{ args.files }}"`, []any{"a.wav", "b.mp3"}},
		{`"list=${{ args.files }}"`, `list=["a.wav","b.mp3"]`},
		{`"${{ {a: {b: 1}} }}"`, map[string]any{"a": map[string]any{"b": 1}}},
		{`"${{ args.opt }}"`, nil},
		{`"[${{ args.opt }}]"`, "[]"},
		{`"${{ args.opt ?? 7 }}"`, 7},
		{`"$${{ literal }}"`, "${{ literal }}"},
		{`"cost $${{ x }} is ${{ args.n }}"`, "cost ${{ x }} is 2"},
		{`"${{ basename(args.path) }}|${{ dirname(args.path) }}|${{ ext(args.path) }}|${{ stem(args.path) }}"`, "Show 1.wav|/in|.wav|Show 1"},
		{`"${{ joinpath('loc:archive', '2026', basename(args.path)) }}"`, "loc:archive/2026/Show 1.wav"},
		{`"${{ sprintf('%03d-%s', args.n, upper(item)) }}"`, "002-B.MP3"},
		{`"${{ keys(args.meta) }}"`, []any{"a", "z"}},
		{`"${{ values(args.meta) }}"`, []any{2, 1}},
		{`"${{ duration('1m30s') }}"`, "1m30s"},
		{`"${{ date('2026-11-25T02:00:00+01:00') }}"`, "2026-11-25T01:00:00Z"},
		{`"${{ split('a,b', ',') }}"`, []any{"a", "b"}},
		{`"${{ steps.first.result.size }}"`, 42.0},
		{`"${{ steps.first.state }}"`, "succeeded"},
		{`"${{ steps.loop.state }}"`, StepNotRun},
		{`"${{ item }}"`, "b.mp3"},
		{`[1, "${{ item }}", {k: "${{ args.n }}"}]`, []any{1, "b.mp3", map[string]any{"k": 2}}},
		{`{plain: yes, num: 0x10}`, map[string]any{"plain": "yes", "num": 16}},
	}
	for _, c := range cases {
		got, err := evalValue(t, c.src, env)
		if err != nil {
			t.Errorf("%s: %v", c.src, err)
			continue
		}
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s = %#v, want %#v", c.src, got, c.want)
		}
	}
}

func TestValueEvalErrors(t *testing.T) {
	for _, src := range []string{
		`"${{ 1 / 0 }}"`,                 // +Inf is not JSON
		`"${{ args.files[5] }}"`,         // out of range
		`"${{ int('x') }}"`,              // conversion
		`"${{ basename(args.meta.a) }}"`, // not a string at run time
	} {
		if got, err := evalValue(t, src, Env{}); err == nil {
			t.Errorf("%s = %#v, want an error", src, got)
		}
	}
}

func TestExprEval(t *testing.T) {
	tp, err := Parse([]byte(`name: t
args:
  files: {type: list, required: true}
steps:
  - id: c
    if: "len(args.files) > 1 && steps.c.state == 'pending'"
    then:
      - id: f
        foreach: "filter(args.files, # != 'skip')"
        do:
          - id: g
            try: [{log: x}]
            finally: [{id: l, log: "${{ error.message }}/${{ error.step }}"}]
`), ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	args, err := tp.BindArgs(map[string]any{"files": []string{"a", "skip", "b"}})
	if err != nil {
		t.Fatal(err)
	}
	env := Env{Args: args}
	ok, err := tp.Find("c").Cond.EvalBool(env)
	if err != nil || !ok {
		t.Errorf("EvalBool = %v, %v", ok, err)
	}
	env.Steps = map[string]StepView{"c": {State: "running"}}
	if ok, err := tp.Find("c").Cond.EvalBool(env); err != nil || ok {
		t.Errorf("EvalBool with c running = %v, %v", ok, err)
	}
	list, err := tp.Find("f").Items.EvalList(env)
	if err != nil || !reflect.DeepEqual(list, []any{"a", "b"}) {
		t.Errorf("EvalList = %#v, %v", list, err)
	}
	msg := tp.Find("l").Message
	if s, err := msg.EvalString(env); err != nil || s != "/" {
		t.Errorf("no error: %q, %v", s, err)
	}
	env.Error = &ErrorView{Message: "boom", Step: "x"}
	if s, err := msg.EvalString(env); err != nil || s != "boom/x" {
		t.Errorf("with error: %q, %v", s, err)
	}
	var zero *Expr
	if _, err := zero.Eval(env); err == nil {
		t.Error("nil Expr evaluated")
	}
}

func TestDelay(t *testing.T) {
	tp, err := Parse([]byte(`name: t
args:
  wait: {type: duration, default: 90s}
steps:
  - delay: 1500ms
  - delay: "${{ args.wait }}"
  - delay: "${{ 'x' }}"
`), ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	args, _ := tp.BindArgs(nil)
	env := Env{Args: args}
	for id, want := range map[string]time.Duration{"s1": 1500 * time.Millisecond, "s2": 90 * time.Second} {
		if d, err := tp.Find(id).Delay.EvalDuration(env); err != nil || d != want {
			t.Errorf("%s: %v, %v; want %v", id, d, err, want)
		}
	}
	if _, err := tp.Find("s3").Delay.EvalDuration(env); err == nil {
		t.Error(`delay "x" accepted`)
	}
	if src := tp.Find("s1").Delay.Source(); src != "1.5s" {
		t.Errorf("normalized delay %v", src)
	}
}

func TestSplitInterp(t *testing.T) {
	cases := []struct {
		in    string
		exprs []string
		whole bool
		bad   bool
	}{
		{"${{ a }}", []string{"a"}, true, false},
		{"x ${{ a }} ${{ b }}", []string{"a", "b"}, false, false},
		{"${{ '}}' + a }}", []string{"'}}' + a"}, true, false},
		{"${{ {a: {b: 1}} }}", []string{"{a: {b: 1}}"}, true, false},
		{`${{ "\"}}" }}`, []string{`"\"}}"`}, true, false},
		{"${{ a }}x", []string{"a"}, false, false},
		{"${{ }}", nil, false, true},
		{"${{ a", nil, false, true},
		{"${{ a } }}", nil, false, true},
		{"$${{ a }}", nil, false, false},
	}
	for _, c := range cases {
		parts, whole, err := splitInterp(c.in)
		if (err != nil) != c.bad {
			t.Errorf("%q: err %v", c.in, err)
			continue
		}
		var exprs []string
		for _, p := range parts {
			if p.expr != nil {
				exprs = append(exprs, p.expr.src)
			}
		}
		if !reflect.DeepEqual(exprs, c.exprs) || whole != c.whole {
			t.Errorf("%q: exprs %q whole %v; want %q %v", c.in, exprs, whole, c.exprs, c.whole)
		}
	}
}
