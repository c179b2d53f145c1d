package template

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/dpe-engine/dpe/internal/model"
)

// builtinJobTypes are the job types every dpe processor serves.
var builtinJobTypes = map[string]bool{
	"noop": true, "util.copy": true, "util.move": true, "util.delete": true,
	"util.checksum": true, "util.mkdir": true, "util.list": true, "exec": true, "util.sync": true,
	"audio.loudness": true, "audio.normalize": true, "audio.convert": true, "audio.waveform": true,
	"media.probe": true, "media.transcode": true, "media.thumbnail": true,
}

// testOptions knows the built-in job types and the templates "other-template"
// and "child"; it refuses a literal params.path that is not absolute.
func testOptions() ParseOptions {
	return ParseOptions{
		KnownJobType:  func(s string) bool { return builtinJobTypes[s] },
		KnownTemplate: func(s string) bool { return s == "other-template" || s == "child" },
		JobParams: func(typ string, params map[string]any) error {
			if p, ok := params["path"].(string); ok && !strings.HasPrefix(p, "/") && !strings.HasPrefix(p, "loc:") {
				return model.Invalid("path", "want an absolute path or loc:NAME/..., got %q", p)
			}
			return nil
		},
	}
}

// doc wraps steps (lines 5 and on) in a template with one arg.
func doc(steps string) string {
	return "name: t\nargs:\n  path: {type: string, required: true}\nsteps:\n" + steps
}

