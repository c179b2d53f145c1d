package storetest

import (
	"testing"
	"time"

	"github.com/dpe-engine/dpe/internal/model"
	"github.com/dpe-engine/dpe/internal/store"
)

// testInstanceWake covers the wake-ups the job methods owe to workflow
// instances: every end of a job of a live instance is an event for it,
// committed with the job's transition.
func testInstanceWake(t *testing.T, open WorkflowOpener) {
	// setup parks an instance (running, waiting for an event) with one
	// queued job of type typ, spec applied.
	setup := func(t *testing.T, s store.WorkflowStore, typ string, spec model.JobSpec) (model.Instance, model.Job) {
		t.Helper()
		inst := parkInst(t, s, model.InstanceSpec{Template: "w", Version: 1, Name: "i"}, "w1", T0)
		spec.Type, spec.InstanceID, spec.Step, spec.Key = typ, inst.ID, "j", "i/j"
		j := insert(t, s, T0, spec)[0]
		wantNotWoken(t, "parked instance", getInst(t, s, inst.ID), 0)
		return inst, j
	}

	t.Run("CompleteSuccess", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		inst, _ := setup(t, s, "wk", model.JobSpec{})
		j := claimOne(t, s, "wk", "p1", T0)
		now := at(time.Minute)
		complete(t, s, model.Completion{ID: j.ID, Epoch: j.Epoch}, now)
		got := getInst(t, s, inst.ID)
		wantWoken(t, "after the job succeeded", got, 0, now)
		if held := claimAll(t, s, "w1", now); len(held) != 1 || held[0].ID != inst.ID {
			t.Errorf("claim after the wake: %v, want %d", instIDs(held), inst.ID)
		}
	})

	t.Run("RetryDoesNotWake", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		inst, _ := setup(t, s, "wk", model.JobSpec{MaxAttempts: 2, Backoff: model.Duration(time.Second)})
		j := claimOne(t, s, "wk", "p1", T0)
		complete(t, s, model.Completion{ID: j.ID, Epoch: j.Epoch, Error: "flaky"}, at(time.Second))
		wantNotWoken(t, "after a retry", getInst(t, s, inst.ID), 0)
		j = claimOne(t, s, "wk", "p1", at(time.Minute))
		complete(t, s, model.Completion{ID: j.ID, Epoch: j.Epoch, Error: "flaky"}, at(2*time.Minute))
		wantWoken(t, "after the last attempt failed", getInst(t, s, inst.ID), 0, at(2*time.Minute))
	})

	t.Run("Cancel", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		inst, j := setup(t, s, "wk", model.JobSpec{})
		cancel(t, s, j.ID, at(time.Second))
		wantWoken(t, "after a queued job was canceled", getInst(t, s, inst.ID), 0, at(time.Second))
	})

	t.Run("CancelRunning", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		inst, _ := setup(t, s, "wk", model.JobSpec{})
		j := claimOne(t, s, "wk", "p1", T0)
		// Asking a running job to stop is no end yet; its report is.
		cancel(t, s, j.ID, at(time.Second))
		wantNotWoken(t, "after cancel was asked", getInst(t, s, inst.ID), 0)
		wantState(t, "reported", complete(t, s, model.Completion{ID: j.ID, Epoch: j.Epoch, Error: "stopped"}, at(2*time.Second)), model.JobCanceled)
		wantWoken(t, "after the job stopped", getInst(t, s, inst.ID), 0, at(2*time.Second))
	})

	t.Run("ReleaseOfCanceled", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		inst, _ := setup(t, s, "wk", model.JobSpec{})
		j := claimOne(t, s, "wk", "p1", T0)
		cancel(t, s, j.ID, at(time.Second))
		got, err := s.JobRelease(t.Context(), j.ID, j.Epoch, at(2*time.Second))
		if err != nil {
			t.Fatalf("JobRelease: %v", err)
		}
		wantState(t, "released after cancel", got, model.JobCanceled)
		wantWoken(t, "after the job was canceled on release", getInst(t, s, inst.ID), 0, at(2*time.Second))
	})

	t.Run("ReleaseDoesNotWake", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		inst, _ := setup(t, s, "wk", model.JobSpec{})
		j := claimOne(t, s, "wk", "p1", T0)
		if _, err := s.JobRelease(t.Context(), j.ID, j.Epoch, at(time.Second)); err != nil {
			t.Fatalf("JobRelease: %v", err)
		}
		wantNotWoken(t, "after a job went back to the queue", getInst(t, s, inst.ID), 0)
	})

	t.Run("Rescue", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		// Three instances, each with a job whose lease expires: one with
		// attempts left (requeued), one with none (failed), one whose
		// cancel was asked (canceled).
		make1 := func(name, typ string, maxAttempts int) model.Instance {
			inst := parkInst(t, s, model.InstanceSpec{Template: name, Version: 1, Name: name}, "w1", T0)
			insert(t, s, T0, model.JobSpec{Type: typ, MaxAttempts: maxAttempts, InstanceID: inst.ID, Step: "j", Key: name + "/j"})
			claimOne(t, s, typ, "p1", T0)
			return inst
		}
		requeued := make1("requeued", "rs.a", 3)
		failed := make1("failed", "rs.b", 1)
		canceled := make1("canceled", "rs.c", 3)
		jobs, err := s.JobList(t.Context(), model.JobFilter{InstanceID: canceled.ID})
		if err != nil || len(jobs.Items) != 1 {
			t.Fatalf("jobs of canceled: %v, %v", jobs.Items, err)
		}
		cancel(t, s, jobs.Items[0].ID, T0)

		now := at(time.Hour)
		res, err := s.JobRescue(t.Context(), now)
		if err != nil {
			t.Fatalf("JobRescue: %v", err)
		}
		if res.Requeued != 1 || res.Failed != 1 || res.Canceled != 1 {
			t.Fatalf("JobRescue = %+v, want one of each", res)
		}
		wantNotWoken(t, "instance of the requeued job", getInst(t, s, requeued.ID), 0)
		wantWoken(t, "instance of the failed job", getInst(t, s, failed.ID), 0, now)
		wantWoken(t, "instance of the canceled job", getInst(t, s, canceled.ID), 0, now)
	})

	t.Run("FinalInstanceNotWoken", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		inst, _ := setup(t, s, "wk", model.JobSpec{})
		j := claimOne(t, s, "wk", "p1", T0)
		inst = advance(t, s, adv(inst, model.InstanceFailed), at(time.Second))
		complete(t, s, model.Completion{ID: j.ID, Epoch: j.Epoch}, at(2*time.Second))
		sameInstance(t, "final instance after its job ended", getInst(t, s, inst.ID), inst)
	})

	t.Run("EachEndIsAnEvent", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		inst := parkInst(t, s, model.InstanceSpec{Template: "w", Version: 1, Name: "i"}, "w1", T0)
		insert(t, s, T0,
			model.JobSpec{Type: "ee", InstanceID: inst.ID, Step: "a", Key: "i/a"},
			model.JobSpec{Type: "ee", InstanceID: inst.ID, Step: "b", Key: "i/b"})
		for i, j := range claimN(t, s, "ee", "p1", 2, T0) {
			complete(t, s, model.Completion{ID: j.ID, Epoch: j.Epoch}, at(time.Duration(i+1)*time.Second))
		}
		wantWoken(t, "after two jobs ended", getInst(t, s, inst.ID), 1, at(2*time.Second))
	})
}
