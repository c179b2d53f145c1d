package storetest

import (
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/dpe-engine/dpe/internal/model"
	"github.com/dpe-engine/dpe/internal/store"
)

// newInstance is what InstanceCreate must return for spec at now, but for
// its id.
func newInstance(id int64, spec model.InstanceSpec, now time.Time) model.Instance {
	args := spec.Args
	if len(args) == 0 {
		args = json.RawMessage(`{}`)
	}
	return model.Instance{
		ID: id, Name: spec.Name, Template: spec.Template, Version: spec.Version, Args: args,
		Priority: spec.Priority, State: model.InstancePending,
		ConcurrencyKey: spec.ConcurrencyKey, ConcurrencyPolicy: spec.ConcurrencyPolicy,
		ParentID: spec.ParentID, ParentStep: spec.ParentStep,
		WakeAt: tp(now), CreatedAt: now, UpdatedAt: now,
	}
}

// testInstanceCreate covers new instances and deduplication by name.
func testInstanceCreate(t *testing.T, open WorkflowOpener) {
	t.Run("Defaults", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		spec := model.InstanceSpec{Template: "w", Version: 1, Name: "i1"}
		got := createInst(t, s, spec, T0)
		if got.ID <= 0 {
			t.Fatalf("ID = %d, want > 0", got.ID)
		}
		// Pending and due at once, with no lease and no event yet.
		want := newInstance(got.ID, spec, T0)
		sameInstance(t, "created", got, want)
		sameInstance(t, "InstanceGet", getInst(t, s, got.ID), want)
	})

	t.Run("EveryField", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		spec := model.InstanceSpec{
			Template: "w", Version: 3, Name: "w/2026-11-25T02:00:00Z", Priority: 7,
			Args:           json.RawMessage(`{"path": "/in/a.wav", "n": [1, 2.5, true]}`),
			ConcurrencyKey: "w:studio-1", ConcurrencyPolicy: model.ConcurrencyAllow,
			ParentID: 42, ParentStep: "fan[2]/sub",
		}
		got := createInst(t, s, spec, at(time.Minute))
		want := newInstance(got.ID, spec, at(time.Minute))
		sameInstance(t, "created", got, want)
		sameInstance(t, "InstanceGet", getInst(t, s, got.ID), want)
	})

	t.Run("ExistingName", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		first := createInst(t, s, model.InstanceSpec{Template: "w", Version: 1, Name: "same", Priority: 1}, T0)
		// Whatever the other fields say, the name finds the first instance.
		got, existing, err := s.InstanceCreate(t.Context(), model.InstanceSpec{
			Template: "other", Version: 2, Name: "same", Priority: 9,
			ConcurrencyKey: "k", ConcurrencyPolicy: model.ConcurrencySkip,
		}, at(time.Minute))
		if err != nil || !existing {
			t.Fatalf("second create of a name: existing %v, %v; want existing", existing, err)
		}
		sameInstance(t, "existing", got, first)
		wantInstTotal(t, s, model.InstanceFilter{}, 1)
	})

	t.Run("IDsGrow", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		a := createInst(t, s, model.InstanceSpec{Template: "w", Version: 1, Name: "a"}, T0)
		b := createInst(t, s, model.InstanceSpec{Template: "w", Version: 1, Name: "b"}, T0)
		if b.ID <= a.ID {
			t.Errorf("ids %d then %d: want growing", a.ID, b.ID)
		}
	})

	t.Run("VersionZeroIsLatest", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		putTemplate(t, s, tmpl("w", 0, "a"), T0, true)
		putTemplate(t, s, tmpl("w", 0, "b"), T0, true)
		if got := createInst(t, s, model.InstanceSpec{Template: "w", Name: "latest"}, T0); got.Version != 2 {
			t.Errorf("Version 0: instance of version %d, want the latest, 2", got.Version)
		}
		if got := createInst(t, s, model.InstanceSpec{Template: "w", Version: 1, Name: "first"}, T0); got.Version != 1 {
			t.Errorf("Version 1: instance of version %d, want 1", got.Version)
		}
	})

	t.Run("ConcurrentName", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		const n = 10
		var (
			wg       sync.WaitGroup
			got      = make([]model.Instance, n)
			existing = make([]bool, n)
			errs     = make([]error, n)
		)
		for i := range n {
			wg.Go(func() {
				got[i], existing[i], errs[i] = s.InstanceCreate(t.Context(),
					model.InstanceSpec{Template: "w", Version: 1, Name: "once", Priority: i}, T0)
			})
		}
		wg.Wait()
		created := 0
		for i := range n {
			if errs[i] != nil {
				t.Fatalf("create %d: %v", i, errs[i])
			}
			if !existing[i] {
				created++
			}
			if got[i].ID != got[0].ID {
				t.Errorf("create %d: id %d, create 0: id %d", i, got[i].ID, got[0].ID)
			}
		}
		if created != 1 {
			t.Errorf("%d creates reported a new instance, want 1", created)
		}
		wantInstTotal(t, s, model.InstanceFilter{}, 1)
	})
}

