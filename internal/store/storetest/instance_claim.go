package storetest

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/dpe-engine/dpe/internal/model"
	"github.com/dpe-engine/dpe/internal/store"
)

// testInstanceClaim covers what a claim returns and how it leases.
func testInstanceClaim(t *testing.T, open WorkflowOpener) {
	t.Run("ClaimedInstance", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		inst := createInst(t, s, model.InstanceSpec{Template: "w", Version: 1, Name: "i", Priority: 3}, T0)
		now := at(time.Second)
		got := claimAll(t, s, "w1", now)
		if len(got) != 1 {
			t.Fatalf("claimed %d instances, want 1", len(got))
		}
		// Leased with a new epoch; WakeAt stays, so a worker that dies
		// before it advances leaves the instance due.
		want := inst
		want.Worker, want.Epoch, want.LeaseUntil, want.UpdatedAt = "w1", 1, tp(now.Add(leaseTTL)), now
		sameInstance(t, "claimed", got[0], want)
		sameInstance(t, "InstanceGet after claim", getInst(t, s, inst.ID), want)
	})

	t.Run("Exclude", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		// A due instance the worker holds and a free one, both being
		// decided: neither comes back; the third one does.
		held := holdInst(t, s, model.InstanceSpec{Template: "a", Version: 1, Name: "held"}, "w1", T0)
		free := createInst(t, s, model.InstanceSpec{Template: "w", Version: 1, Name: "free"}, T0)
		other := createInst(t, s, model.InstanceSpec{Template: "w", Version: 1, Name: "other"}, T0)
		got := claimInst(t, s, store.InstanceClaimParams{Worker: "w1", Default: 1000, LeaseTTL: leaseTTL,
			Now: at(time.Second), Exclude: []int64{held.ID, free.ID}})
		if !slices.Equal(instIDs(got), []int64{other.ID}) {
			t.Fatalf("claim excluding %d and %d returned %v, want only %d", held.ID, free.ID, instIDs(got), other.ID)
		}
		if got := claimAll(t, s, "w1", at(2*time.Second)); !slices.Equal(instIDs(got), []int64{held.ID, free.ID, other.ID}) {
			t.Fatalf("claim without exclusions returned %v, want all three", instIDs(got))
		}
	})

	t.Run("NothingDue", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		if got := claimAll(t, s, "w1", T0); len(got) != 0 {
			t.Fatalf("claim from an empty store: %v", instIDs(got))
		}
		parkInst(t, s, model.InstanceSpec{Template: "w", Version: 1, Name: "waits"}, "w1", T0)
		endInst(t, s, model.InstanceSpec{Template: "w", Version: 1, Name: "done"}, model.InstanceSucceeded, T0)
		later := holdInst(t, s, model.InstanceSpec{Template: "w", Version: 1, Name: "later"}, "w1", T0)
		a := adv(later, model.InstanceRunning)
		a.WakeAt = tp(at(time.Minute))
		advance(t, s, a, T0)
		// Neither an instance waiting for an event (WakeAt nil), nor a
		// final one, nor one whose WakeAt is ahead, for anyone.
		for _, w := range []string{"w1", "w2"} {
			if got := claimAll(t, s, w, at(time.Minute-time.Millisecond)); len(got) != 0 {
				t.Fatalf("claim by %s: %v, want none due", w, instIDs(got))
			}
		}
		// Due at WakeAt exactly.
		if got := claimAll(t, s, "w1", at(time.Minute)); !slices.Equal(instIDs(got), []int64{later.ID}) {
			t.Fatalf("claim at WakeAt: %v, want %d", instIDs(got), later.ID)
		}
	})

	t.Run("HeldByAnother", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		inst := holdInst(t, s, model.InstanceSpec{Template: "w", Version: 1, Name: "i"}, "w1", T0)
		// The lease holds while now <= LeaseUntil.
		for _, now := range []time.Time{T0, at(leaseTTL)} {
			if got := claimAll(t, s, "w2", now); len(got) != 0 {
				t.Fatalf("claim by w2 at %v of w1's lease: %v", now, instIDs(got))
			}
		}
		now := at(leaseTTL + time.Millisecond)
		got := claimAll(t, s, "w2", now)
		if !slices.Equal(instIDs(got), []int64{inst.ID}) {
			t.Fatalf("claim of the expired lease: %v, want %d", instIDs(got), inst.ID)
		}
		if got[0].Worker != "w2" || got[0].Epoch != 2 {
			t.Errorf("taken over: worker %q epoch %d, want w2 2", got[0].Worker, got[0].Epoch)
		}
		sameTimePtr(t, "LeaseUntil", got[0].LeaseUntil, now.Add(leaseTTL))
		// w1 lost it for good: its claims no longer return it.
		if got := claimAll(t, s, "w1", now); len(got) != 0 {
			t.Errorf("claim by the old holder: %v", instIDs(got))
		}
	})

	t.Run("HolderKeepsEpoch", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		inst := holdInst(t, s, model.InstanceSpec{Template: "w", Version: 1, Name: "i"}, "w1", T0)
		// Held and still due: returned again, with no slot free, same
		// epoch, lease renewed; even after the lease expired, as long as
		// nobody else took it.
		for _, now := range []time.Time{at(time.Second), at(time.Hour)} {
			got := claimInst(t, s, store.InstanceClaimParams{Worker: "w1", LeaseTTL: leaseTTL, Now: now})
			if !slices.Equal(instIDs(got), []int64{inst.ID}) {
				t.Fatalf("claim by the holder at %v: %v, want %d", now, instIDs(got), inst.ID)
			}
			if got[0].Epoch != 1 || got[0].Worker != "w1" {
				t.Errorf("re-claim at %v: worker %q epoch %d, want w1 1", now, got[0].Worker, got[0].Epoch)
			}
			sameTimePtr(t, "LeaseUntil", got[0].LeaseUntil, now.Add(leaseTTL))
		}
	})

	t.Run("ReleasedGetsNewEpoch", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		inst := holdInst(t, s, model.InstanceSpec{Template: "w", Version: 1, Name: "i"}, "w1", T0)
		if err := s.InstanceRelease(t.Context(), "w1", []int64{inst.ID}, T0); err != nil {
			t.Fatalf("InstanceRelease: %v", err)
		}
		got := claimAll(t, s, "w1", at(time.Second))
		if len(got) != 1 || got[0].Epoch != 2 {
			t.Fatalf("claim after release: %+v, want epoch 2", got)
		}
	})

	t.Run("PriorityThenOldest", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		var list []model.Instance
		for i, p := range []int{0, 5, 0, 5, 10, -3} {
			list = append(list, createInst(t, s, model.InstanceSpec{Template: "w", Version: 1, Name: fmt.Sprint(i), Priority: p}, T0))
		}
		want := []int64{list[4].ID, list[1].ID, list[3].ID, list[0].ID, list[2].ID, list[5].ID}
		// Limit takes the best; held ones come back in the same order.
		got := claimInst(t, s, store.InstanceClaimParams{Worker: "w1", Default: 10, Limit: 3, LeaseTTL: leaseTTL, Now: T0})
		if !slices.Equal(instIDs(got), want[:3]) {
			t.Errorf("Limit 3: %v, want %v", instIDs(got), want[:3])
		}
		// Limit 0: no cap.
		got = claimInst(t, s, store.InstanceClaimParams{Worker: "w1", Default: 10, LeaseTTL: leaseTTL, Now: T0})
		if !slices.Equal(instIDs(got), want) {
			t.Errorf("no limit: %v, want %v", instIDs(got), want)
		}
	})

	t.Run("Templates", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		b := holdInst(t, s, model.InstanceSpec{Template: "b", Version: 1, Name: "b1"}, "w1", T0)
		a := createInst(t, s, model.InstanceSpec{Template: "a", Version: 1, Name: "a1"}, T0)
		createInst(t, s, model.InstanceSpec{Template: "c", Version: 1, Name: "c1"}, T0)
		// The filter applies to held instances too.
		got := claimInst(t, s, store.InstanceClaimParams{Worker: "w1", Templates: []string{"a", "x"}, Default: 10, LeaseTTL: leaseTTL, Now: T0})
		if !slices.Equal(instIDs(got), []int64{a.ID}) {
			t.Errorf("templates a, x: %v, want %d", instIDs(got), a.ID)
		}
		got = claimInst(t, s, store.InstanceClaimParams{Worker: "w1", Templates: []string{"b"}, Default: 10, LeaseTTL: leaseTTL, Now: T0})
		if !slices.Equal(instIDs(got), []int64{b.ID}) {
			t.Errorf("template b: %v, want the held %d", instIDs(got), b.ID)
		}
	})

	t.Run("Concurrent", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		const total, workers, batch = 120, 8, 5
		for i := range total {
			createInst(t, s, model.InstanceSpec{Template: fmt.Sprintf("w%d", i%3), Version: 1, Name: fmt.Sprint(i)}, T0)
		}
		var (
			mu    sync.Mutex
			owner = map[int64]string{}
			wg    sync.WaitGroup
		)
		// work claims a batch for worker, records it and parks each
		// instance so that it is no longer due; false when the claim came
		// back empty or failed.
		work := func(worker string) bool {
			got, err := s.InstanceClaim(t.Context(), store.InstanceClaimParams{
				Worker: worker, Default: batch, Limit: batch, LeaseTTL: time.Minute, Now: at(time.Second),
			})
			if err != nil {
				t.Errorf("%s: InstanceClaim: %v", worker, err)
				return false
			}
			mu.Lock()
			for _, inst := range got {
				if prev, dup := owner[inst.ID]; dup {
					t.Errorf("instance %d handed to %s and %s", inst.ID, prev, worker)
				}
				owner[inst.ID] = worker
				if inst.Worker != worker || inst.Epoch != 1 {
					t.Errorf("instance %d claimed by %s: worker %q epoch %d", inst.ID, worker, inst.Worker, inst.Epoch)
				}
			}
			mu.Unlock()
			for _, inst := range got {
				if _, err := s.InstanceAdvance(t.Context(), adv(inst, model.InstanceRunning), at(time.Second)); err != nil {
					t.Errorf("%s: advance %d: %v", worker, inst.ID, err)
					return false
				}
			}
			return len(got) > 0
		}
		for w := range workers {
			worker := fmt.Sprintf("w%d", w)
			wg.Go(func() {
				for range total {
					if !work(worker) {
						return
					}
				}
			})
		}
		wg.Wait()
		// A claim may come back empty while rows are locked by others (SKIP
		// LOCKED); whatever is left must still be claimable.
		for range total {
			if !work("drain") {
				break
			}
		}
		if len(owner) != total {
			t.Fatalf("%d distinct instances handed out, want %d", len(owner), total)
		}
		wantInstTotal(t, s, model.InstanceFilter{States: []model.InstanceState{model.InstanceRunning}}, total)
	})
}

