package workflow

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"testing"

	"github.com/dpe-engine/dpe/internal/model"
	"github.com/dpe-engine/dpe/internal/store"
)

// retry applies a workflow retry to the simulated instance exactly as the
// engines do: the store's rules (store/retry.go) decide, the sim writes.
func (s *sim) retry() {
	s.t.Helper()
	if err := store.CheckRetryInstance(s.inst, s.inst.ParentID != 0); err != nil {
		s.t.Fatalf("retry refused: %v", err)
	}
	in := s.input()
	plan, err := store.PlanRetry(in.Steps, in.Jobs, in.Children)
	if err != nil {
		s.t.Fatalf("plan retry: %v", err)
	}
	again, _ := store.PlanRetry(in.Steps, in.Jobs, in.Children)
	if !reflect.DeepEqual(plan, again) {
		s.t.Fatalf("retry plan is not deterministic:\n%+v\n%+v", plan, again)
	}
	for _, p := range plan.Drop {
		delete(s.steps, p)
	}
	for _, st := range plan.Reset {
		s.steps[st.Path] = st
	}
	for _, id := range plan.Jobs {
		j, err := store.RetryJob(s.jobs[id], s.now)
		if err != nil {
			s.t.Fatalf("retry job %d: %v", id, err)
		}
		s.jobs[id] = j
	}
	for _, id := range plan.Children {
		s.children[id].retry()
	}
	s.inst = store.RetryInstance(s.inst, s.now)
}

// stepStates is path → state of the records, for comparing two runs.
func (s *sim) stepStates() map[string]model.StepState {
	out := make(map[string]model.StepState, len(s.steps))
	for p, st := range s.steps {
		out[p] = st.State
	}
	return out
}

// flaky fails jobs whose param "n" is in bad until fixed is set.
type flaky struct {
	bad   map[float64]bool
	fixed bool
	runs  map[int64]int // how often each job ran
}

func (f *flaky) outcome(j model.Job) (json.RawMessage, error) {
	f.runs[j.ID]++
	var p map[string]any
	_ = json.Unmarshal(j.Params, &p)
	if n, _ := p["n"].(float64); f.bad[n] && !f.fixed {
		return nil, errors.New("disk full")
	}
	return json.RawMessage(fmt.Sprintf(`{"n":%v}`, p["n"])), nil
}

const retrySrc = `
name: batch
steps:
  - {id: prep, job: noop, params: {n: 0}}
  - id: fan
    foreach: "[1, 2, 3]"
    as: n
    do:
      - {id: work, job: noop, params: {n: "${{ n }}"}, retry: {max_attempts: 1}}
  - id: guarded
    try:
      - {id: bad, job: noop, params: {n: 9}, retry: {max_attempts: 1}}
    catch:
      - {id: recover, set: {recovered: "${{ error.step }}"}}
  - {id: last, job: noop, params: {n: 4}, retry: {max_attempts: 1}}
  - {id: done, set: {total: "${{ steps.last.result.n }}"}}
`

// TestRetryResumesFailedSteps: a failed instance, retried, runs again only
// the steps that failed it (the same jobs, not new ones), keeps the
// finished ones and a handled failure as they were, and ends as a run that
// never failed would, deciding deterministically on the way.
func TestRetryResumesFailedSteps(t *testing.T) {
	tpl := parse(t, retrySrc)

	// The reference: everything works at once (bad always fails; the
	// catch handles it).
	clean := &flaky{bad: map[float64]bool{9: true}, runs: map[int64]int{}}
	ref := newSim(t, tpl, nil)
	ref.outcome = clean.outcome
	if inst := ref.run(); inst.State != model.InstanceSucceeded {
		t.Fatalf("reference run: %s %s", inst.State, inst.Error)
	}

	// fan[1] fails: the instance fails after the foreach.
	f := &flaky{bad: map[float64]bool{2: true, 9: true}, runs: map[int64]int{}}
	s := newSim(t, tpl, nil)
	s.outcome = f.outcome
	if inst := s.run(); inst.State != model.InstanceFailed || inst.Error != "step work: disk full" {
		t.Fatalf("first run: %s %q", inst.State, inst.Error)
	}
	jobsBefore := len(s.jobs)

	// n=2 works now, n=9 still fails (its failure was handled).
	f.bad[2] = false
	s.retry()
	if s.inst.State != model.InstanceRunning || s.inst.Error != "" {
		t.Fatalf("after retry: %s %q", s.inst.State, s.inst.Error)
	}
	if st := s.steps["fan"]; st.State != model.StepRunning {
		t.Fatalf("fan after retry: %s, want running", st.State)
	}
	if inst := s.run(); inst.State != model.InstanceSucceeded {
		t.Fatalf("retried run: %s %s", inst.State, inst.Error)
	}
	// The sim refuses a job key submitted twice: no step submitted anew.
	// Only steps not reached before (fan[2], a foreach runs one at a time
	// by default, then guarded/bad and last) added jobs.
	if added := len(s.jobs) - jobsBefore; added != 3 {
		var steps []string
		for _, j := range s.jobs {
			steps = append(steps, j.Step)
		}
		t.Errorf("%d jobs submitted after the retry, want 3 (fan[2]/work, guarded/bad, last); jobs of %v", added, steps)
	}
	for id, j := range s.jobs {
		want := 1
		if j.Step == "fan[1]/work" {
			want = 2 // failed, then retried in place
		}
		if f.runs[id] != want {
			t.Errorf("job %d (%s) ran %d times, want %d", id, j.Step, f.runs[id], want)
		}
	}
	if !reflect.DeepEqual(s.vars(), ref.vars()) {
		t.Errorf("vars %v, a run that never failed has %v", s.vars(), ref.vars())
	}
	if !reflect.DeepEqual(s.stepStates(), ref.stepStates()) {
		t.Errorf("step states %v, a run that never failed has %v", s.stepStates(), ref.stepStates())
	}
}