// testInstanceConcurrencyKey covers the skip and queue policies.
func testInstanceConcurrencyKey(t *testing.T, open WorkflowOpener) {
	skip := func(name, key string) model.InstanceSpec {
		return model.InstanceSpec{Template: "w", Version: 1, Name: name, ConcurrencyKey: key, ConcurrencyPolicy: model.ConcurrencySkip}
	}
	queue := func(name, key string) model.InstanceSpec {
		return model.InstanceSpec{Template: "w", Version: 1, Name: name, ConcurrencyKey: key, ConcurrencyPolicy: model.ConcurrencyQueue}
	}

	t.Run("Skip", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		first := holdInst(t, s, skip("a", "k"), "w1", T0)
		_, _, err := s.InstanceCreate(t.Context(), skip("b", "k"), at(time.Second))
		wantErr(t, "skip while one of the key is pending", err, model.ErrConflict)
		_, err = s.InstanceGetByName(t.Context(), "b")
		wantErr(t, "the skipped instance", err, model.ErrNotFound)
		// The name of the running one still finds it: names come first.
		if _, existing, err := s.InstanceCreate(t.Context(), skip("a", "k"), at(time.Second)); err != nil || !existing {
			t.Fatalf("create of the running name: existing %v, %v", existing, err)
		}
		// Other keys and other policies are not affected.
		createInst(t, s, skip("c", "k2"), at(time.Second))
		createInst(t, s, model.InstanceSpec{Template: "w", Version: 1, Name: "d", ConcurrencyKey: "k", ConcurrencyPolicy: model.ConcurrencyAllow}, at(time.Second))

		advance(t, s, adv(first, model.InstanceRunning), at(2*time.Second))
		_, _, err = s.InstanceCreate(t.Context(), skip("b", "k"), at(3*time.Second))
		wantErr(t, "skip while one of the key is running", err, model.ErrConflict)
		wantInstTotal(t, s, model.InstanceFilter{}, 3)
	})

	t.Run("SkipAfterFinal", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		endInst(t, s, skip("a", "k"), model.InstanceFailed, T0)
		createInst(t, s, skip("b", "k"), at(time.Second))
	})

	t.Run("Queue", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		a := createInst(t, s, queue("a", "k"), T0)
		b := createInst(t, s, queue("b", "k"), T0)
		c := createInst(t, s, queue("c", "k"), T0)
		x := createInst(t, s, queue("x", "k2"), T0)
		wantInstState(t, "queued instance", b, model.InstancePending)
		// b and c wait for a; x has a key of its own.
		got := claimAll(t, s, "w1", at(time.Second))
		if !slices.Equal(instIDs(got), []int64{a.ID, x.ID}) {
			t.Fatalf("claim: %v, want the oldest of each key %v", instIDs(got), []int64{a.ID, x.ID})
		}
		a1 := advance(t, s, adv(got[0], model.InstanceRunning), at(2*time.Second))
		advance(t, s, adv(got[1], model.InstanceRunning), at(2*time.Second))
		if got := claimAll(t, s, "w2", at(3*time.Second)); len(got) != 0 {
			t.Fatalf("claim while a runs: %v, want none", instIDs(got))
		}

		// a ends: b, the oldest pending instance of the key, is woken (and
		// only b) and can be claimed.
		advance(t, s, adv(a1, model.InstanceSucceeded), at(4*time.Second))
		wantWoken(t, "b after a ended", getInst(t, s, b.ID), 0, at(4*time.Second))
		if got := getInst(t, s, c.ID); got.WakeSeq != 0 {
			t.Errorf("c woken too: WakeSeq %d", got.WakeSeq)
		}
		got = claimAll(t, s, "w2", at(5*time.Second))
		if !slices.Equal(instIDs(got), []int64{b.ID}) {
			t.Fatalf("claim after a ended: %v, want b %d", instIDs(got), b.ID)
		}
	})

	t.Run("QueueCanceledIsNotHeldBack", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		holdInst(t, s, queue("a", "k"), "w1", T0)
		b := createInst(t, s, queue("b", "k"), T0)
		if _, err := s.InstanceCancel(t.Context(), b.ID, at(time.Second)); err != nil {
			t.Fatalf("InstanceCancel: %v", err)
		}
		// A canceled instance runs nothing: a worker may take it at once
		// to end it, instead of leaving it pending behind a.
		got := claimAll(t, s, "w2", at(2*time.Second))
		if !slices.Equal(instIDs(got), []int64{b.ID}) {
			t.Fatalf("claim: %v, want the canceled queued instance %d", instIDs(got), b.ID)
		}
	})
}

