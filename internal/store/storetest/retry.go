package storetest

import (
	"sync"
	"testing"
	"time"

	"github.com/dpe-engine/dpe/internal/model"
	"github.com/dpe-engine/dpe/internal/store"
)

// retryJob runs JobRetry and fails the test on error.
func retryJob(t *testing.T, s store.Store, id int64, now time.Time) model.Job {
	t.Helper()
	j, err := s.JobRetry(t.Context(), id, now)
	if err != nil {
		t.Fatalf("JobRetry(%d): %v", id, err)
	}
	return j
}

// testJobRetry: a failed or canceled job is queued again at once with its
// attempts counted from zero, the old attempt stays fenced, and every
// other state is refused unchanged.
func testJobRetry(t *testing.T, open Opener) {
	t.Run("Failed", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		insert(t, s, T0, model.JobSpec{Type: "rt.f", MaxAttempts: 1})
		j := claimOne(t, s, "rt.f", "p1", T0)
		failed := complete(t, s, model.Completion{ID: j.ID, Epoch: j.Epoch, Error: "disk full"}, at(time.Second))
		wantState(t, "after the only attempt failed", failed, model.JobFailed)

		now := at(time.Minute)
		got := retryJob(t, s, j.ID, now)
		wantState(t, "retried", got, model.JobQueued)
		if got.Attempt != 0 || got.Error != "" || got.Result != nil || got.CancelAsked || got.Processor != "" {
			t.Errorf("retried job keeps its last attempt: attempt %d, error %q, result %s, cancel %v, processor %q",
				got.Attempt, got.Error, got.Result, got.CancelAsked, got.Processor)
		}
		noTime(t, "FinishedAt", got.FinishedAt)
		noTime(t, "LeaseUntil", got.LeaseUntil)
		sameTime(t, "RunAfter", got.RunAfter, now)
		sameTime(t, "UpdatedAt", got.UpdatedAt, now)
		if got.Key != failed.Key || got.Epoch != failed.Epoch || got.MaxAttempts != 1 {
			t.Errorf("retry changed identity: key %q epoch %d max %d", got.Key, got.Epoch, got.MaxAttempts)
		}
		sameJob(t, "JobGet", get(t, s, j.ID), got)

		// Claimable at once, as a new attempt under a new epoch; the old
		// holder's other report is fenced.
		again := claimOne(t, s, "rt.f", "p2", now)
		if again.ID != j.ID || again.Attempt != 1 || again.Epoch != j.Epoch+1 {
			t.Fatalf("claim after retry: job %d attempt %d epoch %d, want job %d attempt 1 epoch %d", again.ID, again.Attempt, again.Epoch, j.ID, j.Epoch+1)
		}
		_, err := s.JobComplete(t.Context(), model.Completion{ID: j.ID, Epoch: j.Epoch}, now)
		wantErr(t, "old attempt reporting success", err, model.ErrConflict)
		done := complete(t, s, model.Completion{ID: j.ID, Epoch: again.Epoch}, now)
		wantState(t, "new attempt", done, model.JobSucceeded)
	})

	t.Run("Canceled", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		j := insertN(t, s, T0, "rt.c", 1)[0]
		cancel(t, s, j.ID, T0)
		got := retryJob(t, s, j.ID, at(time.Second))
		wantState(t, "retried canceled job", got, model.JobQueued)
		if got.CancelAsked {
			t.Error("CancelAsked kept")
		}
		claimOne(t, s, "rt.c", "p1", at(time.Second))
	})

	t.Run("Refused", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		queued := insertN(t, s, T0, "rt.q", 1)[0]
		insertN(t, s, T0, "rt.r", 2)
		running := claimOne(t, s, "rt.r", "p1", T0)
		ok := claimOne(t, s, "rt.r", "p1", T0)
		succeeded := complete(t, s, model.Completion{ID: ok.ID, Epoch: ok.Epoch}, T0)
		for _, j := range []model.Job{queued, running, succeeded} {
			before := get(t, s, j.ID)
			_, err := s.JobRetry(t.Context(), j.ID, at(time.Second))
			wantErr(t, "retry of a "+string(before.State)+" job", err, model.ErrConflict)
			sameJob(t, "refused retry", get(t, s, j.ID), before)
		}
		_, err := s.JobRetry(t.Context(), 999999, T0)
		wantErr(t, "retry of a missing job", err, model.ErrNotFound)
	})
}

