package postgres

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/dpe-engine/dpe/internal/eventually"
	"github.com/dpe-engine/dpe/internal/model"
	"github.com/dpe-engine/dpe/internal/store"
)

// Engine-specific tests of JobCompleteMany: round trips per batch, lock
// order across servers, notifications. The outcomes are the conformance
// suite's (storetest, JobCompleteMany).

// claimAll inserts specs and claims them all for processor "p".
func claimAll(t *testing.T, s *Store, now time.Time, specs ...model.JobSpec) []model.Job {
	t.Helper()
	if _, err := s.JobInsert(t.Context(), specs, now); err != nil {
		t.Fatal(err)
	}
	slots := map[string]int{}
	for _, sp := range specs {
		slots[sp.Type]++
	}
	jobs, err := s.JobClaim(t.Context(), store.ClaimParams{Processor: "p", Slots: slots, LeaseTTL: time.Hour, Now: now})
	if err != nil || len(jobs) != len(specs) {
		t.Fatalf("claim: %d of %d jobs, %v", len(jobs), len(specs), err)
	}
	return jobs
}

// completeAll runs JobCompleteMany and fails unless every completion took
// effect (or repeated one that did).
func completeAll(ctx context.Context, s *Store, cs []model.Completion, now time.Time) error {
	res, err := s.JobCompleteMany(ctx, cs, now)
	if err != nil {
		return err
	}
	for i, r := range res {
		if r.Err != nil {
			return fmt.Errorf("completion %d (job %d): %w", i, cs[i].ID, r.Err)
		}
	}
	return nil
}