func TestParseRefuses(t *testing.T) {
	cases := []struct {
		name   string
		src    string
		line   int // 0: not checked
		step   string
		field  string
		reason string // substring
	}{
		{"unknown field", doc("  - {id: a, job: noop, parms: {}}\n"), 5, "a", "parms", "unknown field"},
		{"field of another kind", doc("  - {id: a, job: noop, then: []}\n"), 5, "a", "then", "not a field of a job step"},
		{"duplicate id", doc("  - {id: a, job: noop}\n  - {id: b, sequence: [{id: a, log: hi}]}\n"), 6, "a", "id", "duplicate id (also on line 5)"},
		{"two kinds", doc("  - {id: a, job: noop, log: hi}\n"), 5, "a", "log", "exactly one kind"},
		{"no kind", doc("  - {id: a}\n"), 5, "a", "", "no kind"},
		{"unknown job type", doc("  - {id: a, job: util.nope}\n"), 5, "a", "job", `unknown job type "util.nope"`},
		{"bad expression syntax", doc("  - id: copy\n    job: util.copy\n    params: {to: \"${{ args.path + }}\"}\n"), 7, "copy", "params.to", "bad expression: unexpected token"},
		{"unterminated interpolation", doc("  - {id: l, log: \"x ${{ args.path \"}\n"), 5, "l", "log", "unterminated"},
		{"unknown arg", doc("  - id: copy\n    job: util.copy\n    params:\n      from: /a\n      to: \"x/${{ args.nope }}\"\n"), 9, "copy", "params.to", "args.nope: no such arg (declared: path)"},
		{"type error in expression", doc("  - {id: l, log: \"${{ args.path * 2 }}\"}\n"), 5, "l", "log", "bad expression"},
		{"error outside catch", doc("  - {id: l, log: \"${{ error.message }}\"}\n"), 5, "l", "log", "only in scope inside catch"},
		{"error in try body", doc("  - id: g\n    try: [{id: l, log: \"${{ error.step }}\"}]\n    finally: [{log: done}]\n"), 6, "l", "log", "only in scope inside catch"},
		{"as variable outside foreach", doc("  - {id: f, foreach: \"[1]\", as: n, do: [{log: \"${{ n }}\"}]}\n  - {id: l, log: \"${{ n }}\"}\n"), 6, "l", "log", `loop variable of foreach "f"`},
		{"bad duration", doc("  - {id: a, job: noop, timeout: 10 minutes}\n"), 5, "a", "timeout", "bad duration"},
		{"negative concurrency", doc("  - {id: f, foreach: \"[1]\", concurrency: -1, do: [{log: hi}]}\n"), 5, "f", "concurrency", "out of range"},
		{"missing then", doc("  - {id: c, if: \"true\"}\n"), 5, "c", "then", "required"},
		{"else without if", doc("  - {id: e, else: [{log: hi}]}\n"), 5, "e", "else", "else without if"},
		{"bad template name", "name: Ingest!\nsteps: [{log: hi}]\n", 1, "", "name", "not a template name"},
		{"missing name", "steps: [{log: hi}]\n", 1, "", "name", "required"},
		{"unknown arg type", "name: t\nargs:\n  x: {type: text}\nsteps: [{log: hi}]\n", 3, "", "args.x.type", `unknown type "text"`},
		{"default of the wrong type", "name: t\nargs:\n  n: {type: int, default: three}\nsteps: [{log: hi}]\n", 3, "", "args.n.default", "want an int"},
		{"required with default", "name: t\nargs:\n  n: {type: int, required: true, default: 3}\nsteps: [{log: hi}]\n", 3, "", "args.n.default", "cannot have a default"},
		{"on_error bad value", doc("  - {id: a, job: noop, on_error: retry}\n"), 5, "a", "on_error", "want continue, fail or a list"},
		{"unknown step", doc("  - {id: c, if: \"steps.nope.state == 'succeeded'\", then: [{log: hi}]}\n"), 5, "c", "if", `no step has id "nope"`},
		{"generated id referenced", doc("  - {log: hi}\n  - {id: c, if: \"steps.s1.state == 'succeeded'\", then: [{log: hi}]}\n"), 6, "c", "if", "generated id"},
		{"retry.max_attempts 0", doc("  - {id: a, job: noop, retry: {max_attempts: 0}}\n"), 5, "a", "retry.max_attempts", "out of range"},
		{"backoff_max below backoff", doc("  - {id: a, job: noop, retry: {backoff: 1m, backoff_max: 1s}}\n"), 5, "a", "retry.backoff_max", "less than backoff"},
		{"foreach not an expression", doc("  - {id: f, foreach: [1, 2], do: [{log: hi}]}\n"), 5, "f", "foreach", "want an expression"},
		{"foreach with interpolation", doc("  - {id: f, foreach: \"${{ [1] }}\", do: [{log: hi}]}\n"), 5, "f", "foreach", "bare"},
		{"foreach over a string", doc("  - {id: f, foreach: \"args.path\", do: [{log: hi}]}\n"), 5, "f", "foreach", "want a list"},
		{"fail without message", doc("  - {id: f, fail: \"\"}\n"), 5, "f", "fail", "want a message"},
		{"fail with null", doc("  - {id: f, fail: }\n"), 5, "f", "fail", "want a string"},
		{"job without id", doc("  - {log: hi}\n  - {job: noop}\n"), 6, "s2", "id", "required on a job step"},
		{"reserved id", doc("  - {id: s7, log: hi}\n"), 5, "s1", "id", "reserved"},
		{"bad id", doc("  - {id: copy-file, job: noop}\n"), 5, "s1", "id", "not a step id"},
		{"unknown top-level field", "name: t\nstepz: []\nsteps: [{log: hi}]\n", 2, "", "stepz", "unknown field"},
		{"missing steps", "name: t\n", 1, "", "steps", "required"},
		{"empty then", doc("  - {id: c, if: \"true\", then: []}\n"), 5, "c", "then", "must not be empty"},
		{"unknown variable", doc("  - {id: l, log: \"${{ vars.nope }}\"}\n"), 5, "l", "log", `no set step assigns "nope"`},
		{"unknown template", doc("  - {id: w, workflow: nowhere}\n"), 5, "w", "workflow", `unknown template "nowhere"`},
		{"try without catch or finally", doc("  - {id: g, try: [{log: hi}]}\n"), 5, "g", "try", "want catch or finally"},
		{"condition not a bool", doc("  - {id: c, if: \"1 + 2\", then: [{log: hi}]}\n"), 5, "c", "if", "want a bool"},
		{"now is not deterministic", doc("  - {id: l, log: \"${{ now() }}\"}\n"), 5, "l", "log", "unknown name now"},
		{"concurrency_key needs a policy", "name: t\nconcurrency_key: \"'x'\"\nsteps: [{log: hi}]\n", 2, "", "concurrency_key", "skip or queue"},
		{"concurrency_key reads vars", "name: t\nconcurrency: skip\nconcurrency_key: \"vars.x\"\nsteps: [{set: {x: 1}}]\n", 3, "", "concurrency_key", "may read only args"},
		{"bad concurrency policy", "name: t\nconcurrency: wait\nsteps: [{log: hi}]\n", 2, "", "concurrency", "want allow, skip or queue"},
		{"job params refused by the job type", doc("  - {id: sum, job: util.checksum, params: {path: relative/x}}\n"), 5, "sum", "params.path", "want an absolute path"},
		{"params not a map", doc("  - {id: a, job: noop, params: [1]}\n"), 5, "a", "params", "want a mapping"},
		{"duplicate key", doc("  - id: a\n    job: noop\n    job: exec\n"), 7, "a", "job", "duplicate key (first on line 6)"},
		{"selector with an expression", doc("  - {id: a, job: noop, selector: {site: \"${{ args.path }}\"}}\n"), 5, "a", "selector.site", "not allowed"},
		{"priority out of range", doc("  - {id: a, job: noop, priority: 5000}\n"), 5, "a", "priority", "out of range"},
		{"as shadows outer loop", doc("  - id: f\n    foreach: \"[1]\"\n    do:\n      - {id: g, foreach: \"[2]\", do: [{log: hi}]}\n"), 8, "g", "as", "enclosing foreach"},
		{"reserved loop variable", doc("  - {id: f, foreach: \"[1]\", as: args, do: [{log: hi}]}\n"), 5, "f", "as", "reserved"},
		{"bad set name", doc("  - {set: {my-var: 1}}\n"), 5, "s1", "set.my-var", "not a variable name"},
		{"bad delay", doc("  - {delay: soon}\n"), 5, "s1", "delay", "bad duration"},
		{"default with expression", "name: t\nargs:\n  p: {type: string, default: \"${{ 1 }}\"}\nsteps: [{log: hi}]\n", 3, "", "args.p.default", "expressions are not allowed"},
		{"merge key", doc("  - {id: a, job: noop, <<: {x: 1}}\n"), 5, "a", "", "merge keys"},
		{"step not a mapping", doc("  - just text\n"), 5, "s1", "", "a step is a mapping"},
		{"yaml syntax error", "name: t\nsteps:\n  - {id: a, job: noop\n", 0, "", "", "bad YAML"},
		{"two documents", "name: t\nsteps: [{log: hi}]\n---\nname: u\n", 3, "", "", "more than one YAML document"},
		{"empty", "", 0, "", "", "empty template"},
		{"not a mapping", "- a\n", 1, "", "", "a template is a mapping"},
		{"infinite number", doc("  - {id: a, job: noop, params: {x: .inf}}\n"), 5, "a", "params.x", "not a finite number"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse([]byte(c.src), testOptions())
			if err == nil {
				t.Fatal("Parse accepted the template")
			}
			if !errors.Is(err, model.ErrInvalid) {
				t.Errorf("errors.Is(err, model.ErrInvalid) is false for %v", err)
			}
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("error is %T, want *ValidationError", err)
			}
			if len(ve.Problems) != 1 {
				t.Errorf("want 1 problem, got %d:\n%v", len(ve.Problems), err)
			}
			p := ve.Problems[0]
			if p.Step != c.step || p.Field != c.field || !strings.Contains(p.Reason, c.reason) || (c.line != 0 && p.Line != c.line) {
				t.Errorf("got  line %d step %q field %q reason %q\nwant line %d step %q field %q reason containing %q",
					p.Line, p.Step, p.Field, p.Reason, c.line, c.step, c.field, c.reason)
			}
		})
	}
}

