package template

import (
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dpe-engine/dpe/internal/model"
)

// triggerEnv is what a trigger firing gives its args: a folder event, a
// table row and a schedule time (not in UTC, to see it converted).
func triggerEnv() Env {
	return Env{
		Event:    map[string]any{"path": "/a", "name": "b.txt"},
		Row:      map[string]any{"id": 7, "score": 1.5},
		FireTime: time.Date(2024, 3, 5, 7, 8, 9, 0, time.FixedZone("CET", 3600)),
	}
}

func TestCompileData(t *testing.T) {
	cases := []struct {
		name    string
		in      any
		want    any
		literal bool
	}{
		{"int", 3, 3, true},
		{"float", 1.5, 1.5, true},
		{"integral float from JSON", 3.0, 3, true},
		{"bool", true, true, true},
		{"null", nil, nil, true},
		{"plain string", "hello", "hello", true},
		{"string that looks like a number", "3", "3", true},
		{"string that looks like a bool", "yes", "yes", true},
		{"escaped mark", "$${{ event.path }}", "${{ event.path }}", true},
		{"literal map", map[string]any{"a": 1, "b": []any{"x", nil}}, map[string]any{"a": 1, "b": []any{"x", nil}}, true},
		{"merge-looking key from JSON", map[string]any{"<<": "x"}, map[string]any{"<<": "x"}, true},
		{"json.Number", map[string]any{"n": json.Number("12"), "f": json.Number("1.5")}, map[string]any{"n": 12, "f": 1.5}, true},
		{"event path", "${{ event.path }}", "/a", false},
		{"interpolated row id", "x-${{ row.id }}", "x-7", false},
		{"row id keeps its type", "${{ row.id }}", 7, false},
		{"row float keeps its type", "${{ row.score }}", 1.5, false},
		{"absent event field", "${{ event.nope ?? 'none' }}", "none", false},
		{"helper function", "${{ stem(event.name) }}", "b", false},
		{"fire_time interpolated", "at ${{ fire_time }}", "at 2024-03-05T06:08:09Z", false},
		{"fire_time alone", "${{ fire_time }}", "2024-03-05T06:08:09Z", false},
		{"fire_time method", "${{ fire_time.Format('2006-01-02') }}", "2024-03-05", false},
		{"fire_time arithmetic", "${{ fire_time + duration('1h') }}", "2024-03-05T07:08:09Z", false},
		{"fire_time unix", "${{ fire_time.Unix() }}", 1709618889, false},
		{"list", []any{"${{ event.name }}", "x"}, []any{"b.txt", "x"}, false},
		{"nested", map[string]any{
			"path":  "${{ event.path }}",
			"when":  "${{ fire_time }}",
			"id":    "${{ row.id }}",
			"fixed": 3,
			"list":  []any{"${{ event.name }}", "x"},
			"deep":  map[string]any{"k": []any{map[string]any{"v": "${{ row.id + 1 }}"}}},
		}, map[string]any{
			"path":  "/a",
			"when":  "2024-03-05T06:08:09Z",
			"id":    7,
			"fixed": 3,
			"list":  []any{"b.txt", "x"},
			"deep":  map[string]any{"k": []any{map[string]any{"v": 8}}},
		}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v, err := CompileData(c.in, "on.created.args")
			if err != nil {
				t.Fatalf("CompileData: %v", err)
			}
			if v.IsLiteral() != c.literal {
				t.Errorf("IsLiteral() = %v, want %v", v.IsLiteral(), c.literal)
			}
			got, err := v.Eval(triggerEnv())
			if err != nil {
				t.Fatalf("Eval: %v", err)
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("got %#v, want %#v", got, c.want)
			}
			if _, err := json.Marshal(got); err != nil {
				t.Errorf("result is not JSON: %v", err)
			}
		})
	}
}

func TestCompileDataRefuses(t *testing.T) {
	cases := []struct {
		name   string
		in     any
		field  string
		reason string
	}{
		{"args", map[string]any{"x": "${{ args.x }}"}, "on.created.args.x", "args: a trigger's args may read only event, row and fire_time"},
		{"vars", "${{ vars.y }}", "on.created.args", "vars: a trigger's args may read only"},
		{"steps", map[string]any{"list": []any{"ok", "v=${{ steps.a.result }}"}}, "on.created.args.list[1]", "steps: a trigger's args may read only"},
		{"error", map[string]any{"m": "${{ error.message }}"}, "on.created.args.m", "error: a trigger's args may read only"},
		{"instance", map[string]any{"i": "${{ instance.id }}"}, "on.created.args.i", "instance: a trigger's args may read only"},
		{"loop variable", map[string]any{"i": "${{ item }}"}, "on.created.args.i", "unknown name item"},
		{"now", map[string]any{"t": "${{ now() }}"}, "on.created.args.t", "unknown name now"},
		{"bad syntax", map[string]any{"path": "${{ event. }}"}, "on.created.args.path", "bad expression"},
		{"unclosed", map[string]any{"path": "${{ event.path"}, "on.created.args.path", "unterminated ${{"},
		{"empty expression", []any{"${{ }}"}, "on.created.args[0]", "empty ${{ }} expression"},
		{"non-string key", map[any]any{1: "x"}, "on.created.args", "keys must be strings"},
		{"not finite", map[string]any{"f": math.Inf(1)}, "on.created.args.f", "not a finite number"},
		{"not data", map[string]any{"f": func() {}}, "on.created.args", "cannot read the value"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := CompileData(c.in, "on.created.args")
			if err == nil {
				t.Fatal("accepted")
			}
			if !errors.Is(err, model.ErrInvalid) {
				t.Errorf("errors.Is(err, model.ErrInvalid) is false: %v", err)
			}
			var ve *ValidationError
			if !errors.As(err, &ve) || len(ve.Problems) != 1 {
				t.Fatalf("want a *ValidationError with one problem, got %#v", err)
			}
			p := ve.Problems[0]
			if p.Field != c.field || !strings.Contains(p.Reason, c.reason) {
				t.Errorf("problem %q, want field %q with %q", p.String(), c.field, c.reason)
			}
		})
	}
}

// TestCompileDataAllProblems checks that every refused expression is
// reported at once.
func TestCompileDataAllProblems(t *testing.T) {
	_, err := CompileData(map[string]any{"a": "${{ args.x }}", "b": "${{ vars.y }}", "c": "${{ event.path }}"}, "f")
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("got %v", err)
	}
	var fields []string
	for _, p := range ve.Problems {
		fields = append(fields, p.Field)
	}
	if !reflect.DeepEqual(fields, []string{"f.a", "f.b"}) {
		t.Errorf("problems on %v, want f.a and f.b", fields)
	}
}

// TestCompileDataConcurrent evaluates one compiled value from several
// goroutines, as a server does for events of one trigger.
func TestCompileDataConcurrent(t *testing.T) {
	v, err := CompileData(map[string]any{"p": "${{ event.path }}", "n": "n${{ row.id }}"}, "args")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got, err := v.Eval(Env{Event: map[string]any{"path": "/x"}, Row: map[string]any{"id": i}})
			want := map[string]any{"p": "/x", "n": "n" + string(rune('0'+i))}
			if err != nil || !reflect.DeepEqual(got, want) {
				t.Errorf("got %#v, %v", got, err)
			}
		}()
	}
	wg.Wait()
}
