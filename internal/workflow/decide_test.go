package workflow

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/dpe-engine/dpe/internal/model"
)

func TestSequenceAndOutput(t *testing.T) {
	tpl := parse(t, `
name: seq
args:
  path: {type: string, required: true}
steps:
  - {id: sum, job: util.checksum, params: {path: "${{ args.path }}"}}
  - {id: copy, job: util.copy, params: {from: "${{ args.path }}", to: "/archive/${{ basename(args.path) }}"}}
output:
  first: "${{ steps.sum.result.ok }}"
`)
	s := newSim(t, tpl, map[string]any{"path": "/in/a.wav"})
	inst := s.run()
	if inst.State != model.InstanceSucceeded {
		t.Fatalf("state %s: %s", inst.State, inst.Error)
	}
	if s.maxActive != 1 {
		t.Fatalf("a sequence ran %d jobs at once", s.maxActive)
	}
	copies := s.jobsOfType("util.copy")
	if len(copies) != 1 || !strings.Contains(string(copies[0].Params), `"to":"/archive/a.wav"`) {
		t.Fatalf("copy job %+v", copies)
	}
	if copies[0].Key != JobKey(1, "copy") || copies[0].Priority != 10 {
		t.Fatalf("copy key %q priority %d", copies[0].Key, copies[0].Priority)
	}
	if string(inst.Output) != `{"first":true}` {
		t.Fatalf("output %s", inst.Output)
	}
}

func TestIfElse(t *testing.T) {
	src := `
name: branch
args:
  big: {type: bool, default: false}
steps:
  - id: check
    if: "args.big"
    then: [{id: yes, set: {branch: "then"}}]
    else: [{id: no, set: {branch: "else"}}]
`
	for _, tc := range []struct {
		big  bool
		want string
	}{{true, "then"}, {false, "else"}} {
		s := newSim(t, parse(t, src), map[string]any{"big": tc.big})
		if inst := s.run(); inst.State != model.InstanceSucceeded {
			t.Fatalf("state %s: %s", inst.State, inst.Error)
		}
		if got := s.vars()["branch"]; got != tc.want {
			t.Fatalf("big=%v: branch %v, want %s", tc.big, got, tc.want)
		}
	}
}

func TestForeachConcurrency(t *testing.T) {
	tpl := parse(t, `
name: fan
steps:
  - id: fan
    foreach: "[1, 2, 3, 4, 5]"
    as: n
    concurrency: 2
    do:
      - {id: work, job: noop, params: {sleep: "${{ string(n * 10) + 'ms' }}"}}
`)
	s := newSim(t, tpl, nil)
	if inst := s.run(); inst.State != model.InstanceSucceeded {
		t.Fatalf("state %s: %s", inst.State, inst.Error)
	}
	if n := len(s.jobsOfType("noop")); n != 5 {
		t.Fatalf("%d jobs, want 5", n)
	}
	if s.maxActive != 2 {
		t.Fatalf("max %d jobs at once, want 2", s.maxActive)
	}
	if !strings.Contains(string(s.jobsOfType("noop")[4].Params), `"50ms"`) {
		t.Fatalf("last job params %s", s.jobsOfType("noop")[4].Params)
	}
}

func TestParallel(t *testing.T) {
	tpl := parse(t, `
name: par
steps:
  - id: both
    parallel:
      - {id: a, job: noop}
      - id: b
        sequence:
          - {id: b1, job: noop}
          - {id: b2, set: {done: true}}
`)
	s := newSim(t, tpl, nil)
	if inst := s.run(); inst.State != model.InstanceSucceeded {
		t.Fatalf("state %s: %s", inst.State, inst.Error)
	}
	if s.maxActive != 2 {
		t.Fatalf("parallel branches ran %d at once, want 2", s.maxActive)
	}
	if s.vars()["done"] != true {
		t.Fatalf("vars %v", s.vars())
	}
}

func TestTryCatchFinally(t *testing.T) {
	tpl := parse(t, `
name: guarded
steps:
  - id: guarded
    try:
      - {id: bad, job: noop, params: {fail: true}, retry: {max_attempts: 1}}
      - {id: never, job: noop}
    catch:
      - {id: recover, set: {recovered: "${{ error.step }}", why: "${{ error.message }}"}}
    finally:
      - {id: fin, set: {finally_ran: true}}
  - {id: after, job: noop}
`)
	s := newSim(t, tpl, nil)
	s.outcome = failWhen("fail")
	if inst := s.run(); inst.State != model.InstanceSucceeded {
		t.Fatalf("state %s: %s", inst.State, inst.Error)
	}
	v := s.vars()
	if v["recovered"] != "bad" || v["why"] != "asked to fail" || v["finally_ran"] != true {
		t.Fatalf("vars %v", v)
	}
	if n := len(s.jobsOfType("noop")); n != 2 { // bad and after; never is skipped
		t.Fatalf("%d noop jobs, want 2", n)
	}
}

