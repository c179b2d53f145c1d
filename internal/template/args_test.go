package template

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/dpe-engine/dpe/internal/model"
)

const argsTemplate = `name: bind
args:
  path:  {type: string, required: true}
  count: {type: int, default: 1}
  ratio: {type: number, default: 0.5}
  force: {type: bool, default: false}
  files: {type: list, default: []}
  meta:  {type: map}
  wait:  {type: duration, default: 30s}
  extra: {type: any}
steps: [{log: hi}]
`

func TestBindArgs(t *testing.T) {
	tp, err := Parse([]byte(argsTemplate), ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defaults := map[string]any{"count": 1, "ratio": 0.5, "force": false, "files": []any{}, "wait": "30s"}
	with := func(kv ...any) map[string]any {
		m := map[string]any{}
		for k, v := range defaults {
			m[k] = v
		}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i].(string)] = kv[i+1]
		}
		return m
	}
	cases := []struct {
		name  string
		given map[string]any
		want  map[string]any
		bad   []string // fields at fault
	}{
		{"defaults", map[string]any{"path": "/a"}, with("path", "/a"), nil},
		{"all given", map[string]any{"path": "/a", "count": 3, "ratio": 2, "force": true, "files": []string{"x"}, "meta": map[string]int{"k": 1}, "wait": time.Minute, "extra": int64(5)},
			with("path", "/a", "count", 3, "ratio", 2.0, "force", true, "files", []any{"x"}, "meta", map[string]any{"k": 1}, "wait", "1m0s", "extra", 5), nil},
		{"JSON numbers", map[string]any{"path": "/a", "count": 4.0, "ratio": json.Number("0.25")}, with("path", "/a", "count", 4, "ratio", 0.25), nil},
		{"command-line strings", map[string]any{"path": "/a", "count": "7", "ratio": "1.5", "force": "true"}, with("path", "/a", "count", 7, "ratio", 1.5, "force", true), nil},
		{"nil is absent", map[string]any{"path": "/a", "count": nil}, with("path", "/a"), nil},
		{"missing required", map[string]any{}, nil, []string{"args.path"}},
		{"unknown arg", map[string]any{"path": "/a", "colour": "red"}, nil, []string{"args.colour"}},
		{"int not integral", map[string]any{"path": "/a", "count": 1.5}, nil, []string{"args.count"}},
		{"int from garbage", map[string]any{"path": "/a", "count": "many"}, nil, []string{"args.count"}},
		{"string given a number", map[string]any{"path": 3}, nil, []string{"args.path"}},
		{"bool given a number", map[string]any{"path": "/a", "force": 1}, nil, []string{"args.force"}},
		{"list given a string", map[string]any{"path": "/a", "files": "a.wav"}, nil, []string{"args.files"}},
		{"map given a list", map[string]any{"path": "/a", "meta": []any{1}}, nil, []string{"args.meta"}},
		{"bad duration", map[string]any{"path": "/a", "wait": "soon"}, nil, []string{"args.wait"}},
		{"several at once", map[string]any{"count": "x", "zzz": 1}, nil, []string{"args.zzz", "args.path", "args.count"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := tp.BindArgs(c.given)
			if c.bad == nil {
				if err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(got, c.want) {
					t.Fatalf("got  %#v\nwant %#v", got, c.want)
				}
				// Idempotent, also through JSON.
				again, err := tp.BindArgs(got)
				if err != nil || !reflect.DeepEqual(again, got) {
					t.Errorf("rebind: %#v, %v", again, err)
				}
				b, _ := json.Marshal(got)
				var back map[string]any
				_ = json.Unmarshal(b, &back)
				if again, err := tp.BindArgs(back); err != nil || !reflect.DeepEqual(again, got) {
					t.Errorf("rebind after JSON: %#v, %v", again, err)
				}
				return
			}
			if err == nil || !errors.Is(err, model.ErrInvalid) {
				t.Fatalf("err = %v, want one matching model.ErrInvalid", err)
			}
			var fields []string
			for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
				var fe *model.FieldError
				if !errors.As(e, &fe) {
					t.Fatalf("%T is not a *model.FieldError", e)
				}
				fields = append(fields, fe.Field)
			}
			if strings.Join(fields, " ") != strings.Join(c.bad, " ") {
				t.Errorf("fields %q, want %q (%v)", fields, c.bad, err)
			}
		})
	}
}

func TestBindArgsDefaultsAreCopies(t *testing.T) {
	tp, err := Parse([]byte("name: t\nargs:\n  l: {type: list, default: [1]}\nsteps: [{log: hi}]\n"), ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	a, _ := tp.BindArgs(nil)
	a["l"].([]any)[0] = 99
	b, _ := tp.BindArgs(nil)
	if b["l"].([]any)[0] != 1 {
		t.Error("changing bound args changed the template's default")
	}
}
