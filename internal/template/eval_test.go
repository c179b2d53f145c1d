package template

import (
	"os"
	"reflect"
	"sync"
	"testing"
)

// TestEvaluateIngest walks the ingest example as the interpreter will:
// bind args, build job params, read results, compute the output.
func TestEvaluateIngest(t *testing.T) {
	data, err := os.ReadFile("../../examples/templates/ingest.yaml")
	if err != nil {
		t.Fatal(err)
	}
	tp, err := Parse(data, ParseOptions{KnownJobType: func(s string) bool { return builtinJobTypes[s] }})
	if err != nil {
		t.Fatal(err)
	}
	args, err := tp.BindArgs(map[string]any{"path": "/inbox/news 1.wav"})
	if err != nil {
		t.Fatal(err)
	}
	env := Env{Args: args, Instance: InstanceView{ID: 7, Name: "folder/inbox/x", Priority: 10}}
	if key, err := tp.ConcurrencyKey.EvalString(env); err != nil || key != "/inbox/news 1.wav" {
		t.Errorf("concurrency key %q, %v", key, err)
	}
	if tp.Concurrency != ConcurrencySkip || tp.Timeout.String() != "2h0m0s" {
		t.Errorf("concurrency %q timeout %v", tp.Concurrency, tp.Timeout)
	}
	env.Steps = map[string]StepView{
		"sum":    {State: "succeeded", Result: map[string]any{"checksum": "ab12", "size": 2048.0}},
		"copy":   {State: "succeeded", Result: map[string]any{}},
		"verify": {State: "succeeded", Result: map[string]any{"checksum": "ab12", "size": 2048.0}},
	}
	var wg sync.WaitGroup
	for range 8 { // a Template is shared by every goroutine of a worker
		wg.Add(1)
		go func() {
			defer wg.Done()
			params, err := tp.Find("copy").Params.Eval(env)
			want := map[string]any{"from": "/inbox/news 1.wav", "to": "loc:archive/news 1.wav"}
			if err != nil || !reflect.DeepEqual(params, want) {
				t.Errorf("copy params %#v, %v", params, err)
			}
			differs, err := tp.Find("same").Cond.EvalBool(env)
			if err != nil || differs {
				t.Errorf("same: %v, %v", differs, err)
			}
		}()
	}
	wg.Wait()
	out := map[string]any{}
	for name, v := range tp.Output {
		r, err := v.Eval(env)
		if err != nil {
			t.Fatalf("output %s: %v", name, err)
		}
		out[name] = r
	}
	want := map[string]any{"archived": "loc:archive/news 1.wav", "checksum": "ab12", "size": 2048.0}
	if !reflect.DeepEqual(out, want) {
		t.Errorf("output %#v", out)
	}
	if msg, err := tp.Find("s6").Message.EvalString(env); err != nil || msg != "archived news 1.wav (2048 bytes)" {
		t.Errorf("log %q, %v", msg, err)
	}
}
