package store

import (
	"fmt"
	"sort"
	"time"

	"github.com/dpe-engine/dpe/internal/model"
)

// The rules of a retry, written once like those of rules.go: engines read
// the rows, ask these functions, and write what they decide.
//
// A job retry is a new attempt of a failed or canceled job: the same job
// (id, key, params) queued again at once with its attempts counted from
// zero, so it gets its full max_attempts again. Its epoch goes on growing
// with the next claim, so the holder of an old attempt stays fenced.
//
// A workflow retry resumes a failed or canceled instance from the steps
// that failed it, keeping every finished one: the records on the failure
// chain (failed or canceled, under no block that finished well) go back to
// running; a job step's job is retried (its record keeps the job id, so
// the interpreter waits for the job again instead of submitting one), a
// sub-workflow step's child instance is retried the same way, and a step
// with nothing to wait for (a fail, a log or a set that failed, a job whose
// params did not evaluate, a delay cut short) loses its record and runs
// again from the start. The interpreter then decides from these records
// exactly as after any other event: the same records, the same decision.

// RetryJob returns the job as a retry writes it: queued now with attempt 0,
// its last outcome (result, error, progress, lease) cleared. A job that is
// not failed or canceled is model.ErrConflict.
func RetryJob(j model.Job, now time.Time) (model.Job, error) {
	if j.State != model.JobFailed && j.State != model.JobCanceled {
		return j, fmt.Errorf("job %d is %s: only a failed or canceled job can be retried: %w", j.ID, j.State, model.ErrConflict)
	}
	j.State = model.JobQueued
	j.Attempt = 0
	j.RunAfter = now
	j.Result, j.Error = nil, ""
	j.Progress, j.Message = 0, ""
	j.CancelAsked = false
	j.Processor, j.LeaseUntil = "", nil
	j.StartedAt, j.FinishedAt = nil, nil
	j.UpdatedAt = now
	return j, nil
}

// RetryStandaloneJob is RetryJob for the job retry operation: a job of a
// workflow instance is refused (model.ErrConflict), since its instance has
// consumed its outcome already; the instance is retried instead.
func RetryStandaloneJob(j model.Job, now time.Time) (model.Job, error) {
	if j.InstanceID != 0 {
		return j, fmt.Errorf("job %d is step %q of workflow instance %d: retry the instance (dpe workflow retry %d): %w",
			j.ID, j.Step, j.InstanceID, j.InstanceID, model.ErrConflict)
	}
	return RetryJob(j, now)
}

// RetryPlan is what a workflow retry writes for one instance.
type RetryPlan struct {
	// Reset are step records written back as running (state, error and
	// finished_at only; their result, job and child stay).
	Reset []model.Step
	// Drop are the paths of step records deleted.
	Drop []string
	// Jobs are retried (RetryJob); Children are retried as this instance.
	Jobs     []int64
	Children []int64
}

// CheckRetryInstance refuses a retry of an instance that is not failed or
// canceled (model.ErrConflict). child is true when the retry comes from
// the instance's parent; a sub-workflow is not retried on its own.
func CheckRetryInstance(in model.Instance, child bool) error {
	if in.State != model.InstanceFailed && in.State != model.InstanceCanceled {
		return fmt.Errorf("instance %d is %s: only a failed or canceled instance can be retried: %w", in.ID, in.State, model.ErrConflict)
	}
	if in.ParentID != 0 && !child {
		return fmt.Errorf("instance %d is a sub-workflow of instance %d: retry the parent: %w", in.ID, in.ParentID, model.ErrConflict)
	}
	return nil
}

// CheckRetryKey refuses the retry of an instance whose concurrency key
// (policy skip or queue) is held by another live instance, named by
// busyID (0: none): it would run beside it, which the key forbids.
func CheckRetryKey(in model.Instance, busyID int64) error {
	if busyID == 0 || in.ConcurrencyKey == "" || in.ConcurrencyPolicy == model.ConcurrencyAllow {
		return nil
	}
	return fmt.Errorf("instance %d: its concurrency key %q is held by live instance %d: retry when that one has ended: %w",
		in.ID, in.ConcurrencyKey, busyID, model.ErrConflict)
}

