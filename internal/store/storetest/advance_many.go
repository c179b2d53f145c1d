package storetest

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/dpe-engine/dpe/internal/model"
)

// testInstanceAdvanceMany: a batch applies every advance whose fence holds
// in one call, reports the others one by one, and is all or nothing for
// any other failure.
func testInstanceAdvanceMany(t *testing.T, open WorkflowOpener) {
	spec := func(name string) model.InstanceSpec {
		return model.InstanceSpec{Template: "w." + name, Version: 1, Name: name} // one per template: see holdInst
	}

	t.Run("PerItem", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		a := holdInst(t, s, spec("a"), "w1", T0)
		b := holdInst(t, s, spec("b"), "w1", T0)
		other := holdInst(t, s, spec("other"), "w2", T0)
		stale := holdInst(t, s, spec("stale"), "w1", T0)
		parent := holdInst(t, s, spec("parent"), "w1", T0)

		toA := adv(a, model.InstanceRunning)
		toA.Steps = []model.Step{{Path: "j", ID: "j", Kind: "job", State: model.StepRunning, StartedAt: T0}}
		toA.Jobs = []model.JobSpec{{Type: "j", InstanceID: a.ID, Step: "j", Key: "a/j"}}
		toOther := adv(other, model.InstanceSucceeded)
		toOther.Worker = "w1" // not its holder
		toStale := adv(stale, model.InstanceSucceeded)
		toStale.Epoch--
		missing := model.Advance{InstanceID: stale.ID + 1000, Worker: "w1", Epoch: 1, State: model.InstanceRunning}
		// Children take the one-by-one path of engines that batch the
		// common advances: both paths in one call.
		toParent := adv(parent, model.InstanceRunning)
		toParent.Steps = []model.Step{{Path: "c", ID: "c", Kind: "workflow", State: model.StepRunning, StartedAt: T0}}
		toParent.Children = []model.InstanceSpec{{Template: "sub", Version: 1, Name: "parent/c", ParentStep: "c"}}
		batch := []model.Advance{adv(b, model.InstanceSucceeded), toOther, toA, missing, toStale, toParent}

		now := at(time.Second)
		res, err := s.InstanceAdvanceMany(t.Context(), batch, now)
		if err != nil {
			t.Fatalf("InstanceAdvanceMany: %v", err)
		}
		if len(res) != len(batch) {
			t.Fatalf("%d results for %d advances", len(res), len(batch))
		}
		wants := []error{nil, model.ErrConflict, nil, model.ErrNotFound, model.ErrConflict, nil}
		for i, want := range wants {
			if got := res[i].Err; (want == nil) != (got == nil) || (want != nil && !errors.Is(got, want)) {
				t.Errorf("result %d (instance %d): err %v, want %v", i, batch[i].InstanceID, got, want)
			}
		}
		if got := res[0].Instance; got.ID != b.ID || got.State != model.InstanceSucceeded || got.Worker != "" {
			t.Errorf("b after the batch: id %d state %s worker %q, want %d succeeded without a worker", got.ID, got.State, got.Worker, b.ID)
		}
		if got := res[2].Instance; got.ID != a.ID || got.State != model.InstanceRunning || got.StartedAt == nil {
			t.Errorf("a after the batch: id %d state %s started %v, want %d running and started", got.ID, got.State, got.StartedAt, a.ID)
		}
		if j := stepAt(t, s, a.ID, "j").JobID; j == 0 || get(t, s, j).Key != "a/j" {
			t.Errorf("a's step j: job %d, want the job of key a/j", j)
		}
		if c := stepAt(t, s, parent.ID, "c").ChildID; c == 0 || getInst(t, s, c).ParentID != parent.ID {
			t.Errorf("parent's step c: child %d, want the child created by the batch", c)
		}
		sameInstance(t, "instance held by another worker", getInst(t, s, other.ID), other)
		sameInstance(t, "instance advanced at a stale epoch", getInst(t, s, stale.ID), stale)

		// The same batch again (its answer was lost): nothing new.
		if _, err := s.InstanceAdvanceMany(t.Context(), []model.Advance{toA}, at(2*time.Second)); err != nil {
			t.Fatalf("repeat: %v", err)
		}
		wantTotal(t, s, model.JobFilter{}, 1)
	})

	t.Run("AllOrNothing", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		a := holdInst(t, s, spec("a"), "w1", T0)
		b := holdInst(t, s, spec("b"), "w1", T0)
		// A live instance of key k: a child of policy skip on k is refused
		// after b's advance already wrote its job.
		createInst(t, s, model.InstanceSpec{Template: "x", Version: 1, Name: "holder", ConcurrencyKey: "k", ConcurrencyPolicy: "skip"}, T0)
		toA := adv(a, model.InstanceRunning)
		toA.Steps = []model.Step{{Path: "c", ID: "c", Kind: "workflow", State: model.StepRunning, StartedAt: T0}}
		toA.Children = []model.InstanceSpec{{Template: "x", Version: 1, Name: "a/c", ParentStep: "c", ConcurrencyKey: "k", ConcurrencyPolicy: "skip"}}
		toB := adv(b, model.InstanceRunning)
		toB.Jobs = []model.JobSpec{{Type: "j", InstanceID: b.ID, Step: "j", Key: "b/j"}}
		// b sorts after a by id; put it first so its writes come before
		// the refusal whatever order the engine applies them in.
		if _, err := s.InstanceAdvanceMany(t.Context(), []model.Advance{toB, toA}, at(time.Second)); err == nil {
			t.Fatal("a batch with a refused child succeeded")
		}
		sameInstance(t, "a after the failed batch", getInst(t, s, a.ID), a)
		sameInstance(t, "b after the failed batch", getInst(t, s, b.ID), b)
		wantTotal(t, s, model.JobFilter{}, 0)
	})
}