// testInstanceRead covers InstanceGet, InstanceGetByName and InstanceSteps.
func testInstanceRead(t *testing.T, open WorkflowOpener) {
	t.Run("Missing", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		_, err := s.InstanceGet(t.Context(), 1<<40)
		wantErr(t, "InstanceGet of a missing id", err, model.ErrNotFound)
		_, err = s.InstanceGetByName(t.Context(), "nope")
		wantErr(t, "InstanceGetByName of a missing name", err, model.ErrNotFound)
		_, err = s.InstanceSteps(t.Context(), 1<<40)
		wantErr(t, "InstanceSteps of a missing instance", err, model.ErrNotFound)
	})

	t.Run("ByName", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		createInst(t, s, model.InstanceSpec{Template: "w", Version: 1, Name: "other"}, T0)
		inst := createInst(t, s, model.InstanceSpec{Template: "w", Version: 1, Name: "schedule/nightly/2026-11-25T02:00:00Z"}, T0)
		got, err := s.InstanceGetByName(t.Context(), inst.Name)
		if err != nil {
			t.Fatalf("InstanceGetByName: %v", err)
		}
		sameInstance(t, "by name", got, inst)
	})

	t.Run("Steps", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		inst := holdInst(t, s, model.InstanceSpec{Template: "w", Version: 1, Name: "i"}, "w1", T0)
		if steps := instSteps(t, s, inst.ID); len(steps) != 0 {
			t.Fatalf("steps of a new instance: %+v", steps)
		}
		full := model.Step{
			Path: "a[0]", ID: "a", Kind: "job", State: model.StepFailed,
			Result: json.RawMessage(`{"size": 3, "ok": false}`), Error: "boom", JobID: 77, ChildID: 88,
			WakeAt: tp(at(time.Hour)), StartedAt: at(time.Second), FinishedAt: tp(at(2 * time.Second)),
		}
		bare := func(path string) model.Step {
			return model.Step{Path: path, ID: path, Kind: "set", State: model.StepRunning, StartedAt: at(time.Second)}
		}
		a := adv(inst, model.InstanceRunning)
		// Byte order: "B" < "a/b" < "a[0]" < "aa"; a locale collation,
		// which ignores punctuation, would give another order.
		a.Steps = []model.Step{bare("aa"), full, bare("B"), bare("a/b")}
		advance(t, s, a, at(3*time.Second))
		sameSteps(t, "steps by path", instSteps(t, s, inst.ID), []model.Step{bare("B"), bare("a/b"), full, bare("aa")})
	})
}

