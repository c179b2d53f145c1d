// Package workflow is the durable workflow interpreter. Decide is a pure
// function: from a template, an instance and the durable records of its
// steps (plus the states of the jobs and child instances those steps wait
// for) it computes what to commit next — finished steps, jobs to submit,
// children to start, timers — as one store.Advance. A worker applies the
// advance in one transaction under its lease epoch, so a worker that dies
// costs at most the decision in flight: the next worker decides again from
// the same records and reaches the same advance. Jobs and children carry
// deterministic keys and names (derived from the instance and the step's
// path), so a decision repeated after a crash finds them instead of
// creating them twice.
package workflow

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/dpe-engine/dpe/internal/model"
	"github.com/dpe-engine/dpe/internal/template"
)

// Input is everything Decide reads.
type Input struct {
	Template *template.Template
	Instance model.Instance
	Steps    []model.Step
	// Jobs and Children hold the jobs and child instances that running
	// steps wait for, by id.
	Jobs     map[int64]model.Job
	Children map[int64]model.Instance
	Now      time.Time
	// Context, when set, stops the expressions of a decision when it ends
	// (the worker is stopping): Decide then returns its error and no
	// advance, so a shutdown never fails a step. Nil never stops one.
	Context context.Context
}

// JobKey is the idempotency key of the job of the step at path.
func JobKey(instanceID int64, path string) string {
	return "wf:" + strconv.FormatInt(instanceID, 10) + ":" + path
}

// ChildName is the unique name of the sub-workflow started by the step at
// path.
func ChildName(parent, path string) string { return parent + "/" + path }

// outcome of an activity so far.
type outcome int

const (
	pending outcome = iota // still running, or not started for lack of a slot
	ok
	failed
)

type result struct {
	st  outcome
	err *template.ErrorView // failed only
}

var okResult = result{st: ok}

func failure(step, format string, args ...any) result {
	return result{st: failed, err: &template.ErrorView{Step: step, Message: fmt.Sprintf(format, args...)}}
}

// run is one decision in progress.
type run struct {
	in      Input
	args    map[string]any
	vars    map[string]any
	steps   map[string]model.Step // records as they stand, with this pass's changes
	started map[string]bool       // foreach iteration prefixes that have records
	out     model.Advance
	changed map[string]bool
	current []string
	wake    *time.Time
	done    int // finished leaf steps, for progress
	active  int // running leaf steps
}

// Decide computes the next advance of an instance. An error means the
// inputs are inconsistent (a bug or a corrupt record), not that the
// workflow failed: workflow failures are a failed state in the advance.
func Decide(in Input) (model.Advance, error) {
	r := &run{
		in:      in,
		steps:   make(map[string]model.Step, len(in.Steps)),
		started: make(map[string]bool),
		changed: make(map[string]bool),
		vars:    map[string]any{},
	}
	r.out = model.Advance{InstanceID: in.Instance.ID, Worker: in.Instance.Worker, Epoch: in.Instance.Epoch, WakeSeq: in.Instance.WakeSeq}
	for _, s := range in.Steps {
		r.steps[s.Path] = s
		r.markStarted(s.Path)
	}
	var given map[string]any
	if len(in.Instance.Args) > 0 {
		if err := json.Unmarshal(in.Instance.Args, &given); err != nil {
			return r.out, fmt.Errorf("instance %d: args: %w", in.Instance.ID, err)
		}
	}
	args, err := in.Template.BindArgs(given)
	if err != nil {
		r.finish(model.InstanceFailed, nil, fmt.Sprintf("arguments: %v", err))
		return r.out, nil
	}
	r.args = args
	if len(in.Instance.Vars) > 0 {
		var v any
		if err := jsonUnmarshalNumber(in.Instance.Vars, &v); err != nil {
			return r.out, fmt.Errorf("instance %d: vars: %w", in.Instance.ID, err)
		}
		if m, ok := v.(map[string]any); ok {
			r.vars = m
		}
	}

	if in.Instance.CancelAsked {
		r.cancelUnder("", true)
		r.finish(model.InstanceCanceled, nil, "canceled")
		return r.out, nil
	}
	if t := in.Template.Timeout; t > 0 && in.Instance.StartedAt != nil && !in.Now.Before(in.Instance.StartedAt.Add(t)) {
		r.cancelUnder("", true)
		r.finish(model.InstanceFailed, nil, fmt.Sprintf("timed out after %s", t))
		return r.out, nil
	}

	res := r.list(in.Template.Steps, "", scope{})
	if in.Context != nil && in.Context.Err() != nil {
		// An expression may have been stopped half way: this decision is
		// not the one the records call for.
		return r.out, fmt.Errorf("instance %d: decision stopped: %w", in.Instance.ID, in.Context.Err())
	}
	switch res.st {
	case ok:
		out, errMsg := r.output()
		if errMsg != "" {
			r.finish(model.InstanceFailed, nil, errMsg)
		} else {
			r.finish(model.InstanceSucceeded, out, "")
		}
	case failed:
		r.cancelUnder("", false)
		r.finish(model.InstanceFailed, nil, describe(res.err))
	default:
		r.out.State = model.InstanceRunning
		r.out.Current = r.current
		r.out.WakeAt = r.wake
		r.out.Progress = r.progress()
	}
	r.flush()
	return r.out, nil
}

