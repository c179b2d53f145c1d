package storetest

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/dpe-engine/dpe/internal/model"
	"github.com/dpe-engine/dpe/internal/store"
)

// The cases of this file tell apart the verdicts on a holder's report (a
// completion, a release) once the job moved on: an identical repeat of the
// report that took effect is answered as before, anything else of that
// epoch (a different report, a report after a release or a rescue) is
// refused. Each completion case runs three ways: JobComplete alone, and
// JobCompleteMany in a batch of successes (the engines' set-based fast
// path) or in a batch holding a failure (the path that reads every row).
//
// Every report and rescue of a case, the steps that prepare it and the
// report under test, is also asked of the rules of package store
// (store.Complete, store.Release, store.Rescue) on the job as the test
// knows it, and the engine must answer and store exactly what they decide.
// Where an engine states a rule again in SQL (a set-based statement), this
// is what keeps the copy equal to the rule.

// rescueTTL is the lease of jobs a case lets expire; other jobs hold theirs
// for a minute, past every time the cases use.
const rescueTTL = time.Second

// reportAt is when the cases report; rescueAt, when their rescues run.
var (
	rescueAt = at(2 * time.Second)
	reportAt = at(5 * time.Second)
)

// step is one thing done to a case's job before the report under test. A
// step that is a report or a rescue is also asked of the rules of package
// store (store.Complete, store.Release, store.Rescue), on the job as the
// test knows it (prepared.row), and the engine must have done what they
// say.
type step func(t *testing.T, s store.Store, p *prepared)

// completed reports c (built from the job as it stands) and wants it taken.
func completed(c func(j model.Job) model.Completion) step {
	return func(t *testing.T, s store.Store, p *prepared) {
		t.Helper()
		now := at(time.Second)
		r := c(p.row.Job)
		got := complete(t, s, r, now)
		want, changed, err := store.Complete(p.row, r, now)
		if err != nil || !changed {
			t.Fatalf("store.Complete of step on job %d: changed %t, %v; want it taken", r.ID, changed, err)
		}
		sameJob(t, "step: JobComplete vs store.Complete", got, want.Job)
		p.took(want, got)
	}
}

// released releases the job at its epoch and wants it taken.
func released(t *testing.T, s store.Store, p *prepared) {
	t.Helper()
	now := at(time.Second)
	j := p.row.Job
	got, err := s.JobRelease(t.Context(), j.ID, j.Epoch, now)
	if err != nil {
		t.Fatalf("JobRelease(%d, epoch %d): %v", j.ID, j.Epoch, err)
	}
	want, changed, err := store.Release(p.row, j.Epoch, now)
	if err != nil || !changed {
		t.Fatalf("store.Release of step on job %d: changed %t, %v; want it taken", j.ID, changed, err)
	}
	sameJob(t, "step: JobRelease vs store.Release", got, want.Job)
	p.took(want, got)
}

// canceled asks to cancel the job.
func canceled(t *testing.T, s store.Store, p *prepared) {
	t.Helper()
	p.row.Job = cancel(t, s, p.row.Job.ID, at(time.Second))
}

// rescued lets the job's lease (rescueTTL) expire and rescues it.
func rescued(t *testing.T, s store.Store, p *prepared) {
	t.Helper()
	if _, err := s.JobRescue(t.Context(), rescueAt); err != nil {
		t.Fatalf("JobRescue: %v", err)
	}
	got := get(t, s, p.row.Job.ID)
	want, changed := store.Rescue(p.row.Job, rescueAt)
	if !changed {
		t.Fatalf("store.Rescue of job %d: not expired at %v", want.ID, rescueAt)
	}
	sameJob(t, "step: JobRescue vs store.Rescue", got, want)
	p.row.Job = got
}

// reclaimed claims the job again (a new epoch) once it is claimable.
func reclaimed(t *testing.T, s store.Store, p *prepared) {
	t.Helper()
	j := p.row.Job
	got := claim(t, s, store.ClaimParams{Processor: "p2", Slots: map[string]int{j.Type: 1}, LeaseTTL: time.Minute, Now: at(3 * time.Second)})
	if len(got) != 1 || got[0].ID != j.ID {
		t.Fatalf("re-claim of job %d: got %d jobs", j.ID, len(got))
	}
	p.row.Job = got[0]
}

// success builds the report of a successful attempt of the job as claimed
// (failure, that of a failed one).
func success(result string) func(j model.Job) model.Completion {
	return func(j model.Job) model.Completion {
		c := model.Completion{ID: j.ID, Epoch: j.Epoch}
		if result != "" {
			c.Result = json.RawMessage(result)
		}
		return c
	}
}