// PlanRetry decides which step records of a failed or canceled instance a
// retry resets, drops and resumes. jobs and children hold the jobs and
// child instances the failed records point at, by id; one that has not
// ended yet (a cancel still on its way to a processor) refuses the retry
// with model.ErrConflict: retry once it has ended.
func PlanRetry(steps []model.Step, jobs map[int64]model.Job, children map[int64]model.Instance) (RetryPlan, error) {
	var p RetryPlan
	byPath := make(map[string]model.Step, len(steps))
	for _, s := range steps {
		byPath[s.Path] = s
	}
	ordered := make([]model.Step, len(steps))
	copy(ordered, steps)
	sort.Slice(ordered, func(a, b int) bool { return ordered[a].Path < ordered[b].Path })
	for _, s := range ordered {
		if !retried(s.State) || !onFailureChain(s.Path, byPath) {
			continue
		}
		switch {
		case s.JobID != 0:
			j, ok := jobs[s.JobID]
			if !ok {
				return RetryPlan{}, fmt.Errorf("step %s: job %d is gone (purged): %w", s.Path, s.JobID, model.ErrConflict)
			}
			if !j.State.Final() {
				return RetryPlan{}, fmt.Errorf("step %s: job %d is still %s (being canceled): retry when it has ended: %w", s.Path, j.ID, j.State, model.ErrConflict)
			}
			if j.State != model.JobSucceeded {
				p.Jobs = append(p.Jobs, j.ID)
			}
			p.Reset = append(p.Reset, reset(s))
		case s.ChildID != 0:
			c, ok := children[s.ChildID]
			if !ok {
				return RetryPlan{}, fmt.Errorf("step %s: sub-workflow %d is gone (purged): %w", s.Path, s.ChildID, model.ErrConflict)
			}
			if !c.State.Final() {
				return RetryPlan{}, fmt.Errorf("step %s: sub-workflow %d is still %s (being canceled): retry when it has ended: %w", s.Path, c.ID, c.State, model.ErrConflict)
			}
			if c.State != model.InstanceSucceeded {
				p.Children = append(p.Children, c.ID)
			}
			p.Reset = append(p.Reset, reset(s))
		case leafKinds[s.Kind]:
			p.Drop = append(p.Drop, s.Path)
		default:
			// A block (sequence, parallel, if, foreach, try): running
			// again, it keeps its result (the branch taken, the items).
			p.Reset = append(p.Reset, reset(s))
		}
	}
	return p, nil
}

// leafKinds are the activity kinds without children (template.Kind*).
var leafKinds = map[string]bool{"job": true, "delay": true, "workflow": true, "set": true, "log": true, "fail": true}

func retried(s model.StepState) bool { return s == model.StepFailed || s == model.StepCanceled }

func reset(s model.Step) model.Step {
	s.State = model.StepRunning
	s.Error = ""
	s.FinishedAt = nil
	return s
}

// onFailureChain reports whether every recorded block path lies in has
// ended badly too: a failure under a block that succeeded was handled
// (try/catch, on_error) and is history, not something to retry.
func onFailureChain(path string, byPath map[string]model.Step) bool {
	for i := 0; i < len(path); i++ {
		if path[i] != '/' && path[i] != '[' {
			continue
		}
		if anc, ok := byPath[path[:i]]; ok && !retried(anc.State) {
			return false
		}
	}
	return true
}

// RetryInstance returns the instance as a retry writes it: running, due
// now (an event: WakeSeq+1), its error, output, finish and cancel cleared.
// StartedAt becomes now, so the template's timeout counts afresh.
func RetryInstance(in model.Instance, now time.Time) model.Instance {
	in.State = model.InstanceRunning
	in.StartedAt = &now
	in.Error = ""
	in.Output = nil
	in.CancelAsked = false
	in.FinishedAt = nil
	in.Current = nil
	in.WakeAt = &now
	in.WakeSeq++
	in.UpdatedAt = now
	return in
}