// TestCompleteManyRoundTrips completes 1,000 jobs in one call: begin with
// the lock (one batch), one update, commit, whatever the size of the
// batch; a batch that changes nothing skips the update.
func TestCompleteManyRoundTrips(t *testing.T) {
	t.Parallel()
	var rt roundTrips
	s := openTraced(t, &rt)
	now := time.Now()
	const n = 1000
	specs := make([]model.JobSpec, n)
	for i := range specs {
		specs[i] = model.JobSpec{Type: fmt.Sprint("rt", i%3), MaxAttempts: 2}
	}
	jobs := claimAll(t, s, now, specs...)
	cs := make([]model.Completion, n)
	for i, j := range jobs {
		cs[i] = model.Completion{ID: j.ID, Epoch: j.Epoch}
		if i%2 == 1 {
			cs[i].Error = "flaky" // queued again: notifies its type
		}
	}
	before := rt.n.Load()
	if err := completeAll(t.Context(), s, cs, now); err != nil {
		t.Fatal(err)
	}
	if got := rt.n.Load() - before; got != 3 {
		t.Errorf("%d round trips for a batch of %d, want 3", got, n)
	}
	// The same reports again: exact repeats, nothing to write.
	before = rt.n.Load()
	if err := completeAll(t.Context(), s, cs, now.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	if got := rt.n.Load() - before; got != 2 {
		t.Errorf("%d round trips for a batch of repeats, want 2", got)
	}
}

// TestCompleteManyAcrossStores has three servers complete the jobs of the
// same workflow instances at once, many times over: two batches hold other
// jobs of the same instances in opposite orders, the third repeats the
// first's reports in reverse. Jobs and then instances are locked in id
// order, so none of them deadlocks (a deadlock costs a second of the
// server's deadlock_timeout and a retry), and every end is one event of
// its instance.
func TestCompleteManyAcrossStores(t *testing.T) {
	t.Parallel()
	ss := stores(t, 3)
	now := time.Now()
	const instances, rounds = 12, 10
	var insts []model.Instance
	for i := range instances {
		name := fmt.Sprint("i", i)
		insts = append(insts, holdNew(t, ss[0], model.InstanceSpec{Template: name, Version: 1, Name: name}, "w1", now))
	}
	for round := range rounds {
		var specs []model.JobSpec
		for _, in := range insts {
			for k := range 2 {
				specs = append(specs, model.JobSpec{Type: "x", InstanceID: in.ID, Step: fmt.Sprint(round, "/", k)})
			}
		}
		jobs := claimAll(t, ss[0], now, specs...)
		var fwd, rev []model.Completion
		for _, j := range jobs {
			c := model.Completion{ID: j.ID, Epoch: j.Epoch}
			if j.Step[len(j.Step)-1] == '0' {
				fwd = append(fwd, c)
			} else {
				rev = append([]model.Completion{c}, rev...)
			}
		}
		again := slices.Clone(fwd)
		slices.Reverse(again)
		var wg sync.WaitGroup
		for i, cs := range [][]model.Completion{fwd, rev, again} {
			wg.Go(func() {
				if err := completeAll(t.Context(), ss[i], cs, now); err != nil {
					t.Errorf("round %d, store %d: %v", round, i, err)
				}
			})
		}
		wg.Wait()
	}
	for i, s := range ss {
		if n := s.retries.Load(); n != 0 {
			t.Errorf("store %d ran %d transactions again after a deadlock", i, n)
		}
	}
	for _, in := range insts {
		got, err := ss[1].InstanceGet(t.Context(), in.ID)
		if err != nil {
			t.Fatal(err)
		}
		if want := in.WakeSeq + 2*rounds; got.WakeSeq != want {
			t.Errorf("instance %d: WakeSeq %d, want %d (one per job that ended)", in.ID, got.WakeSeq, want)
		}
	}
}

// TestCompleteManyNotifies checks what a batch tells the other servers,
// once it commits: the types that got a job back for a retry, and
// "@instances" when an instance was woken; a type whose jobs all ended is
// not announced (nothing became claimable).
func TestCompleteManyNotifies(t *testing.T) {
	t.Parallel()
	ss := stores(t, 2)
	a, b := ss[0], ss[1]
	now := time.Now()
	in := holdNew(t, a, model.InstanceSpec{Template: "w", Version: 1, Name: "n"}, "w1", now)
	jobs := claimAll(t, a, now,
		model.JobSpec{Type: "n.a", MaxAttempts: 2},
		model.JobSpec{Type: "n.a", MaxAttempts: 2},
		model.JobSpec{Type: "n.b", MaxAttempts: 2},
		model.JobSpec{Type: "n.done"},
		model.JobSpec{Type: "n.done", InstanceID: in.ID, Step: "s"},
	)
	// Listening starts after the set-up, whose notifications it misses.
	w := watch(t, b)
	w.until(t, a, "ready")
	var cs []model.Completion
	for _, j := range jobs {
		c := model.Completion{ID: j.ID, Epoch: j.Epoch}
		if j.Type != "n.done" {
			c.Error = "flaky"
		}
		cs = append(cs, c)
	}
	if err := completeAll(t.Context(), a, cs, now); err != nil {
		t.Fatal(err)
	}
	eventually.Value(t, 15*time.Second, func() ([3]int, error) {
		return [3]int{w.count("n.a"), w.count("n.b"), w.count(instancesPayload)}, nil
	}, func(c [3]int) bool { return c[0] > 0 && c[1] > 0 && c[2] > 0 }, "notifications n.a, n.b and @instances (counts in that order)")
	// One transaction's notifications arrive together, folded per payload.
	if n := w.count("n.a"); n != 1 {
		t.Errorf("n.a heard %d times, want 1", n)
	}
	if n := w.count("n.done"); n != 0 {
		t.Errorf("n.done heard %d times, want 0", n)
	}
}

// TestCompleteManyRacesHeartbeat has a processor heartbeat its jobs (in
// reverse id order) while batches of the same jobs complete: both lock
// many jobs, and must do so in one order, or the server breaks a deadlock
// after a second (and a heartbeat is not retried).
func TestCompleteManyRacesHeartbeat(t *testing.T) {
	t.Parallel()
	s := newTestDB(t).open(t)
	now := time.Now()
	const n, batch = 400, 50
	specs := make([]model.JobSpec, n)
	for i := range specs {
		specs[i] = model.JobSpec{Type: "hb"}
	}
	jobs := claimAll(t, s, now, specs...)
	var beats []model.Heartbeat
	for i := len(jobs) - 1; i >= 0; i-- {
		beats = append(beats, model.Heartbeat{ID: jobs[i].ID, Epoch: jobs[i].Epoch})
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-done:
				return
			default:
			}
			if _, err := s.JobHeartbeat(t.Context(), beats, time.Minute, now); err != nil {
				t.Errorf("heartbeat: %v", err)
				return
			}
		}
	})
	for i := 0; i < n; i += batch {
		var cs []model.Completion
		for _, j := range jobs[i : i+batch] {
			cs = append(cs, model.Completion{ID: j.ID, Epoch: j.Epoch})
		}
		if err := completeAll(t.Context(), s, cs, now); err != nil {
			t.Errorf("batch %d: %v", i/batch, err)
		}
	}
	close(done)
	wg.Wait()
	if n := s.retries.Load(); n != 0 {
		t.Errorf("%d transactions were run again after a deadlock", n)
	}
}