func TestOnErrorAndFail(t *testing.T) {
	tpl := parse(t, `
name: onerr
steps:
  - {id: soft, job: noop, params: {fail: true}, on_error: continue}
  - id: handled
    job: noop
    params: {fail: true}
    on_error:
      - {id: note, set: {handled: "${{ error.step }}"}}
  - {id: stop, fail: "giving up after ${{ vars.handled }}"}
`)
	s := newSim(t, tpl, nil)
	s.outcome = failWhen("fail")
	inst := s.run()
	if inst.State != model.InstanceFailed || inst.Error != "step stop: giving up after handled" {
		t.Fatalf("state %s error %q", inst.State, inst.Error)
	}
}

func TestDelay(t *testing.T) {
	tpl := parse(t, `
name: wait
steps:
  - {id: pause, delay: 5s}
  - {id: done, set: {x: 1}}
`)
	s := newSim(t, tpl, nil)
	s.step()
	adv := s.advances[0]
	if adv.WakeAt == nil || !adv.WakeAt.Equal(t0.Add(5*time.Second)) || adv.State != model.InstanceRunning {
		t.Fatalf("first advance: %+v", adv)
	}
	if inst := s.run(); inst.State != model.InstanceSucceeded {
		t.Fatalf("state %s: %s", inst.State, inst.Error)
	}
}

func TestSubWorkflow(t *testing.T) {
	child := parse(t, `
name: child
args:
  x: {type: int, required: true}
steps:
  - {id: work, job: noop}
output:
  doubled: "${{ args.x * 2 }}"
`)
	parent := parse(t, `
name: parent
steps:
  - {id: sub, workflow: child, args: {x: 21}}
  - {id: use, set: {got: "${{ steps.sub.result.doubled }}"}}
`)
	s := newSim(t, parent, nil)
	s.templates["child"] = child
	if inst := s.run(); inst.State != model.InstanceSucceeded {
		t.Fatalf("state %s: %s", inst.State, inst.Error)
	}
	if got := s.vars()["got"]; got != float64(42) {
		t.Fatalf("got %v (%T)", got, got)
	}
	for _, c := range s.children {
		if c.inst.Name != ChildName("i1", "sub") {
			t.Fatalf("child name %q", c.inst.Name)
		}
	}
}

func TestCancel(t *testing.T) {
	tpl := parse(t, `
name: long
steps:
  - {id: a, job: noop}
  - {id: b, job: noop}
`)
	s := newSim(t, tpl, nil)
	s.step() // a submitted
	s.inst.CancelAsked = true
	in := s.input()
	adv, err := Decide(in)
	if err != nil {
		t.Fatal(err)
	}
	if adv.State != model.InstanceCanceled || len(adv.CancelJobs) != 1 {
		t.Fatalf("advance %+v", adv)
	}
}

// TestNesting: foreach inside parallel inside try, with a failure in one
// iteration recovered by the catch.
func TestNesting(t *testing.T) {
	tpl := parse(t, `
name: nested
steps:
  - id: outer
    try:
      - id: par
        parallel:
          - id: loop
            foreach: "['a', 'b', 'c']"
            concurrency: 2
            do:
              - {id: each, job: noop, params: {fail: "${{ item == 'c' }}"}}
          - {id: side, job: noop}
    catch:
      - {id: caught, set: {caught: "${{ error.step }}"}}
`)
	s := newSim(t, tpl, nil)
	s.outcome = failWhen("fail")
	if inst := s.run(); inst.State != model.InstanceSucceeded {
		t.Fatalf("state %s: %s", inst.State, inst.Error)
	}
	if s.vars()["caught"] != "each" {
		t.Fatalf("vars %v", s.vars())
	}
	if n := len(s.jobsOfType("noop")); n != 4 {
		t.Fatalf("%d jobs, want 4", n)
	}
	if s.maxActive > 3 {
		t.Fatalf("%d at once: foreach limit 2 + side 1", s.maxActive)
	}
}

// TestReplayAfterCrash: a worker that decided but died before committing
// costs nothing: deciding again from the same records gives the same jobs
// with the same keys, and a decision over records that already hold the
// job does not submit it again.
func TestReplayAfterCrash(t *testing.T) {
	tpl := parse(t, `
name: crash
steps:
  - {id: a, job: noop}
  - {id: b, job: noop}
`)
	s := newSim(t, tpl, nil)
	lost, err := Decide(s.input()) // decided, never committed
	if err != nil {
		t.Fatal(err)
	}
	s.step()
	if len(lost.Jobs) != 1 || len(s.advances[0].Jobs) != 1 || lost.Jobs[0].Key != s.advances[0].Jobs[0].Key {
		t.Fatalf("replayed decision differs: %+v vs %+v", lost.Jobs, s.advances[0].Jobs)
	}
	// Records hold job a now: a second decision before it ends submits nothing.
	again, _ := Decide(s.input())
	if len(again.Jobs) != 0 {
		t.Fatalf("resubmitted %+v", again.Jobs)
	}
	if inst := s.run(); inst.State != model.InstanceSucceeded {
		t.Fatalf("state %s", inst.State)
	}
	var keys []string
	for _, j := range s.jobs {
		keys = append(keys, j.Key)
	}
	if len(keys) != 2 {
		t.Fatalf("jobs %v", keys)
	}
	_ = json.Valid
}