// wantInstTotal fails unless InstanceList counts n matches of f.
func wantInstTotal(t *testing.T, s store.WorkflowStore, f model.InstanceFilter, n int) {
	t.Helper()
	p, err := s.InstanceList(t.Context(), f)
	if err != nil {
		t.Fatalf("InstanceList: %v", err)
	}
	if p.Total != n {
		t.Fatalf("InstanceList(%+v): Total %d, want %d", f, p.Total, n)
	}
}

// testInstanceList covers filters, order, totals and paging.
func testInstanceList(t *testing.T, open WorkflowOpener) {
	t.Run("Filters", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		// Ten instances, templates a and b alternating; 0-2 final, 3-4
		// running, the rest pending; 6 and 7 children of 3.
		var all []model.Instance
		spec := func(i int) model.InstanceSpec {
			tpl := "a"
			if i%2 == 1 {
				tpl = "b"
			}
			sp := model.InstanceSpec{Template: tpl, Version: 1, Name: fmt.Sprintf("i%d", i)}
			if i == 6 || i == 7 {
				sp.ParentID, sp.ParentStep = all[3].ID, "sub"
			}
			if i%3 == 0 {
				sp.Trigger = "nightly"
			}
			return sp
		}
		finals := []model.InstanceState{model.InstanceSucceeded, model.InstanceFailed, model.InstanceCanceled}
		for i := range 10 {
			switch {
			case i < 3:
				all = append(all, endInst(t, s, spec(i), finals[i], at(time.Duration(i)*time.Second)))
			case i < 5:
				all = append(all, parkInst(t, s, spec(i), "w1", at(time.Duration(i)*time.Second)))
			default:
				all = append(all, createInst(t, s, spec(i), at(time.Duration(i)*time.Second)))
			}
		}
		idx := func(is ...int) []int64 {
			out := []int64{}
			for _, i := range is {
				out = append(out, all[i].ID)
			}
			return out
		}
		cases := []struct {
			name string
			f    model.InstanceFilter
			want []int64
		}{
			{"all", model.InstanceFilter{}, idx(9, 8, 7, 6, 5, 4, 3, 2, 1, 0)},
			{"pending", model.InstanceFilter{States: []model.InstanceState{model.InstancePending}}, idx(9, 8, 7, 6, 5)},
			{"final", model.InstanceFilter{States: finals}, idx(2, 1, 0)},
			{"template a", model.InstanceFilter{Templates: []string{"a"}}, idx(8, 6, 4, 2, 0)},
			{"templates a b", model.InstanceFilter{Templates: []string{"a", "b"}}, idx(9, 8, 7, 6, 5, 4, 3, 2, 1, 0)},
			{"template unknown", model.InstanceFilter{Templates: []string{"zzz"}}, idx()},
			{"parent", model.InstanceFilter{ParentID: all[3].ID}, idx(7, 6)},
			{"running b", model.InstanceFilter{States: []model.InstanceState{model.InstanceRunning}, Templates: []string{"b"}}, idx(3)},
			{"parent, template b", model.InstanceFilter{ParentID: all[3].ID, Templates: []string{"b"}}, idx(7)},
			{"trigger", model.InstanceFilter{Trigger: "nightly"}, idx(9, 6, 3, 0)},
			{"trigger unknown", model.InstanceFilter{Trigger: "inbox"}, idx()},
			{"created after 4s", model.InstanceFilter{CreatedAfter: at(4 * time.Second)}, idx(9, 8, 7, 6, 5)},
			{"created before 2s", model.InstanceFilter{CreatedBefore: at(2 * time.Second)}, idx(1, 0)},
			{"created between, trigger, pending", model.InstanceFilter{CreatedAfter: at(2 * time.Second), CreatedBefore: at(9 * time.Second),
				Trigger: "nightly", States: []model.InstanceState{model.InstancePending}}, idx(6)},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				p, err := s.InstanceList(t.Context(), tc.f)
				if err != nil {
					t.Fatalf("InstanceList: %v", err)
				}
				if got := instIDs(p.Items); !slices.Equal(got, tc.want) {
					t.Errorf("ids %v, want %v", got, tc.want)
				}
				if p.Total != len(tc.want) {
					t.Errorf("Total %d, want %d", p.Total, len(tc.want))
				}
			})
		}
		// Items are whole instances.
		p, err := s.InstanceList(t.Context(), model.InstanceFilter{States: []model.InstanceState{model.InstanceRunning}})
		if err != nil || len(p.Items) != 2 {
			t.Fatalf("running: %v, %v", p.Items, err)
		}
		sameInstance(t, "listed", p.Items[0], getInst(t, s, all[4].ID))
	})

	t.Run("Paging", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		const n = 101 // one more than the default page
		for i := range n {
			tpl := "a"
			if i%3 == 0 {
				tpl = "b"
			}
			createInst(t, s, model.InstanceSpec{Template: tpl, Version: 1, Name: fmt.Sprintf("i%03d", i)}, T0)
		}
		p, err := s.InstanceList(t.Context(), model.InstanceFilter{})
		if err != nil {
			t.Fatalf("InstanceList: %v", err)
		}
		if len(p.Items) != 100 || p.Total != n {
			t.Fatalf("default page: %d items, Total %d; want 100 and %d", len(p.Items), p.Total, n)
		}
		f := model.InstanceFilter{Templates: []string{"b"}, Limit: 4}
		var seen []int64
		for page := 0; ; page++ {
			if page > 20 {
				t.Fatal("paging does not end")
			}
			p, err := s.InstanceList(t.Context(), f)
			if err != nil {
				t.Fatalf("InstanceList: %v", err)
			}
			if p.Total != 34 {
				t.Errorf("page %d: Total %d, want 34 (every match, not what is left)", page, p.Total)
			}
			if len(p.Items) > f.Limit {
				t.Fatalf("page %d: %d items, limit %d", page, len(p.Items), f.Limit)
			}
			if len(p.Items) == 0 {
				break
			}
			seen = append(seen, instIDs(p.Items)...)
			f.After = p.Items[len(p.Items)-1].ID
		}
		if len(seen) != 34 {
			t.Errorf("paging visited %d instances, want 34", len(seen))
		}
		if !slices.IsSortedFunc(seen, func(a, b int64) int { return int(b - a) }) || len(slices.Compact(slices.Clone(seen))) != len(seen) {
			t.Errorf("pages not strictly newest first: %v", seen)
		}
	})
}

