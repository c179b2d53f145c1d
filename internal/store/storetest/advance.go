package storetest

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/dpe-engine/dpe/internal/model"
	"github.com/dpe-engine/dpe/internal/store"
)

// testInstanceAdvance covers fencing and the instance fields an advance
// sets.
func testInstanceAdvance(t *testing.T, open WorkflowOpener) {
	spec := model.InstanceSpec{Template: "w", Version: 1, Name: "i"}

	t.Run("Running", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		inst := holdInst(t, s, spec, "w1", T0)
		now := at(5 * time.Second)
		a := adv(inst, model.InstanceRunning)
		a.Progress, a.Current = 40, []string{"fan[0]/copy", "fan[1]/copy"}
		a.Vars = json.RawMessage(`{"n": 2, "files": ["a", "b"]}`)
		a.WakeAt = tp(at(time.Hour))
		got := advance(t, s, a, now)
		want := inst
		want.State, want.Progress, want.Current, want.Vars = model.InstanceRunning, 40, a.Current, a.Vars
		want.WakeAt, want.StartedAt, want.UpdatedAt = tp(at(time.Hour)), tp(now), now
		sameInstance(t, "advanced", got, want)
		sameInstance(t, "InstanceGet", getInst(t, s, inst.ID), want)

		// A second advance: StartedAt stays, WakeAt nil waits for an event.
		a = adv(got, model.InstanceRunning)
		a.Progress, a.Vars = 60, json.RawMessage(`{"n": 3}`)
		got = advance(t, s, a, at(time.Minute))
		want.Progress, want.Current, want.Vars, want.WakeAt, want.UpdatedAt = 60, nil, a.Vars, nil, at(time.Minute)
		sameInstance(t, "advanced again", got, want)
	})

	t.Run("Final", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		for _, tc := range []struct {
			state  model.InstanceState
			output json.RawMessage
			err    string
		}{
			{model.InstanceSucceeded, json.RawMessage(`{"checksum": "abc"}`), ""},
			{model.InstanceFailed, nil, "step copy: no space left"},
			{model.InstanceCanceled, nil, "canceled"},
		} {
			sp := model.InstanceSpec{Template: string(tc.state), Version: 1, Name: string(tc.state)}
			inst := parkInst(t, s, sp, "w1", T0)
			now := at(time.Minute)
			a := adv(inst, tc.state)
			a.Progress, a.Output, a.Error, a.WakeAt = 100, tc.output, tc.err, tp(at(time.Hour))
			got := advance(t, s, a, now)
			// Final: lease and WakeAt cleared, the epoch kept.
			want := inst
			want.State, want.Progress, want.Output, want.Error, want.Vars = tc.state, 100, tc.output, tc.err, nil
			want.Worker, want.LeaseUntil, want.WakeAt = "", nil, nil
			want.FinishedAt, want.UpdatedAt = tp(now), now
			sameInstance(t, "ended "+string(tc.state), got, want)
			sameInstance(t, "InstanceGet "+string(tc.state), getInst(t, s, inst.ID), want)
			_, err := s.InstanceAdvance(t.Context(), adv(inst, model.InstanceRunning), at(2*time.Minute))
			wantErr(t, "advance of a final instance", err, model.ErrConflict)
		}
		if got := claimAll(t, s, "w1", at(time.Hour)); len(got) != 0 {
			t.Errorf("final instances claimed: %v", instIDs(got))
		}
	})

	t.Run("StartedAtOnFirstAdvance", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		// An instance that ends at its first look has started then too.
		got := endInst(t, s, spec, model.InstanceFailed, at(time.Second))
		sameTimePtr(t, "StartedAt", got.StartedAt, at(time.Second))
		sameTimePtr(t, "FinishedAt", got.FinishedAt, at(time.Second))
	})

	t.Run("Fencing", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		inst := holdInst(t, s, spec, "w1", T0)
		before := getInst(t, s, inst.ID)
		for _, tc := range []struct {
			name   string
			worker string
			epoch  int64
		}{
			{"older epoch", "w1", inst.Epoch - 1},
			{"newer epoch", "w1", inst.Epoch + 1},
			{"other worker", "w2", inst.Epoch},
		} {
			a := adv(inst, model.InstanceSucceeded)
			a.Worker, a.Epoch = tc.worker, tc.epoch
			a.Steps = []model.Step{{Path: "j", ID: "j", Kind: "job", State: model.StepRunning, StartedAt: T0}}
			a.Jobs = []model.JobSpec{{Type: "f", InstanceID: inst.ID, Step: "j", Key: "fenced"}}
			_, err := s.InstanceAdvance(t.Context(), a, at(time.Second))
			wantErr(t, tc.name, err, model.ErrConflict)
		}
		// Nothing of the refused advances stayed.
		sameInstance(t, "after refused advances", getInst(t, s, inst.ID), before)
		if steps := instSteps(t, s, inst.ID); len(steps) != 0 {
			t.Errorf("steps of refused advances: %+v", steps)
		}
		wantTotal(t, s, model.JobFilter{}, 0)

		_, err := s.InstanceAdvance(t.Context(), model.Advance{InstanceID: 1 << 40, Worker: "w1", Epoch: 1, State: model.InstanceRunning}, at(time.Second))
		wantErr(t, "advance of a missing instance", err, model.ErrNotFound)
	})

	t.Run("ExpiredLeaseNotTaken", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		inst := holdInst(t, s, spec, "w1", T0)
		// Nobody took the instance: the late holder's advance stands.
		got := advance(t, s, adv(inst, model.InstanceRunning), at(time.Hour))
		wantInstState(t, "late advance", got, model.InstanceRunning)

		// Once another worker took it, the old holder is fenced out.
		taken := claimAll(t, s, "w2", at(2*time.Hour))
		if len(taken) != 0 {
			t.Fatalf("claim of an instance not due: %v", instIDs(taken))
		}
		if _, err := s.InstanceCancel(t.Context(), inst.ID, at(2*time.Hour)); err != nil {
			t.Fatalf("InstanceCancel: %v", err)
		}
		taken = claimAll(t, s, "w2", at(2*time.Hour))
		if len(taken) != 1 || taken[0].Epoch != inst.Epoch+1 {
			t.Fatalf("take-over: %+v", taken)
		}
		_, err := s.InstanceAdvance(t.Context(), adv(got, model.InstanceRunning), at(2*time.Hour))
		wantErr(t, "advance by the old holder", err, model.ErrConflict)
		advance(t, s, adv(taken[0], model.InstanceCanceled), at(2*time.Hour))
	})

	t.Run("Release", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		inst := holdInst(t, s, spec, "w1", T0)
		a := adv(inst, model.InstanceRunning)
		a.Release, a.WakeAt = true, tp(at(time.Minute))
		got := advance(t, s, a, at(time.Second))
		if got.Worker != "" || got.LeaseUntil != nil || got.Epoch != inst.Epoch {
			t.Errorf("released by advance: worker %q lease %v epoch %d", got.Worker, got.LeaseUntil, got.Epoch)
		}
		sameTimePtr(t, "WakeAt", got.WakeAt, at(time.Minute))
		// Any worker may take it when due; the epoch grows.
		taken := claimAll(t, s, "w1", at(time.Minute))
		if len(taken) != 1 || taken[0].Epoch != inst.Epoch+1 {
			t.Fatalf("claim after release: %+v", taken)
		}
	})

	t.Run("EventMeanwhileStaysDue", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		inst := holdInst(t, s, spec, "w1", T0) // decided on WakeSeq 0
		if _, err := s.InstanceCancel(t.Context(), inst.ID, at(time.Second)); err != nil {
			t.Fatalf("InstanceCancel: %v", err)
		}
		// The decision did not see the cancel: its WakeAt is not kept.
		a := adv(inst, model.InstanceRunning)
		a.WakeAt = tp(at(time.Hour))
		got := advance(t, s, a, at(2*time.Second))
		sameTimePtr(t, "WakeAt after a stale decision", got.WakeAt, at(2*time.Second))
		if got.WakeSeq != 1 || !got.CancelAsked {
			t.Errorf("WakeSeq %d CancelAsked %v, want 1 true", got.WakeSeq, got.CancelAsked)
		}
		// A decision on the current count is stored as it is.
		got = advance(t, s, adv(got, model.InstanceRunning), at(3*time.Second))
		wantNotWoken(t, "current decision", got, 1)
	})

	t.Run("Atomic", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		inst := holdInst(t, s, spec, "w1", T0)
		before := getInst(t, s, inst.ID)
		a := adv(inst, model.InstanceRunning)
		a.Steps = []model.Step{{Path: "ok", ID: "ok", Kind: "job", State: model.StepRunning, StartedAt: T0}}
		a.Children = []model.InstanceSpec{{Template: "sub", Version: 1, Name: "i/c", ParentID: inst.ID, ParentStep: "c"}}
		a.Jobs = []model.JobSpec{
			{Type: "ok", InstanceID: inst.ID, Step: "ok", Key: "i/ok"},
			{Type: "bad", InstanceID: inst.ID, Step: "bad", Key: "i/bad", Params: json.RawMessage(`{not json`)},
		}
		if _, err := s.InstanceAdvance(t.Context(), a, at(time.Second)); err == nil {
			t.Fatal("advance with a malformed job: no error")
		}
		sameInstance(t, "after a failed advance", getInst(t, s, inst.ID), before)
		if steps := instSteps(t, s, inst.ID); len(steps) != 0 {
			t.Errorf("steps of a failed advance: %+v", steps)
		}
		wantTotal(t, s, model.JobFilter{}, 0)
		_, err := s.InstanceGetByName(t.Context(), "i/c")
		wantErr(t, "child of a failed advance", err, model.ErrNotFound)
	})
}

