package template

import (
	"bytes"
	"strings"
	"testing"
)

func mustParse(t *testing.T, src string) *Template {
	t.Helper()
	tp, err := Parse([]byte(src), testOptions())
	if err != nil {
		t.Fatalf("%v\n%s", err, src)
	}
	return tp
}

func canonical(t *testing.T, tp *Template) string {
	t.Helper()
	c, err := tp.Canonical()
	if err != nil {
		t.Fatal(err)
	}
	return string(c)
}

func TestCanonicalIgnoresSpellingAndDefaults(t *testing.T) {
	a := mustParse(t, `name: t
args:
  b: {type: int, default: 2}
  a: {type: string}
steps:
  - id: f
    foreach: "[1]"
    do: [{log: "${{ item }}"}]
  - {id: p, parallel: [{id: j, job: noop, params: {y: 1, x: "<&>"}}]}
`)
	b := mustParse(t, `{"name": "t",
 "args": {"a": {"type": "string", "required": false}, "b": {"default": 2, "type": "int"}},
 "concurrency": "allow",
 "steps": [
   {"foreach": "[1]", "id": "f", "as": "item", "concurrency": 1, "do": [{"log": "${{ item }}", "on_error": "fail"}]},
   {"id": "p", "fail_fast": true, "parallel": [{"job": "noop", "id": "j", "params": {"x": "<&>", "y": 1}}]}]}
`)
	ca, cb := canonical(t, a), canonical(t, b)
	if ca != cb {
		t.Fatalf("canonical forms differ:\n%s\n%s", ca, cb)
	}
	want := `{"name":"t","args":{"a":{"type":"string"},"b":{"type":"int","default":2}},"steps":[{"id":"f","foreach":"[1]","do":[{"log":"${{ item }}"}]},{"id":"p","parallel":[{"id":"j","job":"noop","params":{"x":"<&>","y":1}}]}]}`
	if ca != want {
		t.Errorf("canonical:\n got %s\nwant %s", ca, want)
	}
	// Export keeps the declared order of args.
	y, err := a.YAML()
	if err != nil {
		t.Fatal(err)
	}
	if i, j := bytes.Index(y, []byte("  b:")), bytes.Index(y, []byte("  a:")); i < 0 || j < i {
		t.Errorf("args out of declared order:\n%s", y)
	}
}

func TestCanonicalSeesChanges(t *testing.T) {
	base := "name: t\nsteps:\n  - {id: j, job: noop, params: {sleep: 1s}}\n"
	c0 := canonical(t, mustParse(t, base))
	for _, changed := range []string{
		strings.Replace(base, "1s", "2s", 1),
		strings.Replace(base, "noop", "exec", 1),
		strings.Replace(base, "id: j", "id: k", 1),
		strings.Replace(base, "}}", "}, priority: 1}", 1),
		base + "description: x\n",
	} {
		if canonical(t, mustParse(t, changed)) == c0 {
			t.Errorf("canonical form does not see the change in\n%s", changed)
		}
	}
}

func TestContentHash(t *testing.T) {
	v1 := mustParse(t, "name: t\nversion: 1\nsteps: [{log: hi}]\n")
	v2 := mustParse(t, "name: t\nversion: 2\nsteps: [{log: hi}]\n")
	other := mustParse(t, "name: t\nversion: 1\nsteps: [{log: ho}]\n")
	h1, _ := v1.ContentHash()
	h2, _ := v2.ContentHash()
	h3, _ := other.ContentHash()
	if h1 != h2 || h1 == h3 || len(h1) != 64 {
		t.Errorf("hashes %s %s %s", h1, h2, h3)
	}
	if canonical(t, v1) == canonical(t, v2) {
		t.Error("canonical form drops the version")
	}
}

func TestRoundTripAwkwardValues(t *testing.T) {
	tp := mustParse(t, `name: odd.name-1
description: "multi\nline: with 'quotes' and \"doubles\" # not a comment"
args:
  any: {type: any, default: {"": null, "a b": [1, 2.5, true, "yes", "1", "null", ""]}}
  when: {type: duration, default: 0s}
steps:
  - id: j
    job: exec
    params:
      argv: ["-v", "*", "&x", "!tag", "${{ args.when }}", "$${{ kept }}"]
      big: 9007199254740993
      neg: -0.0
      text: |
        line one
          indented ${{ 'two' }}
    selector: {gpu: true, site: 3}
    priority: -5
    timeout: 90m
    on_error: continue
  - {id: w, workflow: child, timeout: 1h, args: {x: "${{ steps.j.result }}"}}
  - {if: "true", then: [{log: "  spaced  "}], on_error: [{fail: "${{ error.message }}"}]}
output:
  "weird key": "${{ args.any }}"
`)
	roundTrip(t, tp, testOptions())
}