func describe(e *template.ErrorView) string {
	if e == nil {
		return "failed"
	}
	if e.Step == "" {
		return e.Message
	}
	return "step " + e.Step + ": " + e.Message
}

// finish ends the instance.
func (r *run) finish(state model.InstanceState, output json.RawMessage, errMsg string) {
	r.out.State = state
	r.out.Output = output
	r.out.Error = errMsg
	r.out.Current = nil
	r.out.WakeAt = nil
	r.out.Progress = 100
	r.flush()
}

// flush moves changed records and vars into the advance (idempotent).
func (r *run) flush() {
	paths := make([]string, 0, len(r.changed))
	for p := range r.changed {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	r.out.Steps = r.out.Steps[:0]
	for _, p := range paths {
		r.out.Steps = append(r.out.Steps, r.steps[p])
	}
	vars, _ := json.Marshal(r.vars)
	r.out.Vars = vars
}

func (r *run) progress() int {
	total := r.done + r.active + r.remainingLeaves()
	if total == 0 {
		return 0
	}
	return min(99, 100*r.done/total)
}

// remainingLeaves estimates leaf activities not started yet (outside
// foreach bodies, whose size is unknown until they run).
func (r *run) remainingLeaves() int {
	n := 0
	r.in.Template.Walk(func(a *template.Activity) bool {
		if a.Kind == template.KindForeach {
			return false
		}
		if isLeaf(a) {
			if _, ok := r.steps[a.ID]; !ok && !r.anyRecordWithID(a.ID) {
				n++
			}
		}
		return true
	})
	return n
}

func (r *run) anyRecordWithID(id string) bool {
	for p := range r.steps {
		if p == id || strings.HasSuffix(p, "/"+id) {
			return true
		}
	}
	return false
}

func isLeaf(a *template.Activity) bool {
	switch a.Kind {
	case template.KindJob, template.KindDelay, template.KindWorkflow, template.KindSet, template.KindLog, template.KindFail:
		return true
	}
	return false
}

// output evaluates the template's output map.
func (r *run) output() (json.RawMessage, string) {
	if len(r.in.Template.Output) == 0 {
		return nil, ""
	}
	env := r.env("", scope{})
	out := make(map[string]any, len(r.in.Template.Output))
	for k, v := range r.in.Template.Output {
		x, err := v.Eval(env)
		if err != nil {
			return nil, fmt.Sprintf("output.%s: %v", k, err)
		}
		out[k] = x
	}
	b, err := json.Marshal(out)
	if err != nil {
		return nil, fmt.Sprintf("output: %v", err)
	}
	return b, ""
}

// record stores a step record change.
func (r *run) record(s model.Step) {
	r.steps[s.Path] = s
	r.changed[s.Path] = true
	r.markStarted(s.Path)
}

// markStarted notes the foreach iterations a record lies in.
func (r *run) markStarted(path string) {
	for i := 0; i < len(path); i++ {
		if path[i] == ']' {
			r.started[path[:i+1]] = true
		}
	}
}

func (r *run) startRecord(a *template.Activity, path string) model.Step {
	return model.Step{Path: path, ID: a.ID, Kind: string(a.Kind), State: model.StepRunning, StartedAt: r.in.Now}
}

// end finishes a record with the result's outcome.
func (r *run) end(s model.Step, res result, value any) result {
	now := r.in.Now
	s.FinishedAt = &now
	s.WakeAt = nil
	switch res.st {
	case ok:
		s.State = model.StepSucceeded
		if value != nil {
			b, err := json.Marshal(value)
			if err != nil {
				return r.end(s, failure(s.ID, "result: %v", err), nil)
			}
			s.Result = b
		}
	case failed:
		s.State = model.StepFailed
		if res.err != nil {
			s.Error = res.err.Message
		}
	}
	r.record(s)
	return res
}

// cancelUnder stops what runs under prefix ("" = everything): running jobs
// and children are asked to stop, running records become canceled. With
// all set, it also covers records outside any block (instance cancel).
func (r *run) cancelUnder(prefix string, all bool) {
	paths := make([]string, 0)
	for p, s := range r.steps {
		if s.State != model.StepRunning {
			continue
		}
		if prefix != "" && p != prefix && !strings.HasPrefix(p, prefix+"/") && !strings.HasPrefix(p, prefix+"[") {
			continue
		}
		paths = append(paths, p)
	}
	sort.Strings(paths)
	now := r.in.Now
	for _, p := range paths {
		s := r.steps[p]
		if s.JobID != 0 {
			if j, ok := r.in.Jobs[s.JobID]; !ok || !j.State.Final() {
				r.out.CancelJobs = append(r.out.CancelJobs, s.JobID)
			}
		}
		if s.ChildID != 0 {
			if c, ok := r.in.Children[s.ChildID]; !ok || !c.State.Final() {
				r.out.CancelChildren = append(r.out.CancelChildren, s.ChildID)
			}
		}
		s.State = model.StepCanceled
		s.FinishedAt = &now
		s.WakeAt = nil
		r.record(s)
	}
	_ = all
}

func (r *run) setWake(t time.Time) {
	if r.wake == nil || t.Before(*r.wake) {
		r.wake = &t
	}
}

func join(prefix, id string) string {
	if prefix == "" {
		return id
	}
	return prefix + "/" + id
}