// testInstanceClaimSlots covers the per-template capacity of new claims.
func testInstanceClaimSlots(t *testing.T, open WorkflowOpener) {
	t.Run("PerTemplate", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		for _, tpl := range []string{"a", "b", "c", "d"} {
			for i := range 4 {
				createInst(t, s, model.InstanceSpec{Template: tpl, Version: 1, Name: fmt.Sprintf("%s%d", tpl, i)}, T0)
			}
		}
		perTemplate := func(list []model.Instance) map[string]int {
			out := map[string]int{}
			for _, inst := range list {
				out[inst.Template]++
			}
			return out
		}
		// Slots for a and b; Default for each other template.
		got := claimInst(t, s, store.InstanceClaimParams{
			Worker: "w1", Slots: map[string]int{"a": 2, "b": 0}, Default: 1, LeaseTTL: leaseTTL, Now: T0,
		})
		if per := perTemplate(got); per["a"] != 2 || per["b"] != 0 || per["c"] != 1 || per["d"] != 1 || len(got) != 4 {
			t.Fatalf("claimed per template %v, want a:2 c:1 d:1", per)
		}
		// Held instances do not count against the slots: they come back
		// (still due) next to one new instance of a.
		got = claimInst(t, s, store.InstanceClaimParams{
			Worker: "w1", Slots: map[string]int{"a": 1}, LeaseTTL: leaseTTL, Now: T0,
		})
		if per := perTemplate(got); per["a"] != 3 || per["c"] != 1 || per["d"] != 1 || len(got) != 5 {
			t.Fatalf("second claim per template %v, want a:3 (2 held) c:1 d:1 (held)", per)
		}
	})

	t.Run("NoSlots", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		createInst(t, s, model.InstanceSpec{Template: "a", Version: 1, Name: "a"}, T0)
		got := claimInst(t, s, store.InstanceClaimParams{Worker: "w1", Slots: map[string]int{"a": 0}, LeaseTTL: leaseTTL, Now: T0})
		if len(got) != 0 {
			t.Fatalf("claim with no free slot: %v", instIDs(got))
		}
	})
}