// testInstanceCancel covers cancel requests in every state.
func testInstanceCancel(t *testing.T, open WorkflowOpener) {
	t.Run("Pending", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		inst := createInst(t, s, model.InstanceSpec{Template: "w", Version: 1, Name: "p"}, T0)
		now := at(time.Minute)
		got, err := s.InstanceCancel(t.Context(), inst.ID, now)
		if err != nil {
			t.Fatalf("InstanceCancel: %v", err)
		}
		want := inst
		want.CancelAsked, want.WakeSeq, want.WakeAt, want.UpdatedAt = true, 1, tp(now), now
		sameInstance(t, "canceled", got, want)
		sameInstance(t, "InstanceGet", getInst(t, s, inst.ID), want)
	})

	t.Run("RunningIsWoken", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		inst := parkInst(t, s, model.InstanceSpec{Template: "w", Version: 1, Name: "r"}, "w1", T0)
		got, err := s.InstanceCancel(t.Context(), inst.ID, at(time.Minute))
		if err != nil {
			t.Fatalf("InstanceCancel: %v", err)
		}
		wantInstState(t, "cancel asked", got, model.InstanceRunning)
		if !got.CancelAsked || got.Worker != "w1" || got.Epoch != inst.Epoch {
			t.Errorf("after cancel: CancelAsked %v worker %q epoch %d; want true, the lease kept", got.CancelAsked, got.Worker, got.Epoch)
		}
		wantWoken(t, "canceled", got, inst.WakeSeq, at(time.Minute))
		// The holder gets it back on its next claim.
		if held := claimAll(t, s, "w1", at(time.Minute)); !slices.Equal(instIDs(held), []int64{inst.ID}) {
			t.Errorf("claim after cancel: %v, want %d", instIDs(held), inst.ID)
		}
	})

	t.Run("Final", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		for _, tc := range []struct {
			state model.InstanceState
			err   error
		}{
			{model.InstanceCanceled, nil},
			{model.InstanceSucceeded, model.ErrConflict},
			{model.InstanceFailed, model.ErrConflict},
		} {
			inst := endInst(t, s, model.InstanceSpec{Template: string(tc.state), Version: 1, Name: string(tc.state)}, tc.state, T0)
			got, err := s.InstanceCancel(t.Context(), inst.ID, at(time.Minute))
			if tc.err != nil {
				wantErr(t, "cancel of a "+string(tc.state)+" instance", err, tc.err)
			} else if err != nil {
				t.Fatalf("cancel of a canceled instance: %v", err)
			} else {
				sameInstance(t, "cancel of a canceled instance", got, inst)
			}
			sameInstance(t, "after cancel of a "+string(tc.state)+" instance", getInst(t, s, inst.ID), inst)
		}
	})

	t.Run("Missing", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		_, err := s.InstanceCancel(t.Context(), 1<<40, T0)
		wantErr(t, "cancel of a missing instance", err, model.ErrNotFound)
	})
}

