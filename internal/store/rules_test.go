package store

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/dpe-engine/dpe/internal/model"
)

var (
	t0 = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	t1 = t0.Add(time.Minute)
)

// runningJob returns job 7 running attempt 1 under epoch 3 (of maxAttempts), with
// a lease until t0+30s.
func runningJob(maxAttempts int) ReportedJob {
	until := t0.Add(30 * time.Second)
	return ReportedJob{Job: model.Job{
		ID: 7, Type: "t", State: model.JobRunning, Attempt: 1, MaxAttempts: maxAttempts, Epoch: 3,
		Backoff: model.Duration(time.Second), BackoffMax: model.Duration(time.Minute),
		Processor: "p1", LeaseUntil: &until, RunAfter: t0, Progress: 40, Message: "half",
	}}
}

// after returns r with a report of epoch and digest taken earlier.
func after(r ReportedJob, state model.JobState, digest string) ReportedJob {
	r.Job.State, r.Job.LeaseUntil = state, nil
	r.ReportedEpoch, r.ReportDigest = r.Job.Epoch, digest
	return r
}

func TestComplete(t *testing.T) {
	ok := model.Completion{ID: 7, Epoch: 3, Result: json.RawMessage(`{"n": 1}`)}
	fail := model.Completion{ID: 7, Epoch: 3, Error: "flaky"}
	canceled := runningJob(3)
	canceled.Job.CancelAsked = true
	cases := []struct {
		name    string
		r       ReportedJob
		c       model.Completion
		state   model.JobState // taken
		repeat  bool
		refused bool
	}{
		{"success", runningJob(3), ok, model.JobSucceeded, false, false},
		{"success with cancel asked", canceled, ok, model.JobSucceeded, false, false},
		{"failure with attempts left", runningJob(3), fail, model.JobQueued, false, false},
		{"failure, none left", runningJob(1), fail, model.JobFailed, false, false},
		{"permanent failure", runningJob(3), model.Completion{ID: 7, Epoch: 3, Error: "x", Permanent: true}, model.JobFailed, false, false},
		{"failure with cancel asked", canceled, fail, model.JobCanceled, false, false},
		{"stale epoch", runningJob(3), model.Completion{ID: 7, Epoch: 2}, "", false, true},
		{"identical repeat", after(runningJob(3), model.JobSucceeded, CompletionDigest(ok)), ok, "", true, false},
		{"identical repeat, other whitespace", after(runningJob(3), model.JobSucceeded, CompletionDigest(ok)),
			model.Completion{ID: 7, Epoch: 3, Result: json.RawMessage(`{"n":1}`)}, "", true, false},
		{"different result", after(runningJob(3), model.JobSucceeded, CompletionDigest(ok)),
			model.Completion{ID: 7, Epoch: 3, Result: json.RawMessage(`{"n":2}`)}, "", false, true},
		{"success after failure", after(runningJob(3), model.JobQueued, CompletionDigest(fail)), ok, "", false, true},
		{"after release", after(runningJob(3), model.JobQueued, ReleaseDigest), ok, "", false, true},
		{"after rescue", func() ReportedJob { j, _ := Rescue(runningJob(3).Job, t1); return ReportedJob{Job: j} }(), ok, "", false, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			next, changed, err := Complete(c.r, c.c, t1)
			switch {
			case c.refused:
				if !errors.Is(err, model.ErrConflict) || changed {
					t.Fatalf("changed %t, err %v; want ErrConflict", changed, err)
				}
			case c.repeat:
				if err != nil || changed || next.Job.State != c.r.Job.State {
					t.Fatalf("changed %t, err %v; want the job unchanged", changed, err)
				}
			default:
				if err != nil || !changed || next.Job.State != c.state {
					t.Fatalf("state %s, changed %t, err %v; want %s taken", next.Job.State, changed, err, c.state)
				}
				j := next.Job
				if next.ReportedEpoch != 3 || next.ReportDigest != CompletionDigest(c.c) || j.LeaseUntil != nil || !j.UpdatedAt.Equal(t1) {
					t.Errorf("report %d %q lease %v updated %v", next.ReportedEpoch, next.ReportDigest, j.LeaseUntil, j.UpdatedAt)
				}
				if (j.FinishedAt == nil) != (j.State == model.JobQueued) {
					t.Errorf("state %s finished %v", j.State, j.FinishedAt)
				}
				if j.State == model.JobQueued && !j.RunAfter.Equal(t1.Add(time.Second)) {
					t.Errorf("run after %v, want the back-off after %v", j.RunAfter, t1)
				}
				if j.State == model.JobSucceeded && j.Progress != 100 {
					t.Errorf("progress %d", j.Progress)
				}
			}
		})
	}
}