// testInstanceHeartbeat covers lease renewal and lost leases.
func testInstanceHeartbeat(t *testing.T, open WorkflowOpener) {
	t.Run("RenewsAndReportsLost", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		kept := holdInst(t, s, model.InstanceSpec{Template: "k", Version: 1, Name: "kept"}, "w1", T0)
		taken := holdInst(t, s, model.InstanceSpec{Template: "t", Version: 1, Name: "taken"}, "w1", T0)
		other := holdInst(t, s, model.InstanceSpec{Template: "o", Version: 1, Name: "other"}, "w2", T0)
		done := endInst(t, s, model.InstanceSpec{Template: "d", Version: 1, Name: "done"}, model.InstanceSucceeded, T0)
		// w3 takes "taken" after w1's lease expired.
		later := at(leaseTTL + time.Second)
		if got := claimInst(t, s, store.InstanceClaimParams{Worker: "w3", Templates: []string{"t"}, Default: 1, LeaseTTL: leaseTTL, Now: later}); len(got) != 1 {
			t.Fatalf("take-over claim: %v", instIDs(got))
		}

		// kept's lease expired too, but nobody took it: still w1's.
		now := at(time.Minute)
		lost, err := s.InstanceHeartbeat(t.Context(), "w1", []int64{1 << 40, kept.ID, other.ID, taken.ID, done.ID}, time.Minute, now)
		if err != nil {
			t.Fatalf("InstanceHeartbeat: %v", err)
		}
		if want := []int64{1 << 40, other.ID, taken.ID, done.ID}; !slices.Equal(lost, want) {
			t.Errorf("lost %v, want %v (in the order asked)", lost, want)
		}
		k := getInst(t, s, kept.ID)
		sameTimePtr(t, "renewed LeaseUntil", k.LeaseUntil, now.Add(time.Minute))
		if k.Worker != "w1" || k.Epoch != kept.Epoch {
			t.Errorf("renewed: worker %q epoch %d, want w1 %d", k.Worker, k.Epoch, kept.Epoch)
		}
		sameTimePtr(t, "other's lease", getInst(t, s, other.ID).LeaseUntil, T0.Add(leaseTTL))
		sameTimePtr(t, "taken's lease", getInst(t, s, taken.ID).LeaseUntil, later.Add(leaseTTL))
		sameInstance(t, "final instance", getInst(t, s, done.ID), done)
	})

	t.Run("Empty", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		lost, err := s.InstanceHeartbeat(t.Context(), "w1", nil, time.Minute, T0)
		if err != nil || len(lost) != 0 {
			t.Fatalf("InstanceHeartbeat(nil) = %v, %v", lost, err)
		}
	})
}