// testInstanceSetPriority covers the priority of an instance and of its
// queued jobs.
func testInstanceSetPriority(t *testing.T, open WorkflowOpener) {
	t.Run("InstanceAndQueuedJobs", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		inst := holdInst(t, s, model.InstanceSpec{Template: "w", Version: 1, Name: "i", Priority: 1}, "w1", T0)
		jobs := insert(t, s, T0,
			model.JobSpec{Type: "sp.q", InstanceID: inst.ID, Step: "q1"},
			model.JobSpec{Type: "sp.q", InstanceID: inst.ID, Step: "q2", Priority: 3},
			model.JobSpec{Type: "sp.r", InstanceID: inst.ID, Step: "r"},
			model.JobSpec{Type: "sp.d", InstanceID: inst.ID, Step: "d"},
			model.JobSpec{Type: "sp.q", Step: "other"},
		)
		running := claimOne(t, s, "sp.r", "p1", T0)
		done := claimOne(t, s, "sp.d", "p1", T0)
		done = complete(t, s, model.Completion{ID: done.ID, Epoch: done.Epoch}, T0)

		now := at(time.Minute)
		got, err := s.InstanceSetPriority(t.Context(), inst.ID, 9, now)
		if err != nil {
			t.Fatalf("InstanceSetPriority: %v", err)
		}
		want := getInst(t, s, inst.ID)
		if got.Priority != 9 || want.Priority != 9 {
			t.Errorf("priority returned %d, stored %d; want 9", got.Priority, want.Priority)
		}
		sameTime(t, "UpdatedAt", got.UpdatedAt, now)
		sameInstance(t, "returned", got, want)
		for _, j := range jobs[:2] {
			if g := get(t, s, j.ID); g.Priority != 9 {
				t.Errorf("queued job %d: priority %d, want 9", j.ID, g.Priority)
			}
		}
		sameJob(t, "running job", get(t, s, running.ID), running)
		sameJob(t, "finished job", get(t, s, done.ID), done)
		sameJob(t, "job of no instance", get(t, s, jobs[4].ID), jobs[4])
	})

	t.Run("Final", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		inst := endInst(t, s, model.InstanceSpec{Template: "w", Version: 1, Name: "f"}, model.InstanceSucceeded, T0)
		_, err := s.InstanceSetPriority(t.Context(), inst.ID, 9, at(time.Minute))
		wantErr(t, "priority of a final instance", err, model.ErrConflict)
		sameInstance(t, "unchanged", getInst(t, s, inst.ID), inst)
		_, err = s.InstanceSetPriority(t.Context(), 1<<40, 9, at(time.Minute))
		wantErr(t, "priority of a missing instance", err, model.ErrNotFound)
	})
}