// reportCase is a job brought to some state by steps, then reported on.
type reportCase struct {
	name   string
	spec   model.JobSpec // Type is set from name
	expire bool          // claimed with a lease of rescueTTL
	steps  []step
	// report builds the completion under test from the job as claimed
	// (release cases release it at its claimed epoch).
	report func(j model.Job) model.Completion
	// Exactly one of want (taken: the job's new state), repeat (answered
	// with the job as the steps left it, nothing changed) or err (refused,
	// nothing changed).
	want   model.JobState
	repeat bool
	err    error
}

// retrySpec allows retries after an immediate back-off.
var retrySpec = model.JobSpec{MaxAttempts: 3, Backoff: model.Duration(time.Millisecond), BackoffMax: model.Duration(time.Millisecond)}

// completionCases are the completion verdicts every engine must give.
func completionCases() []reportCase {
	ok1 := success(`{"n":1}`)
	return []reportCase{
		{name: "running-success", report: ok1, want: model.JobSucceeded},
		{name: "running-failure", spec: retrySpec, report: failure("flaky", false), want: model.JobQueued},
		{name: "running-permanent", spec: retrySpec, report: failure("gone", true), want: model.JobFailed},
		{name: "running-exhausted", spec: model.JobSpec{MaxAttempts: 1}, report: failure("boom", false), want: model.JobFailed},
		{name: "cancel-asked-failure", spec: retrySpec, steps: []step{canceled}, report: failure("stopped", false), want: model.JobCanceled},
		{name: "cancel-asked-success", steps: []step{canceled}, report: ok1, want: model.JobSucceeded},
		{name: "stale-epoch", report: func(j model.Job) model.Completion {
			return model.Completion{ID: j.ID, Epoch: j.Epoch + 1}
		}, err: model.ErrConflict},
		{name: "missing", report: func(model.Job) model.Completion {
			return model.Completion{ID: missingID, Epoch: 1}
		}, err: model.ErrNotFound},
		{name: "result-not-json", report: success(`{"n":`), err: model.ErrInvalid},

		// Repeats at the same epoch: identical is answered as before.
		{name: "identical-success", steps: []step{completed(ok1)}, report: ok1, repeat: true},
		{name: "identical-success-no-result", steps: []step{completed(success(""))}, report: success(""), repeat: true},
		{name: "identical-success-whitespace", steps: []step{completed(success(`{"n": 1}`))}, report: ok1, repeat: true},
		{name: "identical-failure", spec: retrySpec, steps: []step{completed(failure("flaky", false))}, report: failure("flaky", false), repeat: true},
		{name: "identical-permanent", spec: retrySpec, steps: []step{completed(failure("gone", true))}, report: failure("gone", true), repeat: true},
		{name: "identical-canceled", spec: retrySpec, steps: []step{canceled, completed(failure("stopped", false))}, report: failure("stopped", false), repeat: true},

		// A different report at the same epoch is refused.
		{name: "different-result", steps: []step{completed(ok1)}, report: success(`{"n":2}`), err: model.ErrConflict},
		{name: "result-after-none", steps: []step{completed(success(""))}, report: ok1, err: model.ErrConflict},
		{name: "failure-after-success", spec: retrySpec, steps: []step{completed(ok1)}, report: failure("boom", false), err: model.ErrConflict},
		{name: "success-after-failure", spec: retrySpec, steps: []step{completed(failure("flaky", false))}, report: ok1, err: model.ErrConflict},
		{name: "different-error", spec: retrySpec, steps: []step{completed(failure("flaky", false))}, report: failure("other", false), err: model.ErrConflict},
		{name: "permanent-after-retryable", spec: retrySpec, steps: []step{completed(failure("flaky", false))}, report: failure("flaky", true), err: model.ErrConflict},

		// After a release, the released epoch reports nothing more.
		{name: "success-after-release", steps: []step{released}, report: ok1, err: model.ErrConflict},
		{name: "failure-after-release", spec: retrySpec, steps: []step{released}, report: failure("flaky", false), err: model.ErrConflict},
		{name: "success-after-cancel-release", steps: []step{canceled, released}, report: ok1, err: model.ErrConflict},

		// After a rescue (lease expired), the old holder is refused, before
		// and after a new claim.
		{name: "success-after-rescue", expire: true, steps: []step{rescued}, report: ok1, err: model.ErrConflict},
		{name: "failure-after-rescue", spec: retrySpec, expire: true, steps: []step{rescued}, report: failure("flaky", false), err: model.ErrConflict},
		{name: "success-after-rescue-failed", spec: model.JobSpec{MaxAttempts: 1}, expire: true, steps: []step{rescued}, report: ok1, err: model.ErrConflict},
		{name: "failure-after-rescue-canceled", expire: true, steps: []step{canceled, rescued}, report: failure("stopped", false), err: model.ErrConflict},
		{name: "success-after-rescue-reclaim", expire: true, steps: []step{rescued, reclaimed}, report: ok1, err: model.ErrConflict},
		{name: "repeat-after-reclaim", spec: retrySpec, steps: []step{completed(failure("flaky", false)), reclaimed}, report: failure("flaky", false), err: model.ErrConflict},
	}
}

