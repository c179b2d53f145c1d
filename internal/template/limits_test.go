package template

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// bigTemplate is n job steps, each reading the previous one's state.
func bigTemplate(n int) []byte {
	var b strings.Builder
	b.WriteString("name: big\nargs:\n  p: {type: string, default: x}\nsteps:\n  - {id: j0, job: noop}\n")
	for i := 1; i < n; i++ {
		fmt.Fprintf(&b, "  - {id: j%d, job: noop, params: {a: \"${{ steps.j%d.state + args.p }}\"}}\n", i, i-1)
	}
	return []byte(b.String())
}

// TestLargeTemplate guards against compile cost growing with the square
// of the template (3000 steps took 44 s when every expression saw every
// step).
func TestLargeTemplate(t *testing.T) {
	tp, err := Parse(bigTemplate(3000), ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if tp.Find("j2999") == nil {
		t.Error("last step missing")
	}
}

func BenchmarkParseLarge(b *testing.B) {
	data := bigTemplate(1000)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := Parse(data, ParseOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}

func TestAliasBomb(t *testing.T) {
	src := `name: t
steps:
  - &s {log: hi}
  - set: {a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]}
  - set: {b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]}
  - set: {c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]}
  - set: {d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]}
  - set: {e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]}
  - set: {f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]}
  - set: {g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]}
  - set: {h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]}
`
	_, err := Parse([]byte(src), ParseOptions{})
	if err == nil || !strings.Contains(err.Error(), "template too large") {
		t.Fatalf("alias bomb: %v", err)
	}
	// Aliases within the budget are fine.
	tp, err := Parse([]byte("name: t\nsteps:\n  - set: {a: &a [1, 2]}\n  - set: {b: *a}\n"), ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := tp.Find("s2").Set["b"].Eval(Env{}); fmt.Sprint(got) != "[1 2]" {
		t.Errorf("alias value %v", got)
	}
}

func TestDeepNesting(t *testing.T) {
	src := "name: t\nsteps:\n  - " + strings.Repeat("{sequence: [", 100) + "{log: hi}" + strings.Repeat("]}", 100) + "\n"
	_, err := Parse([]byte(src), ParseOptions{})
	if err == nil || !strings.Contains(err.Error(), "nested deeper than") {
		t.Fatalf("deep nesting: %v", err)
	}
	if _, err := Parse(make([]byte, MaxSize+1), ParseOptions{}); err == nil {
		t.Error("oversized template accepted")
	}
}

// TestCompileOnce checks that an expression written many times is
// compiled once per scope, and that sharing the outcome keeps every
// copy's own place in messages and the scope rules.
func TestCompileOnce(t *testing.T) {
	src := doc(`  - {id: a, log: "${{ args.path }}"}
  - {id: b, log: "${{ args.path }}"}
  - {id: f, foreach: "[1]", do: [{id: c, log: "${{ item }}"}]}
  - {id: d, log: "${{ item }}"}
  - {id: g, try: [{id: e, log: "${{ error.message }}"}], catch: [{id: h, log: "${{ error.message }}"}]}
  - &x {id: i, log: "${{ error.step }}"}
`)
	_, err := Parse([]byte(src), testOptions())
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("Parse = %v", err)
	}
	want := []Problem{
		{Line: 8, Step: "d", Field: "log", Reason: `item: loop variable of foreach "f", only in scope inside its do steps`},
		{Line: 9, Step: "e", Field: "log", Reason: "error: only in scope inside catch, finally and on_error steps"},
		{Line: 10, Step: "i", Field: "log", Reason: "error: only in scope inside catch, finally and on_error steps"},
	}
	if fmt.Sprint(ve.Problems) != fmt.Sprint(want) {
		t.Fatalf("problems\n%v\nwant\n%v", ve.Problems, want)
	}

	tp, err := Parse([]byte(doc(`  - &s {log: "${{ args.path + 'x' }}"}
  - *s
  - {log: "${{ args.path + 'x' }}"}
  - {foreach: "[1]", id: f, do: [{log: "${{ args.path + 'x' }}"}]}
`)), testOptions())
	if err != nil {
		t.Fatal(err)
	}
	var progs []any
	tp.Walk(func(a *Activity) bool {
		if a.Kind == KindLog {
			progs = append(progs, a.Message.str.parts[0].expr.prog)
		}
		return true
	})
	if len(progs) != 4 || progs[0] != progs[1] || progs[0] != progs[2] || progs[0] == progs[3] {
		t.Fatalf("programs %v: want the first three shared, the one in the foreach its own", progs)
	}
	got, err := tp.Steps[1].Message.Eval(Env{Args: map[string]any{"path": "/a"}})
	if err != nil || got != "/ax" {
		t.Fatalf("aliased copy evaluates to %v, %v", got, err)
	}
}