func TestRelease(t *testing.T) {
	canceled := runningJob(3)
	canceled.Job.CancelAsked = true
	next, changed, err := Release(runningJob(3), 3, t1)
	if err != nil || !changed || next.Job.State != model.JobQueued || next.Job.Attempt != 0 ||
		!next.Job.RunAfter.Equal(t1) || next.Job.FinishedAt != nil || next.ReportDigest != ReleaseDigest {
		t.Fatalf("release: %+v changed %t err %v", next, changed, err)
	}
	again, changed, err := Release(next, 3, t1.Add(time.Second))
	if err != nil || changed || again.Job.UpdatedAt != next.Job.UpdatedAt {
		t.Errorf("repeat: changed %t err %v; want answered as before", changed, err)
	}
	if _, _, err := Complete(next, model.Completion{ID: 7, Epoch: 3}, t1); !errors.Is(err, model.ErrConflict) {
		t.Errorf("completion after release: %v, want ErrConflict", err)
	}
	c, _, err := Release(canceled, 3, t1)
	if err != nil || c.Job.State != model.JobCanceled || c.Job.Attempt != 0 || c.Job.FinishedAt == nil {
		t.Errorf("release of a cancel-asked job: %+v, %v; want canceled, attempt uncounted", c.Job, err)
	}
	if _, _, err := Release(runningJob(3), 4, t1); !errors.Is(err, model.ErrConflict) {
		t.Errorf("stale release: %v, want ErrConflict", err)
	}
}

func TestRescue(t *testing.T) {
	canceled := runningJob(3).Job
	canceled.CancelAsked = true
	cases := []struct {
		name  string
		j     model.Job
		now   time.Time
		state model.JobState // "": not expired
	}{
		{"held", runningJob(3).Job, t0.Add(30 * time.Second), ""},
		{"queued again", runningJob(3).Job, t1, model.JobQueued},
		{"no attempt left", runningJob(1).Job, t1, model.JobFailed},
		{"cancel asked", canceled, t1, model.JobCanceled},
		{"not running", after(runningJob(3), model.JobSucceeded, "x").Job, t1, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			next, changed := Rescue(c.j, c.now)
			if c.state == "" {
				if changed {
					t.Fatalf("rescued %+v", next)
				}
				return
			}
			if !changed || next.State != c.state || next.LeaseUntil != nil || next.Epoch != 3 || next.Attempt != 1 {
				t.Fatalf("got %+v changed %t; want %s, epoch and attempt kept", next, changed, c.state)
			}
			if wantErr := c.state != model.JobCanceled; (next.Error == RescueError(c.j)) != wantErr {
				t.Errorf("error %q", next.Error)
			}
			if (next.FinishedAt == nil) != (c.state == model.JobQueued) {
				t.Errorf("finished %v", next.FinishedAt)
			}
		})
	}
}

func TestCheckCompletion(t *testing.T) {
	if err := CheckCompletion(model.Completion{Result: json.RawMessage(`{`)}); !errors.Is(err, model.ErrInvalid) {
		t.Errorf("result not JSON: %v, want ErrInvalid", err)
	}
	if err := CheckCompletion(model.Completion{Result: json.RawMessage(`[1]`)}); err != nil {
		t.Errorf("JSON result: %v", err)
	}
}

// TestCompletionDigestStable pins the digests PostgreSQL databases already
// hold: a change would refuse repeats of reports made before it.
func TestCompletionDigestStable(t *testing.T) {
	for _, c := range []struct {
		c    model.Completion
		want string
	}{
		{model.Completion{}, "e75f5a71e974f738de7fb29ecafb8072554c66a1e3074e59409b6f1e4615ca83"},
		{model.Completion{Result: json.RawMessage(`{"n": 1, "s": [1, 2]}`)}, "cfa9a4d6bca9d6b553ecbd43f66c324311b6eb06dec09b3c226837f2abd7a785"},
		{model.Completion{Error: "boom", Permanent: true}, "2bcefa3400cb03170e32f9c238a6f7b1a9ce9d7928deeeecae67e2a0a024e073"},
		{model.Completion{Error: "flaky", Result: json.RawMessage(`{"partial" : true}`)}, "bd3376c394335d4d4e60c02cd40444c3c9548343dce943dea2c01d760ef918b3"},
		{model.Completion{Result: json.RawMessage(`not json`)}, "f8e548f2c2ec8205eab7fdbd70e05ad738ac9aebdfb3361778885e0f4efd7698"},
	} {
		if got := CompletionDigest(c.c); got != c.want {
			t.Errorf("CompletionDigest(%+v) = %s, want %s", c.c, got, c.want)
		}
	}
}