// releaseCases are the release verdicts every engine must give; report
// names the epoch released.
func releaseCases() []reportCase {
	at := func(j model.Job) model.Completion { return model.Completion{ID: j.ID, Epoch: j.Epoch} }
	return []reportCase{
		{name: "running", report: at, want: model.JobQueued},
		{name: "cancel-asked", steps: []step{canceled}, report: at, want: model.JobCanceled},
		{name: "repeat", steps: []step{released}, report: at, repeat: true},
		{name: "repeat-cancel-asked", steps: []step{canceled, released}, report: at, repeat: true},
		{name: "stale-epoch", report: func(j model.Job) model.Completion {
			return model.Completion{ID: j.ID, Epoch: j.Epoch + 1}
		}, err: model.ErrConflict},
		{name: "missing", report: func(model.Job) model.Completion {
			return model.Completion{ID: missingID, Epoch: 1}
		}, err: model.ErrNotFound},
		{name: "after-success", steps: []step{completed(success(""))}, report: at, err: model.ErrConflict},
		{name: "after-failure", spec: retrySpec, steps: []step{completed(failure("flaky", false))}, report: at, err: model.ErrConflict},
		{name: "after-rescue", expire: true, steps: []step{rescued}, report: at, err: model.ErrConflict},
		{name: "after-rescue-reclaim", expire: true, steps: []step{rescued, reclaimed}, report: at, err: model.ErrConflict},
		{name: "after-release-reclaim", steps: []step{released, reclaimed}, report: at, err: model.ErrConflict},
	}
}

// prepared is a case's job as claimed, and as its steps left it with the
// last report that took effect (what the rules judge).
type prepared struct {
	claimed model.Job
	row     store.ReportedJob
}

// took records a report the rules decided (want) and the engine stored
// (got, the job as it reads it back).
func (p *prepared) took(want store.ReportedJob, got model.Job) {
	p.row = want
	p.row.Job = got
}

// prepare inserts and claims the job of c (type prefix+c.name) and runs
// its steps.
func prepare(t *testing.T, s store.Store, prefix string, c reportCase) prepared {
	t.Helper()
	spec := c.spec
	spec.Type = prefix + c.name
	insert(t, s, T0, spec)
	ttl := time.Minute
	if c.expire {
		ttl = rescueTTL
	}
	got := claim(t, s, store.ClaimParams{Processor: "p1", Slots: map[string]int{spec.Type: 1}, LeaseTTL: ttl, Now: T0})
	if len(got) != 1 {
		t.Fatalf("%s: claimed %d jobs, want 1", c.name, len(got))
	}
	p := prepared{claimed: got[0], row: store.ReportedJob{Job: got[0]}}
	for _, st := range c.steps {
		st(t, s, &p)
	}
	return p
}

// ruled is what the rules of package store say of a report: taken or
// repeated (the job to answer with), or refused (err).
type ruled struct {
	job model.Job
	err error
}

// judge checks the answer to the report of case c on job p: against the
// case (taken in state c.want, answered as before, or refused), against
// the rules (rule), and that JobGet agrees.
func judge(t *testing.T, s store.Store, what string, c reportCase, p prepared, rule ruled, got model.Job, err error) {
	t.Helper()
	what += ": " + c.name
	before := p.row.Job
	switch {
	case c.err != nil:
		if !errors.Is(err, c.err) {
			t.Errorf("%s: got error %v, want %v", what, err, c.err)
			return
		}
		if !errors.Is(c.err, model.ErrNotFound) {
			if !errors.Is(rule.err, c.err) {
				t.Errorf("%s: the store rules say %v, want %v", what, rule.err, c.err)
			}
			sameJob(t, what+": refused, unchanged", get(t, s, p.claimed.ID), before)
		}
		return
	case err != nil:
		t.Errorf("%s: %v, want it taken", what, err)
		return
	case rule.err != nil:
		t.Errorf("%s: taken, but the store rules refuse it: %v", what, rule.err)
	case c.repeat:
		sameJob(t, what+": answered as before", got, before)
	default:
		if got.State != c.want {
			t.Errorf("%s: state %s, want %s", what, got.State, c.want)
		}
	}
	sameJob(t, what+": engine vs store rules", got, rule.job)
	sameJob(t, what+": JobGet", get(t, s, p.claimed.ID), got)
}