// testInstancePurge covers the deletion of old final instances with their
// steps and jobs.
func testInstancePurge(t *testing.T, open WorkflowOpener) {
	t.Parallel()
	s := open(t)
	type made struct {
		inst model.Instance
		job  model.Job
	}
	// Each instance gets a step and a job, then ends (or not) at its time.
	make1 := func(name string, state model.InstanceState, end time.Duration) made {
		inst := holdInst(t, s, model.InstanceSpec{Template: "w", Version: 1, Name: name}, "w1", T0)
		a := adv(inst, model.InstanceRunning)
		a.Steps = []model.Step{{Path: "j", ID: "j", Kind: "job", State: model.StepRunning, StartedAt: T0}}
		a.Jobs = []model.JobSpec{{Type: "pg", InstanceID: inst.ID, Step: "j", Key: name + "/j"}}
		inst = advance(t, s, a, T0)
		job := stepAt(t, s, inst.ID, "j").JobID
		if state.Final() {
			a = adv(inst, state)
			inst = advance(t, s, a, at(end))
		}
		return made{inst, get(t, s, job)}
	}
	old1 := make1("old1", model.InstanceSucceeded, time.Minute)
	old2 := make1("old2", model.InstanceFailed, 2*time.Minute)
	edge := make1("edge", model.InstanceCanceled, 3*time.Minute)
	young := make1("young", model.InstanceSucceeded, time.Hour)
	running := make1("running", model.InstanceRunning, 0)
	loose := insert(t, s, T0, model.JobSpec{Type: "pg"})[0]

	n, err := s.InstancePurge(t.Context(), at(3*time.Minute))
	if err != nil {
		t.Fatalf("InstancePurge: %v", err)
	}
	if n != 2 {
		t.Errorf("purged %d instances, want 2 (finished strictly before)", n)
	}
	for _, m := range []made{old1, old2} {
		_, err := s.InstanceGet(t.Context(), m.inst.ID)
		wantErr(t, "purged instance "+m.inst.Name, err, model.ErrNotFound)
		_, err = s.InstanceSteps(t.Context(), m.inst.ID)
		wantErr(t, "steps of purged instance "+m.inst.Name, err, model.ErrNotFound)
		_, err = s.JobGet(t.Context(), m.job.ID)
		wantErr(t, "job of purged instance "+m.inst.Name, err, model.ErrNotFound)
	}
	for _, m := range []made{edge, young, running} {
		sameInstance(t, "kept "+m.inst.Name, getInst(t, s, m.inst.ID), m.inst)
		if len(instSteps(t, s, m.inst.ID)) != 1 {
			t.Errorf("steps of kept instance %s lost", m.inst.Name)
		}
		get(t, s, m.job.ID)
	}
	get(t, s, loose.ID) // InstancePurge leaves jobs outside workflows to JobPurge
	if n, err := s.InstancePurge(t.Context(), at(3*time.Minute)); err != nil || n != 0 {
		t.Errorf("second purge: %d, %v; want 0", n, err)
	}
}