func TestParseReportsAllProblems(t *testing.T) {
	src := doc(`  - id: copy
    job: util.nope
    params: {to: "${{ args.nope }}"}
  - {id: copy, log: hi}
  - {id: w, workflow: nowhere, retry: {}}
`)
	_, err := Parse([]byte(src), testOptions())
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("want *ValidationError, got %v", err)
	}
	var got []string
	for _, p := range ve.Problems {
		got = append(got, fmt.Sprintf("%d %s %s", p.Line, p.Step, p.Field))
	}
	want := []string{"6 copy job", "7 copy params.to", "8 copy id", "9 w retry", "9 w workflow"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("problems:\n got %q\nwant %q\n%v", got, want, err)
	}
	first := strings.SplitN(err.Error(), "\n", 2)[0]
	if wantMsg := `template t: line 6: step "copy": job: unknown job type "util.nope"`; first != wantMsg {
		t.Errorf("message %q, want %q", first, wantMsg)
	}
}

func TestParseDesignExample(t *testing.T) {
	data, err := os.ReadFile("testdata/design.yaml")
	if err != nil {
		t.Fatal(err)
	}
	tp, err := Parse(data, testOptions())
	if err != nil {
		t.Fatalf("the DESIGN §9 example is refused:\n%v", err)
	}
	if tp.Name != "ingest" || tp.Version != 1 || len(tp.Steps) != 8 {
		t.Fatalf("got name %q version %d, %d steps", tp.Name, tp.Version, len(tp.Steps))
	}
	if got := tp.ArgNames; len(got) != 2 || got[0] != "path" || got[1] != "archive" {
		t.Errorf("ArgNames = %q", got)
	}
	sum := tp.Find("sum")
	if sum == nil || sum.Kind != KindJob || sum.JobType != "util.checksum" || sum.Retry.MaxAttempts != 3 || sum.Retry.Backoff.String() != "2s" || sum.Timeout.String() != "10m0s" {
		t.Errorf("sum = %+v", sum)
	}
	fan := tp.Find("fan")
	if fan == nil || fan.As != "n" || fan.Concurrency != 2 || len(fan.Do) != 1 {
		t.Errorf("fan = %+v", fan)
	}
	if b := tp.Find("both"); b == nil || !b.FailFast || len(b.Children) != 2 {
		t.Errorf("both = %+v", b)
	}
	g := tp.Find("guarded")
	if g == nil || g.Kind != KindTry || len(g.Children) != 1 || len(g.Catch) != 1 || g.OnError.Action != OnErrorFail {
		t.Errorf("guarded = %+v", g)
	}
	if c := tp.Find("child"); c == nil || c.Template != "other-template" {
		t.Errorf("child = %+v", c)
	}
	if p := tp.Find("b2"); p == nil || p.Path != "steps[3].parallel[1].sequence[1]" {
		t.Errorf("b2 = %+v", p)
	}
	var ids []string
	tp.Walk(func(a *Activity) bool { ids = append(ids, a.ID); return true })
	if got := strings.Join(ids, " "); got != "sum big copy note fan wait both a b b1 b2 guarded bad recover child pause stop boom" {
		t.Errorf("walk order: %s", got)
	}
	// Without KnownTemplate knowing it, other-template is refused.
	opts := testOptions()
	opts.KnownTemplate = func(string) bool { return false }
	if _, err := Parse(data, opts); err == nil || !strings.Contains(err.Error(), `step "child": workflow: unknown template "other-template"`) {
		t.Errorf("unknown sub-template: %v", err)
	}
}

func TestGeneratedIDs(t *testing.T) {
	tp, err := Parse([]byte(doc(`  - log: one
  - id: seq
    sequence:
      - log: two
      - {id: j, job: noop, on_error: [{log: "${{ error.message }}"}]}
  - delay: 1s
`)), testOptions())
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	tp.Walk(func(a *Activity) bool {
		got = append(got, fmt.Sprintf("%s:%s:%v", a.ID, a.Path, a.AutoID))
		return true
	})
	want := "s1:steps[0]:true seq:steps[1]:false s3:steps[1].sequence[0]:true j:steps[1].sequence[1]:false s5:steps[1].sequence[1].on_error[0]:true s6:steps[2]:true"
	if strings.Join(got, " ") != want {
		t.Errorf("ids:\n got %s\nwant %s", strings.Join(got, " "), want)
	}
	if tp.Find("s5") == nil || tp.Find("nope") != nil {
		t.Error("Find")
	}
}