// ruleComplete asks store.Complete about completion c of p's job at now.
func ruleComplete(p prepared, c model.Completion, now time.Time) ruled {
	if c.ID != p.row.Job.ID {
		return ruled{err: model.ErrNotFound}
	}
	if err := store.CheckCompletion(c); err != nil {
		return ruled{err: err}
	}
	next, _, err := store.Complete(p.row, c, now)
	return ruled{job: next.Job, err: err}
}

// testReports runs the completion and release cases.
func testReports(t *testing.T, open Opener) {
	t.Run("JobComplete", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		cases := completionCases()
		ps := make([]prepared, len(cases))
		for i, c := range cases {
			ps[i] = prepare(t, s, "rc.", c)
		}
		for i, c := range cases {
			r := c.report(ps[i].claimed)
			got, err := s.JobComplete(t.Context(), r, reportAt)
			judge(t, s, "JobComplete", c, ps[i], ruleComplete(ps[i], r, reportAt), got, err)
		}
	})

	// Each case goes in a batch with the report of another job: a success
	// (a batch of successes when the case reports one) or a failure.
	for _, other := range []struct {
		name   string
		report func(j model.Job) model.Completion
		want   model.JobState
	}{
		{"WithSuccess", success(`{"other":true}`), model.JobSucceeded},
		{"WithFailure", failure("flaky", false), model.JobQueued},
	} {
		t.Run("JobCompleteMany"+other.name, func(t *testing.T) {
			t.Parallel()
			s := open(t)
			cases := completionCases()
			ps := make([]prepared, len(cases))
			others := make([]prepared, len(cases))
			for i, c := range cases {
				ps[i] = prepare(t, s, "rm.", c)
				others[i] = prepare(t, s, "rm.other.", reportCase{name: c.name, spec: retrySpec})
			}
			for i, c := range cases {
				cs := []model.Completion{c.report(ps[i].claimed), other.report(others[i].claimed)}
				if i%2 == 1 {
					cs[0], cs[1] = cs[1], cs[0]
				}
				res := completeMany(t, s, cs, reportAt)
				mine, theirs := res[0], res[1]
				if i%2 == 1 {
					mine, theirs = theirs, mine
				}
				mineRule, theirRule := ruleComplete(ps[i], cs[0], reportAt), ruleComplete(others[i], cs[1], reportAt)
				if i%2 == 1 {
					mineRule, theirRule = ruleComplete(ps[i], cs[1], reportAt), ruleComplete(others[i], cs[0], reportAt)
				}
				judge(t, s, "JobCompleteMany", c, ps[i], mineRule, mine.Job, mine.Err)
				judge(t, s, "JobCompleteMany (other job)", reportCase{name: c.name, want: other.want}, others[i], theirRule, theirs.Job, theirs.Err)
			}
		})
	}

	t.Run("JobRelease", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		cases := releaseCases()
		ps := make([]prepared, len(cases))
		for i, c := range cases {
			ps[i] = prepare(t, s, "rr.", c)
		}
		for i, c := range cases {
			r := c.report(ps[i].claimed)
			got, err := s.JobRelease(t.Context(), r.ID, r.Epoch, reportAt)
			rule := ruled{err: model.ErrNotFound}
			if r.ID == ps[i].row.Job.ID {
				next, _, err := store.Release(ps[i].row, r.Epoch, reportAt)
				rule = ruled{job: next.Job, err: err}
			}
			judge(t, s, "JobRelease", c, ps[i], rule, got, err)
			if err == nil && !c.repeat {
				wantReleased(t, c.name, got, ps[i].row.Job)
			}
		}
	})
}

// wantReleased checks a job released from running job j: the attempt
// uncounted, the epoch kept, no lease; queued for a claim at once, or
// canceled and finished when its cancel was asked.
func wantReleased(t *testing.T, what string, got, j model.Job) {
	t.Helper()
	if got.Attempt != j.Attempt-1 || got.Epoch != j.Epoch {
		t.Errorf("%s: attempt %d epoch %d, want %d %d", what, got.Attempt, got.Epoch, j.Attempt-1, j.Epoch)
	}
	noTime(t, what+": LeaseUntil", got.LeaseUntil)
	if j.CancelAsked {
		sameTimePtr(t, what+": FinishedAt", got.FinishedAt, reportAt)
		return
	}
	noTime(t, what+": FinishedAt", got.FinishedAt)
	sameTime(t, what+": RunAfter", got.RunAfter, reportAt)
}