// failedInstance builds an instance as a worker leaves it when it fails:
// job step a succeeded; block par failed because its job step par/b failed
// and its set step par/c failed; block t succeeded after handling t/x. It
// returns the instance and the ids of the jobs of a and par/b.
func failedInstance(t *testing.T, s store.WorkflowStore, name string) (model.Instance, int64, int64) {
	t.Helper()
	inst := holdInst(t, s, model.InstanceSpec{Template: "rt", Version: 1, Name: name}, "w1", T0)
	run := func(path, id, kind string) model.Step {
		return model.Step{Path: path, ID: id, Kind: kind, State: model.StepRunning, StartedAt: T0}
	}
	end := func(st model.Step, state model.StepState, msg string) model.Step {
		st.State, st.Error, st.FinishedAt = state, msg, tp(at(time.Second))
		return st
	}
	a := adv(inst, model.InstanceRunning)
	a.Steps = []model.Step{
		run("a", "a", "job"), run("par", "par", "parallel"), run("par/b", "b", "job"),
		end(run("par/c", "c", "set"), model.StepFailed, "set: bad expression"),
		end(run("t", "t", "try"), model.StepSucceeded, ""),
		end(run("t/x", "x", "fail"), model.StepFailed, "handled"),
	}
	a.Jobs = []model.JobSpec{
		{Type: "rt.a", InstanceID: inst.ID, Step: "a", Key: name + "/a", MaxAttempts: 1},
		{Type: "rt.b", InstanceID: inst.ID, Step: "par/b", Key: name + "/b", MaxAttempts: 1},
	}
	advance(t, s, a, T0)
	ja := claimOne(t, s, "rt.a", "p1", T0)
	complete(t, s, model.Completion{ID: ja.ID, Epoch: ja.Epoch}, at(time.Second))
	jb := claimOne(t, s, "rt.b", "p1", T0)
	complete(t, s, model.Completion{ID: jb.ID, Epoch: jb.Epoch, Error: "no space"}, at(time.Second))

	cur := getInst(t, s, inst.ID)
	f := adv(cur, model.InstanceFailed)
	f.Steps = []model.Step{
		end(stepAt(t, s, inst.ID, "a"), model.StepSucceeded, ""),
		end(stepAt(t, s, inst.ID, "par"), model.StepFailed, "no space"),
		end(stepAt(t, s, inst.ID, "par/b"), model.StepFailed, "no space"),
	}
	f.Progress, f.Error = 100, "step b: no space"
	failed := advance(t, s, f, at(2*time.Second))
	wantInstState(t, "built to fail", failed, model.InstanceFailed)
	return failed, ja.ID, jb.ID
}