// testInstanceRelease covers giving leases back.
func testInstanceRelease(t *testing.T, open WorkflowOpener) {
	t.Parallel()
	s := open(t)
	a := holdInst(t, s, model.InstanceSpec{Template: "a", Version: 1, Name: "a"}, "w1", T0)
	b := holdInst(t, s, model.InstanceSpec{Template: "b", Version: 1, Name: "b"}, "w1", T0)
	c := holdInst(t, s, model.InstanceSpec{Template: "c", Version: 1, Name: "c"}, "w2", T0)
	// Only the worker's own leases are dropped; unknown ids are ignored.
	if err := s.InstanceRelease(t.Context(), "w1", []int64{a.ID, c.ID, 1 << 40}, at(time.Second)); err != nil {
		t.Fatalf("InstanceRelease: %v", err)
	}
	ga := getInst(t, s, a.ID)
	if ga.Worker != "" || ga.LeaseUntil != nil || ga.Epoch != a.Epoch {
		t.Errorf("released: worker %q lease %v epoch %d; want free, epoch %d kept", ga.Worker, ga.LeaseUntil, ga.Epoch, a.Epoch)
	}
	if g := getInst(t, s, b.ID); g.Worker != "w1" || g.LeaseUntil == nil {
		t.Errorf("not released: worker %q lease %v", g.Worker, g.LeaseUntil)
	}
	if g := getInst(t, s, c.ID); g.Worker != "w2" || g.LeaseUntil == nil {
		t.Errorf("another's lease: worker %q lease %v", g.Worker, g.LeaseUntil)
	}
	// The released lease no longer fences for w1, and w2 takes it at once.
	_, err := s.InstanceAdvance(t.Context(), adv(a, model.InstanceRunning), at(2*time.Second))
	wantErr(t, "advance after release", err, model.ErrConflict)
	got := claimInst(t, s, store.InstanceClaimParams{Worker: "w2", Templates: []string{"a"}, Default: 1, LeaseTTL: leaseTTL, Now: at(2 * time.Second)})
	if len(got) != 1 || got[0].Epoch != a.Epoch+1 {
		t.Fatalf("claim of the released instance: %+v, want epoch %d", got, a.Epoch+1)
	}
	if err := s.InstanceRelease(t.Context(), "w1", nil, at(3*time.Second)); err != nil {
		t.Fatalf("InstanceRelease(nil): %v", err)
	}
}