// testInstanceDetails: details come in the order asked, missing ids left
// out, with the jobs and children of running steps only.
func testInstanceDetails(t *testing.T, open WorkflowOpener) {
	t.Parallel()
	s := open(t)
	running := func(path, kind string) model.Step {
		return model.Step{Path: path, ID: path, Kind: kind, State: model.StepRunning, StartedAt: T0}
	}
	p := holdInst(t, s, model.InstanceSpec{Template: "w", Version: 1, Name: "p"}, "w1", T0)
	a := adv(p, model.InstanceRunning)
	done := model.Step{Path: "a", ID: "a", Kind: "job", State: model.StepSucceeded, StartedAt: T0, FinishedAt: tp(T0)}
	a.Steps = []model.Step{done, running("b", "job"), running("c", "workflow")}
	a.Jobs = []model.JobSpec{{Type: "j", InstanceID: p.ID, Step: "a", Key: "p/a"}, {Type: "j", InstanceID: p.ID, Step: "b", Key: "p/b"}}
	a.Children = []model.InstanceSpec{{Template: "sub", Version: 1, Name: "p/c", ParentStep: "c"}}
	p = advance(t, s, a, at(time.Second))
	q := createInst(t, s, model.InstanceSpec{Template: "w", Version: 1, Name: "q"}, T0)

	got, err := s.InstanceDetails(t.Context(), []int64{q.ID, q.ID + 1000, p.ID})
	if err != nil {
		t.Fatalf("InstanceDetails: %v", err)
	}
	if len(got) != 2 || got[0].Instance.ID != q.ID || got[1].Instance.ID != p.ID {
		t.Fatalf("details of %v, want q %d then p %d", detailIDs(got), q.ID, p.ID)
	}
	if got[0].Steps == nil || len(got[0].Steps) != 0 || len(got[0].Jobs) != 0 || len(got[0].Children) != 0 {
		t.Errorf("q: %+v, want no steps (an empty list), jobs or children", got[0])
	}
	sameInstance(t, "p", got[1].Instance, p)
	sameSteps(t, "p's steps", got[1].Steps, instSteps(t, s, p.ID))
	jobB := stepAt(t, s, p.ID, "b").JobID
	if len(got[1].Jobs) != 1 || got[1].Jobs[0].ID != jobB {
		t.Errorf("p's jobs: %d of them, want only job %d of running step b", len(got[1].Jobs), jobB)
	}
	child := stepAt(t, s, p.ID, "c").ChildID
	if len(got[1].Children) != 1 || got[1].Children[0].ID != child {
		t.Errorf("p's children: %d of them, want only child %d of step c", len(got[1].Children), child)
	}
	if got, err := s.InstanceDetails(t.Context(), nil); err != nil || len(got) != 0 {
		t.Errorf("InstanceDetails(nil) = %d details, %v; want none", len(got), err)
	}
}

func detailIDs(ds []model.InstanceDetail) []int64 {
	var ids []int64
	for _, d := range ds {
		ids = append(ids, d.Instance.ID)
	}
	return slices.Clip(ids)
}

// testInstanceCreateMany: a batch creates what it can in one call; a
// taken name is returned as existing, a busy key of policy skip is
// refused alone.
func testInstanceCreateMany(t *testing.T, open WorkflowOpener) {
	t.Parallel()
	s := open(t)
	old := createInst(t, s, model.InstanceSpec{Template: "w", Version: 1, Name: "old"}, T0)
	createInst(t, s, model.InstanceSpec{Template: "k", Version: 1, Name: "holder", ConcurrencyKey: "k", ConcurrencyPolicy: "skip"}, T0)
	specs := []model.InstanceSpec{
		{Template: "w", Version: 1, Name: "a", Priority: 3},
		{Template: "w", Version: 1, Name: "old"},
		{Template: "k", Version: 1, Name: "refused", ConcurrencyKey: "k", ConcurrencyPolicy: "skip"},
		{Template: "w", Version: 1, Name: "b"},
		{Template: "w", Version: 1, Name: "a"}, // repeated in the batch: the first one
	}
	res, err := s.InstanceCreateMany(t.Context(), specs, at(time.Second))
	if err != nil {
		t.Fatalf("InstanceCreateMany: %v", err)
	}
	if len(res) != len(specs) {
		t.Fatalf("%d results for %d specs", len(res), len(specs))
	}
	a, b := res[0].Instance, res[3].Instance
	switch {
	case res[0].Err != nil || res[0].Existing || a.Name != "a" || a.Priority != 3 || a.State != model.InstancePending:
		t.Errorf("a: %+v", res[0])
	case res[1].Err != nil || !res[1].Existing || res[1].Instance.ID != old.ID:
		t.Errorf("old: %+v, want the existing instance %d", res[1], old.ID)
	case !errors.Is(res[2].Err, model.ErrConflict):
		t.Errorf("refused: %+v, want a conflict", res[2])
	case res[3].Err != nil || res[3].Existing || b.Name != "b" || b.ID <= a.ID:
		t.Errorf("b: %+v", res[3])
	case res[4].Err != nil || !res[4].Existing || res[4].Instance.ID != a.ID:
		t.Errorf("a again: %+v, want instance %d", res[4], a.ID)
	}
	if _, err := s.InstanceGetByName(t.Context(), "refused"); !errors.Is(err, model.ErrNotFound) {
		t.Errorf("refused spec created an instance: %v", err)
	}
}