// testInstanceAdvanceWork covers the jobs, children, steps and cancels an
// advance carries.
func testInstanceAdvanceWork(t *testing.T, open WorkflowOpener) {
	spec := model.InstanceSpec{Template: "w", Version: 1, Name: "i", Priority: 4}
	running := func(path, kind string) model.Step {
		return model.Step{Path: path, ID: path, Kind: kind, State: model.StepRunning, StartedAt: T0}
	}

	t.Run("Jobs", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		inst := holdInst(t, s, spec, "w1", T0)
		// A job submitted before (by a worker that died before its advance
		// committed, say) is found again by its key.
		early := insert(t, s, T0, model.JobSpec{Type: "j.b", InstanceID: inst.ID, Step: "b", Key: "i/b"})[0]
		a := adv(inst, model.InstanceRunning)
		a.Steps = []model.Step{running("a", "job"), running("b", "job")}
		a.Jobs = []model.JobSpec{
			{Type: "j.a", Params: json.RawMessage(`{"path": "/x"}`), Priority: 4, InstanceID: inst.ID, Step: "a", Key: "i/a", Timeout: model.Duration(time.Minute)},
			{Type: "j.b", InstanceID: inst.ID, Step: "b", Key: "i/b"},
		}
		now := at(time.Second)
		advance(t, s, a, now)
		ja := stepAt(t, s, inst.ID, "a").JobID
		if got := stepAt(t, s, inst.ID, "b").JobID; got != early.ID {
			t.Errorf("step b: job %d, want the existing job %d", got, early.ID)
		}
		// Inserted like JobInsert: defaults applied, queued now.
		d := a.Jobs[0].WithDefaults()
		sameJob(t, "submitted job", get(t, s, ja), model.Job{
			ID: ja, Type: "j.a", Params: d.Params, Priority: 4, State: model.JobQueued,
			MaxAttempts: d.MaxAttempts, Backoff: d.Backoff, BackoffMax: d.BackoffMax, Timeout: d.Timeout,
			InstanceID: inst.ID, Step: "a", Key: "i/a", RunAfter: now, CreatedAt: now, UpdatedAt: now,
		})

		// The same advance again (its answer was lost): nothing new.
		advance(t, s, a, at(2*time.Second))
		wantTotal(t, s, model.JobFilter{}, 2)
		if got := stepAt(t, s, inst.ID, "a").JobID; got != ja {
			t.Errorf("step a after a repeat: job %d, want %d", got, ja)
		}
	})

	t.Run("JobForStoredStep", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		inst := holdInst(t, s, spec, "w1", T0)
		a := adv(inst, model.InstanceRunning)
		a.Steps = []model.Step{running("c", "job")}
		inst = advance(t, s, a, at(time.Second))
		// The job's step is not in this advance's Steps but is stored.
		a = adv(inst, model.InstanceRunning)
		a.Jobs = []model.JobSpec{{Type: "j.c", InstanceID: inst.ID, Step: "c", Key: "i/c"}}
		advance(t, s, a, at(2*time.Second))
		if got := stepAt(t, s, inst.ID, "c"); got.JobID == 0 || get(t, s, got.JobID).Key != "i/c" {
			t.Errorf("stored step c: job %d, want the job of key i/c", got.JobID)
		}
	})

	t.Run("UpsertKeepsIDs", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		inst := holdInst(t, s, spec, "w1", T0)
		a := adv(inst, model.InstanceRunning)
		a.Steps = []model.Step{running("j", "job"), running("c", "workflow")}
		a.Jobs = []model.JobSpec{{Type: "j", InstanceID: inst.ID, Step: "j", Key: "i/j"}}
		a.Children = []model.InstanceSpec{{Template: "sub", Version: 1, Name: "i/c", ParentID: inst.ID, ParentStep: "c"}}
		inst = advance(t, s, a, at(time.Second))
		jobID, childID := stepAt(t, s, inst.ID, "j").JobID, stepAt(t, s, inst.ID, "c").ChildID
		if jobID == 0 || childID == 0 {
			t.Fatalf("ids not written: job %d child %d", jobID, childID)
		}
		// A later record of the steps without the ids keeps them.
		doneJ := model.Step{
			Path: "j", ID: "j", Kind: "job", State: model.StepSucceeded, Result: json.RawMessage(`{"ok": true}`),
			StartedAt: T0, FinishedAt: tp(at(2 * time.Second)),
		}
		doneC := model.Step{
			Path: "c", ID: "c", Kind: "workflow", State: model.StepFailed, Error: "sub-workflow failed",
			StartedAt: T0, FinishedAt: tp(at(2 * time.Second)),
		}
		a = adv(inst, model.InstanceRunning)
		a.Steps = []model.Step{doneJ, doneC}
		advance(t, s, a, at(2*time.Second))
		doneJ.JobID, doneC.ChildID = jobID, childID
		sameSteps(t, "steps after the upsert", instSteps(t, s, inst.ID), []model.Step{doneC, doneJ})
	})

	t.Run("Children", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		parent := holdInst(t, s, spec, "w1", T0)
		// A child created before under its name is found again.
		early := createInst(t, s, model.InstanceSpec{Template: "sub", Version: 1, Name: "i/b", ParentID: parent.ID, ParentStep: "b"}, T0)
		a := adv(parent, model.InstanceRunning)
		a.Steps = []model.Step{running("a", "workflow"), running("b", "workflow")}
		ca := model.InstanceSpec{
			Template: "sub", Version: 2, Name: "i/a", Args: json.RawMessage(`{"x": 1}`), Priority: 4,
			ParentID: parent.ID, ParentStep: "a",
		}
		a.Children = []model.InstanceSpec{ca, {Template: "sub", Version: 1, Name: "i/b", ParentID: parent.ID, ParentStep: "b"}}
		now := at(time.Second)
		advance(t, s, a, now)
		child, err := s.InstanceGetByName(t.Context(), "i/a")
		if err != nil {
			t.Fatalf("child i/a: %v", err)
		}
		// Created as InstanceCreate would: pending and due.
		sameInstance(t, "child", child, newInstance(child.ID, ca, now))
		if got := stepAt(t, s, parent.ID, "a").ChildID; got != child.ID {
			t.Errorf("step a: child %d, want %d", got, child.ID)
		}
		if got := stepAt(t, s, parent.ID, "b").ChildID; got != early.ID {
			t.Errorf("step b: child %d, want the existing %d", got, early.ID)
		}
		advance(t, s, a, at(2*time.Second))
		wantInstTotal(t, s, model.InstanceFilter{ParentID: parent.ID}, 2)
	})

	t.Run("ChildEndWakesParent", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		parent := holdInst(t, s, spec, "w1", T0)
		a := adv(parent, model.InstanceRunning)
		a.Steps = []model.Step{running("c", "workflow")}
		a.Children = []model.InstanceSpec{{Template: "sub", Version: 1, Name: "i/c", ParentID: parent.ID, ParentStep: "c"}}
		parent = advance(t, s, a, at(time.Second))
		wantNotWoken(t, "parent waiting", parent, 0)

		child := claimInst(t, s, store.InstanceClaimParams{Worker: "w2", Templates: []string{"sub"}, Default: 1, LeaseTTL: leaseTTL, Now: at(2 * time.Second)})
		if len(child) != 1 {
			t.Fatalf("claim of the child: %v", instIDs(child))
		}
		// A child still running does not wake the parent; its end does.
		c := advance(t, s, adv(child[0], model.InstanceRunning), at(3*time.Second))
		wantNotWoken(t, "parent while the child runs", getInst(t, s, parent.ID), 0)
		advance(t, s, adv(c, model.InstanceSucceeded), at(4*time.Second))
		wantWoken(t, "parent after the child ended", getInst(t, s, parent.ID), 0, at(4*time.Second))
	})

	t.Run("CancelJobs", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		inst := holdInst(t, s, spec, "w1", T0)
		a := adv(inst, model.InstanceRunning)
		a.Steps = []model.Step{running("q", "job"), running("r", "job"), running("d", "job")}
		a.Jobs = []model.JobSpec{
			{Type: "cj.q", InstanceID: inst.ID, Step: "q", Key: "i/q"},
			{Type: "cj.r", InstanceID: inst.ID, Step: "r", Key: "i/r"},
			{Type: "cj.d", InstanceID: inst.ID, Step: "d", Key: "i/d"},
		}
		inst = advance(t, s, a, T0)
		q := get(t, s, stepAt(t, s, inst.ID, "q").JobID)
		r := claimOne(t, s, "cj.r", "p1", T0)
		d := claimOne(t, s, "cj.d", "p1", T0)
		d = complete(t, s, model.Completion{ID: d.ID, Epoch: d.Epoch}, T0)
		inst = getInst(t, s, inst.ID) // d's end woke it

		now := at(time.Second)
		a = adv(inst, model.InstanceRunning)
		a.CancelJobs = []int64{q.ID, r.ID, d.ID, 1 << 40}
		got := advance(t, s, a, now)
		gq := get(t, s, q.ID)
		wantState(t, "queued job", gq, model.JobCanceled)
		sameTimePtr(t, "canceled job FinishedAt", gq.FinishedAt, now)
		gr := get(t, s, r.ID)
		if gr.State != model.JobRunning || !gr.CancelAsked {
			t.Errorf("running job: %s cancel %v, want running with cancel asked", gr.State, gr.CancelAsked)
		}
		sameJob(t, "finished job", get(t, s, d.ID), d)
		// The instance's own cancels are no event for it: WakeAt as decided.
		noTime(t, "WakeAt", got.WakeAt)
	})

	t.Run("CancelChildren", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		parent := holdInst(t, s, spec, "w1", T0)
		a := adv(parent, model.InstanceRunning)
		a.Steps = []model.Step{running("p", "workflow"), running("f", "workflow")}
		a.Children = []model.InstanceSpec{
			{Template: "sub", Version: 1, Name: "i/p", ParentID: parent.ID, ParentStep: "p"},
			{Template: "sub.f", Version: 1, Name: "i/f", ParentID: parent.ID, ParentStep: "f"},
		}
		parent = advance(t, s, a, T0)
		pending := getInst(t, s, stepAt(t, s, parent.ID, "p").ChildID)
		fc := claimInst(t, s, store.InstanceClaimParams{Worker: "w2", Templates: []string{"sub.f"}, Default: 1, LeaseTTL: leaseTTL, Now: T0})
		if len(fc) != 1 {
			t.Fatalf("claim of child f: %v", instIDs(fc))
		}
		finished := advance(t, s, adv(fc[0], model.InstanceSucceeded), T0)
		parent = getInst(t, s, parent.ID) // f's end woke it

		now := at(time.Second)
		a = adv(parent, model.InstanceFailed)
		a.CancelChildren = []int64{pending.ID, finished.ID, 1 << 40}
		advance(t, s, a, now)
		gp := getInst(t, s, pending.ID)
		if !gp.CancelAsked || gp.State != model.InstancePending {
			t.Errorf("pending child: %s cancel %v, want pending with cancel asked", gp.State, gp.CancelAsked)
		}
		wantWoken(t, "canceled child", gp, pending.WakeSeq, now)
		sameInstance(t, "finished child", getInst(t, s, finished.ID), finished)
	})
}