// TestRetryDecidesFromRecords: the first decision after a retry depends
// only on the records: two workers deciding from the same retried records
// (one after a crash) reach the same advance, and it submits nothing.
func TestRetryDecidesFromRecords(t *testing.T) {
	tpl := parse(t, retrySrc)
	f := &flaky{bad: map[float64]bool{2: true, 9: true}, runs: map[int64]int{}}
	s := newSim(t, tpl, nil)
	s.outcome = f.outcome
	s.run()
	s.retry()
	in := s.input()
	a, err := Decide(in)
	if err != nil {
		t.Fatal(err)
	}
	// A second worker reads the same records (copied, as from the DB).
	var steps []model.Step
	b, _ := json.Marshal(in.Steps)
	_ = json.Unmarshal(b, &steps)
	in2 := in
	in2.Steps = steps
	b2, err := Decide(in2)
	if err != nil {
		t.Fatal(err)
	}
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b2)
	if string(ja) != string(jb) {
		t.Fatalf("two decisions from the same retried records differ:\n%s\n%s", ja, jb)
	}
	if len(a.Jobs) != 0 || a.State != model.InstanceRunning {
		t.Fatalf("first decision after the retry: %d jobs, state %s; want none (the retried job is queued) and running", len(a.Jobs), a.State)
	}
	if !sort.StringsAreSorted(a.Current) || len(a.Current) != 1 || a.Current[0] != "fan[1]/work" {
		t.Fatalf("current %v, want the retried step only", a.Current)
	}
}

// TestRetrySubWorkflowAndCancel: a retry reaches into a failed
// sub-workflow, and a canceled instance resumes too.
func TestRetrySubWorkflowAndCancel(t *testing.T) {
	child := parse(t, `
name: child
steps:
  - {id: ok, job: noop, params: {n: 1}}
  - {id: flaky, job: noop, params: {n: 2}, retry: {max_attempts: 1}}
`)
	parent := parse(t, `
name: parent
steps:
  - {id: sub, workflow: child}
  - {id: after, job: noop, params: {n: 3}}
`)
	f := &flaky{bad: map[float64]bool{2: true}, runs: map[int64]int{}}
	s := newSim(t, parent, nil)
	s.templates["child"] = child
	s.outcome = f.outcome
	if inst := s.run(); inst.State != model.InstanceFailed {
		t.Fatalf("first run: %s", inst.State)
	}
	f.fixed = true
	s.retry()
	for _, c := range s.children {
		if c.inst.State != model.InstanceRunning {
			t.Fatalf("child after the parent's retry: %s", c.inst.State)
		}
	}
	if inst := s.run(); inst.State != model.InstanceSucceeded {
		t.Fatalf("retried run: %s %s", inst.State, inst.Error)
	}
	if len(s.children) != 1 {
		t.Fatalf("%d children, want the one retried in place", len(s.children))
	}

	// Canceled while a job ran: resumes from the canceled step.
	long := parse(t, `
name: long
steps:
  - {id: a, job: noop}
  - {id: b, job: noop}
`)
	c := newSim(t, long, nil)
	c.step() // a submitted
	c.inst.CancelAsked = true
	if inst := c.run(); inst.State != model.InstanceCanceled {
		t.Fatalf("cancel: %s", inst.State)
	}
	c.retry()
	if c.inst.CancelAsked {
		t.Fatal("cancel request kept by the retry")
	}
	if inst := c.run(); inst.State != model.InstanceSucceeded || len(c.jobs) != 2 {
		t.Fatalf("retried canceled run: %s, %d jobs", inst.State, len(c.jobs))
	}
}

// TestRetryKeepsHandledFailures: a failure a try/catch handled is history,
// not a step to retry: only the step that failed the instance runs again.
func TestRetryKeepsHandledFailures(t *testing.T) {
	tpl := parse(t, retrySrc)
	f := &flaky{bad: map[float64]bool{4: true, 9: true}, runs: map[int64]int{}}
	s := newSim(t, tpl, nil)
	s.outcome = f.outcome
	if inst := s.run(); inst.State != model.InstanceFailed || inst.Error != "step last: disk full" {
		t.Fatalf("first run: %s %q", inst.State, inst.Error)
	}
	f.bad[4] = false
	s.retry()
	if st := s.steps["guarded/bad"]; st.State != model.StepFailed {
		t.Fatalf("handled failure after the retry: %s, want failed as it was", st.State)
	}
	if inst := s.run(); inst.State != model.InstanceSucceeded {
		t.Fatalf("retried run: %s %s", inst.State, inst.Error)
	}
	for id, j := range s.jobs {
		want := 1
		if j.Step == "last" {
			want = 2
		}
		if f.runs[id] != want {
			t.Errorf("job %d (%s) ran %d times, want %d", id, j.Step, f.runs[id], want)
		}
	}
	if v := s.vars(); v["recovered"] != "bad" || v["total"] != float64(4) {
		t.Errorf("vars %v", v)
	}
}