// testInstanceRetry: a failed instance resumes from the steps that failed
// it, keeping its finished ones; everything else is refused unchanged.
func testInstanceRetry(t *testing.T, open WorkflowOpener) {
	t.Run("Resume", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		failed, ja, jb := failedInstance(t, s, "r1")
		now := at(time.Minute)
		got, err := s.InstanceRetry(t.Context(), failed.ID, now)
		if err != nil {
			t.Fatalf("InstanceRetry: %v", err)
		}
		want := failed
		want.State, want.Error, want.Output, want.FinishedAt, want.Current = model.InstanceRunning, "", nil, nil, nil
		want.StartedAt, want.WakeAt, want.WakeSeq, want.UpdatedAt = tp(now), tp(now), failed.WakeSeq+1, now
		sameInstance(t, "retried", got, want)
		sameInstance(t, "InstanceGet", getInst(t, s, failed.ID), want)

		steps := map[string]model.Step{}
		for _, st := range instSteps(t, s, failed.ID) {
			steps[st.Path] = st
		}
		for path, state := range map[string]model.StepState{
			"a": model.StepSucceeded, "par": model.StepRunning, "par/b": model.StepRunning,
			"t": model.StepSucceeded, "t/x": model.StepFailed,
		} {
			if st, ok := steps[path]; !ok || st.State != state {
				t.Errorf("step %s: %+v, want %s", path, st, state)
			}
		}
		if st := steps["par/b"]; st.JobID != jb || st.Error != "" || st.FinishedAt != nil {
			t.Errorf("par/b: %+v, want running on job %d again", st, jb)
		}
		if _, ok := steps["par/c"]; ok {
			t.Error("par/c kept: a failed step with nothing to wait for runs again from the start")
		}
		wantState(t, "job of a", get(t, s, ja), model.JobSucceeded)
		if j := get(t, s, jb); j.State != model.JobQueued || j.Attempt != 0 {
			t.Errorf("job of par/b: %s attempt %d, want queued attempt 0", j.State, j.Attempt)
		}
		// Due at once for any worker: the lease went with the failure.
		if c := claimAll(t, s, "w2", now); len(c) != 1 || c[0].ID != failed.ID {
			t.Fatalf("claim after retry: %v, want instance %d", instIDs(c), failed.ID)
		}

		// A second retry of the running instance changes nothing.
		before := getInst(t, s, failed.ID)
		_, err = s.InstanceRetry(t.Context(), failed.ID, at(2*time.Minute))
		wantErr(t, "retry of a running instance", err, model.ErrConflict)
		sameInstance(t, "refused retry", getInst(t, s, failed.ID), before)

		// The job of a workflow step is retried through its instance.
		_, err = s.JobRetry(t.Context(), ja, now)
		wantErr(t, "job retry of a workflow job", err, model.ErrConflict)
	})

	t.Run("Concurrent", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		failed, _, jb := failedInstance(t, s, "r2")
		var wg sync.WaitGroup
		errs := make([]error, 4)
		for i := range errs {
			wg.Go(func() { _, errs[i] = s.InstanceRetry(t.Context(), failed.ID, at(time.Minute)) })
		}
		wg.Wait()
		okCount := 0
		for _, err := range errs {
			switch {
			case err == nil:
				okCount++
			default:
				wantErr(t, "concurrent retry", err, model.ErrConflict)
			}
		}
		if okCount != 1 {
			t.Fatalf("%d of %d concurrent retries resumed the instance, want 1", okCount, len(errs))
		}
		if got := getInst(t, s, failed.ID); got.WakeSeq != failed.WakeSeq+1 {
			t.Errorf("WakeSeq %d, want %d: resumed more than once", got.WakeSeq, failed.WakeSeq+1)
		}
		if j := get(t, s, jb); j.State != model.JobQueued {
			t.Errorf("job %d %s, want queued", jb, j.State)
		}
	})

	t.Run("SubWorkflow", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		parent := holdInst(t, s, model.InstanceSpec{Template: "rt", Version: 1, Name: "p"}, "w1", T0)
		a := adv(parent, model.InstanceRunning)
		a.Steps = []model.Step{{Path: "c", ID: "c", Kind: "workflow", State: model.StepRunning, StartedAt: T0}}
		a.Children = []model.InstanceSpec{{Template: "sub", Version: 1, Name: "p/c", ParentID: parent.ID, ParentStep: "c"}}
		advance(t, s, a, T0)
		childID := stepAt(t, s, parent.ID, "c").ChildID
		held := claimInst(t, s, store.InstanceClaimParams{Worker: "w2", Templates: []string{"sub"}, Default: 10, LeaseTTL: leaseTTL, Now: T0})
		if len(held) != 1 || held[0].ID != childID {
			t.Fatalf("claim of the child: %v, want %d", instIDs(held), childID)
		}
		cf := adv(held[0], model.InstanceFailed)
		cf.Error = "boom"
		advance(t, s, cf, at(time.Second))

		// A sub-workflow is not retried on its own.
		_, err := s.InstanceRetry(t.Context(), childID, at(time.Minute))
		wantErr(t, "retry of a sub-workflow", err, model.ErrConflict)

		cur := getInst(t, s, parent.ID)
		pf := adv(cur, model.InstanceFailed)
		st := stepAt(t, s, parent.ID, "c")
		st.State, st.Error, st.FinishedAt = model.StepFailed, "sub-workflow p/c: boom", tp(at(2*time.Second))
		pf.Steps, pf.Error = []model.Step{st}, "step c: sub-workflow p/c: boom"
		advance(t, s, pf, at(2*time.Second))

		if _, err := s.InstanceRetry(t.Context(), parent.ID, at(time.Minute)); err != nil {
			t.Fatalf("InstanceRetry: %v", err)
		}
		wantInstState(t, "child after the parent's retry", getInst(t, s, childID), model.InstanceRunning)
		if st := stepAt(t, s, parent.ID, "c"); st.State != model.StepRunning || st.ChildID != childID {
			t.Errorf("step c: %+v, want running on child %d", st, childID)
		}
	})

	t.Run("Refused", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		pending := createInst(t, s, model.InstanceSpec{Template: "rq", Version: 1, Name: "pending"}, T0)
		succeeded := endInst(t, s, model.InstanceSpec{Template: "rs", Version: 1, Name: "ok"}, model.InstanceSucceeded, T0)
		for _, in := range []model.Instance{pending, succeeded} {
			_, err := s.InstanceRetry(t.Context(), in.ID, at(time.Second))
			wantErr(t, "retry of a "+string(in.State)+" instance", err, model.ErrConflict)
			sameInstance(t, "refused retry", getInst(t, s, in.ID), in)
		}
		_, err := s.InstanceRetry(t.Context(), 999999, T0)
		wantErr(t, "retry of a missing instance", err, model.ErrNotFound)

		// A concurrency key held by another live instance refuses it.
		keyed := model.InstanceSpec{Template: "rk", Version: 1, ConcurrencyKey: "rk:a", ConcurrencyPolicy: model.ConcurrencySkip}
		keyed.Name = "keyed-1"
		first := endInst(t, s, keyed, model.InstanceFailed, T0)
		keyed.Name = "keyed-2"
		live := createInst(t, s, keyed, at(time.Second))
		_, err = s.InstanceRetry(t.Context(), first.ID, at(2*time.Second))
		wantErr(t, "retry while the key is held", err, model.ErrConflict)
		sameInstance(t, "refused retry", getInst(t, s, first.ID), first)
		held := claimInst(t, s, store.InstanceClaimParams{Worker: "w.k", Templates: []string{"rk"}, Default: 10, LeaseTTL: leaseTTL, Now: at(3 * time.Second)})
		if len(held) != 1 || held[0].ID != live.ID {
			t.Fatalf("claim of the live keyed instance: %v", instIDs(held))
		}
		advance(t, s, adv(held[0], model.InstanceSucceeded), at(4*time.Second))
		if _, err := s.InstanceRetry(t.Context(), first.ID, at(5*time.Second)); err != nil {
			t.Fatalf("retry once the key is free: %v", err)
		}

		// A job still ending (its cancel on the way to the processor)
		// refuses the retry until it has ended.
		inst := holdInst(t, s, model.InstanceSpec{Template: "rr", Version: 1, Name: "stopping"}, "w1", T0)
		a := adv(inst, model.InstanceRunning)
		a.Steps = []model.Step{{Path: "j", ID: "j", Kind: "job", State: model.StepRunning, StartedAt: T0}}
		a.Jobs = []model.JobSpec{{Type: "rt.s", InstanceID: inst.ID, Step: "j", Key: "stopping/j"}}
		advance(t, s, a, T0)
		j := claimOne(t, s, "rt.s", "p1", T0)
		cur := getInst(t, s, inst.ID)
		f := adv(cur, model.InstanceFailed)
		st := stepAt(t, s, inst.ID, "j")
		st.State, st.FinishedAt = model.StepCanceled, tp(at(time.Second))
		f.Steps, f.CancelJobs, f.Error = []model.Step{st}, []int64{j.ID}, "timed out"
		failed := advance(t, s, f, at(time.Second))
		_, err = s.InstanceRetry(t.Context(), failed.ID, at(2*time.Second))
		wantErr(t, "retry while a job is still running", err, model.ErrConflict)
		sameInstance(t, "refused retry", getInst(t, s, failed.ID), failed)
		wantState(t, "job asked to stop", get(t, s, j.ID), model.JobRunning)
		complete(t, s, model.Completion{ID: j.ID, Epoch: j.Epoch, Error: "context canceled"}, at(3*time.Second))
		if _, err := s.InstanceRetry(t.Context(), failed.ID, at(4*time.Second)); err != nil {
			t.Fatalf("retry once the job ended: %v", err)
		}
		wantState(t, "job after the retry", get(t, s, j.ID), model.JobQueued)
	})
}
