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

// testJobClaim covers what a claim hands out and how it changes a job.
func testJobClaim(t *testing.T, open Opener) {
	t.Run("ClaimedJob", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		j := insert(t, s, T0, model.JobSpec{Type: "c.a", Priority: 3})[0]
		now := at(time.Second)
		got := claim(t, s, store.ClaimParams{
			Processor: "p1", Slots: map[string]int{"c.a": 4}, LeaseTTL: 30 * time.Second, Now: now,
		})
		if len(got) != 1 {
			t.Fatalf("claimed %d jobs, want 1", len(got))
		}
		c := got[0]
		want := j
		want.State = model.JobRunning
		want.Attempt = 1
		want.Epoch = 1
		want.Processor = "p1"
		lease, started := now.Add(30*time.Second), now
		want.LeaseUntil = &lease
		want.StartedAt = &started
		want.UpdatedAt = now
		sameJob(t, "claimed", c, want)
		sameJob(t, "JobGet after claim", get(t, s, j.ID), want)
		if more := claimN(t, s, "c.a", "p2", 4, now); len(more) != 0 {
			t.Errorf("running job claimed again: %v", ids(more))
		}
	})

	t.Run("NothingToClaim", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		if got := claimN(t, s, "c.none", "p1", 5, T0); len(got) != 0 {
			t.Fatalf("claimed %v from an empty store", ids(got))
		}
		if got := claim(t, s, store.ClaimParams{Processor: "p1", LeaseTTL: time.Second, Now: T0}); len(got) != 0 {
			t.Fatalf("claim with no slots: %v", ids(got))
		}
	})

	t.Run("PriorityThenFIFO", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		var specs []model.JobSpec
		for _, p := range []int{0, 5, 0, 5, 10, -3} {
			specs = append(specs, model.JobSpec{Type: "c.p", Priority: p})
		}
		jobs := insert(t, s, T0, specs...)
		want := []int64{jobs[4].ID, jobs[1].ID, jobs[3].ID, jobs[0].ID, jobs[2].ID, jobs[5].ID}
		var got []int64
		for range jobs {
			got = append(got, claimOne(t, s, "c.p", "p1", T0).ID)
		}
		if !slices.Equal(got, want) {
			t.Errorf("claim order %v, want %v", got, want)
		}
	})

	t.Run("BatchTakesTheBest", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		var specs []model.JobSpec
		for _, p := range []int{0, 5, 0, 5, 10} {
			specs = append(specs, model.JobSpec{Type: "c.p", Priority: p})
		}
		jobs := insert(t, s, T0, specs...)
		got := claimN(t, s, "c.p", "p1", 3, T0)
		want := []int64{jobs[1].ID, jobs[3].ID, jobs[4].ID}
		if !slices.Equal(sortedIDs(got), want) {
			t.Errorf("claimed %v, want %v", sortedIDs(got), want)
		}
	})

	t.Run("SlotsPerType", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		for _, typ := range []string{"c.a", "c.b", "c.c"} {
			insertN(t, s, T0, typ, 4)
		}
		got := claim(t, s, store.ClaimParams{
			Processor: "p1", Slots: map[string]int{"c.a": 2, "c.b": 3, "c.c": 0}, LeaseTTL: time.Minute, Now: T0,
		})
		per := map[string]int{}
		for _, j := range got {
			per[j.Type]++
		}
		if per["c.a"] != 2 || per["c.b"] != 3 || per["c.c"] != 0 || len(got) != 5 {
			t.Errorf("claimed per type %v, want c.a:2 c.b:3", per)
		}
	})

	t.Run("RunAfter", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		later := insert(t, s, T0, model.JobSpec{Type: "c.r", RunAfter: at(time.Minute)})[0]
		now := insert(t, s, T0, model.JobSpec{Type: "c.r"})[0]
		// A job without RunAfter is claimable at the time it was inserted.
		if got := claimN(t, s, "c.r", "p1", 5, T0); !slices.Equal(ids(got), []int64{now.ID}) {
			t.Fatalf("claim at T0: %v, want only %d", ids(got), now.ID)
		}
		if got := claimN(t, s, "c.r", "p1", 5, at(59*time.Second)); len(got) != 0 {
			t.Fatalf("job with RunAfter in the future claimed: %v", ids(got))
		}
		if got := claimN(t, s, "c.r", "p1", 5, at(time.Minute)); !slices.Equal(ids(got), []int64{later.ID}) {
			t.Fatalf("claim at RunAfter: %v, want %d", ids(got), later.ID)
		}
	})

	t.Run("Selector", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		type labels = map[string]string
		cases := []struct {
			selector, labels labels
			want             bool
		}{
			{nil, nil, true},
			{nil, labels{"site": "berlin"}, true},
			{labels{"site": "berlin"}, nil, false},
			{labels{"site": "berlin"}, labels{"site": "paris"}, false},
			{labels{"site": "berlin"}, labels{"site": "berlin"}, true},
			{labels{"site": "berlin"}, labels{"site": "berlin", "gpu": "yes"}, true},
			{labels{"site": "berlin", "gpu": "yes"}, labels{"site": "berlin"}, false},
			{labels{"site": "berlin", "gpu": "yes"}, labels{"gpu": "yes", "site": "berlin", "x": "1"}, true},
			{labels{"site": "Berlin"}, labels{"site": "berlin"}, false}, // values are case-sensitive
			{labels{"gpu": "yes"}, labels{"GPU": "yes"}, false},         // keys too
			{labels{"a.b-c_d": "v 1"}, labels{"a.b-c_d": "v 1"}, true},
			{labels{"site": "berlin"}, labels{"gpu": "berlin"}, false},
		}
		for i, tc := range cases {
			typ := fmt.Sprintf("c.sel%d", i)
			insert(t, s, T0, model.JobSpec{Type: typ, Selector: tc.selector})
			got := claim(t, s, store.ClaimParams{
				Processor: "p1", Slots: map[string]int{typ: 1}, Labels: tc.labels, LeaseTTL: time.Minute, Now: T0,
			})
			if (len(got) == 1) != tc.want {
				t.Errorf("selector %v, labels %v: claimed %d, want %v", tc.selector, tc.labels, len(got), tc.want)
			}
		}
	})

	t.Run("SelectorDoesNotBlockQueue", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		insert(t, s, T0, model.JobSpec{Type: "c.s", Priority: 10, Selector: map[string]string{"site": "berlin"}})
		free := insert(t, s, T0, model.JobSpec{Type: "c.s"})[0]
		got := claim(t, s, store.ClaimParams{
			Processor: "paris", Slots: map[string]int{"c.s": 5}, Labels: map[string]string{"site": "paris"},
			LeaseTTL: time.Minute, Now: T0,
		})
		if !slices.Equal(ids(got), []int64{free.ID}) {
			t.Errorf("claimed %v, want the job without selector %d", ids(got), free.ID)
		}
	})
}

// testJobClaimLimits covers the cluster-wide limits of TypePut.
func testJobClaimLimits(t *testing.T, open Opener) {
	t.Run("MaxRunning", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		if err := s.TypePut(t.Context(), model.TypeLimit{Type: "l.cap", MaxRunning: 3}); err != nil {
			t.Fatalf("TypePut: %v", err)
		}
		insertN(t, s, T0, "l.cap", 6)
		steps := []struct {
			proc  string
			slots int
			want  int
		}{{"p1", 2, 2}, {"p2", 5, 1}, {"p1", 5, 0}, {"p3", 1, 0}}
		var held []model.Job
		for i, st := range steps {
			got := claimN(t, s, "l.cap", st.proc, st.slots, T0)
			if len(got) != st.want {
				t.Fatalf("claim %d by %s: %d jobs, want %d (cluster-wide MaxRunning 3)", i, st.proc, len(got), st.want)
			}
			held = append(held, got...)
		}
		complete(t, s, model.Completion{ID: held[0].ID, Epoch: held[0].Epoch}, at(time.Second))
		if got := claimN(t, s, "l.cap", "p4", 5, at(time.Second)); len(got) != 1 {
			t.Fatalf("after one finished: claimed %d, want 1", len(got))
		}
		// Other types are not limited.
		insertN(t, s, T0, "l.free", 5)
		if got := claimN(t, s, "l.free", "p1", 5, at(time.Second)); len(got) != 5 {
			t.Fatalf("unlimited type: claimed %d, want 5", len(got))
		}
	})

	t.Run("Rate", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		if err := s.TypePut(t.Context(), model.TypeLimit{Type: "l.rate", Rate: 2, Burst: 2}); err != nil {
			t.Fatalf("TypePut: %v", err)
		}
		insertN(t, s, T0, "l.rate", 20)
		steps := []struct {
			now  time.Duration
			want int
		}{
			{0, 2},                      // a full bucket: the burst
			{0, 0},                      // empty
			{500 * time.Millisecond, 1}, // 2/s refills one token in 500ms
			{600 * time.Millisecond, 0}, // 0.2 token
			{10 * time.Second, 2},       // refilled, capped at the burst
			{10 * time.Second, 0},       // empty again
			{11 * time.Second, 2},       // two tokens a second
		}
		for i, st := range steps {
			got := claimN(t, s, "l.rate", fmt.Sprintf("p%d", i%2), 10, at(st.now))
			if len(got) != st.want {
				t.Fatalf("step %d at +%v: claimed %d, want %d", i, st.now, len(got), st.want)
			}
		}
	})

	t.Run("RateKeptBySet", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		// Setting a limit again grants no fresh burst: an operator
		// re-applying the same limit must not let a burst through.
		limit := model.TypeLimit{Type: "l.again", Rate: 1, Burst: 2}
		if err := s.TypePut(t.Context(), limit); err != nil {
			t.Fatalf("TypePut: %v", err)
		}
		insertN(t, s, T0, "l.again", 10)
		if got := claimN(t, s, "l.again", "p1", 10, T0); len(got) != 2 {
			t.Fatalf("a full bucket: claimed %d, want the burst 2", len(got))
		}
		if err := s.TypePut(t.Context(), limit); err != nil {
			t.Fatalf("TypePut again: %v", err)
		}
		if got := claimN(t, s, "l.again", "p1", 10, T0); len(got) != 0 {
			t.Fatalf("after setting the same limit again: claimed %d, want 0 (the bucket stays empty)", len(got))
		}
		if got := claimN(t, s, "l.again", "p1", 10, at(time.Second)); len(got) != 1 {
			t.Fatalf("a second later: claimed %d, want 1", len(got))
		}
	})

	t.Run("RateDefaultBurst", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		// Burst 0 means max(1, Rate): here 1.
		if err := s.TypePut(t.Context(), model.TypeLimit{Type: "l.slow", Rate: 0.5}); err != nil {
			t.Fatalf("TypePut: %v", err)
		}
		insertN(t, s, T0, "l.slow", 5)
		for i, st := range []struct {
			now  time.Duration
			want int
		}{{0, 1}, {time.Second, 0}, {2 * time.Second, 1}, {time.Minute, 1}} {
			if got := claimN(t, s, "l.slow", "p1", 5, at(st.now)); len(got) != st.want {
				t.Fatalf("step %d at +%v: claimed %d, want %d", i, st.now, len(got), st.want)
			}
		}
	})

	t.Run("RateSpentOnlyByClaims", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		if err := s.TypePut(t.Context(), model.TypeLimit{Type: "l.r1", Rate: 1, Burst: 1}); err != nil {
			t.Fatalf("TypePut: %v", err)
		}
		if got := claimN(t, s, "l.r1", "p1", 5, T0); len(got) != 0 {
			t.Fatalf("claimed %d from an empty queue", len(got))
		}
		insertN(t, s, T0, "l.r1", 2)
		if got := claimN(t, s, "l.r1", "p1", 5, T0); len(got) != 1 {
			t.Fatalf("an empty claim spent the token: claimed %d, want 1", len(got))
		}
	})
}

// testJobClaimConcurrent checks that concurrent claims never hand out one
// job twice.
func testJobClaimConcurrent(t *testing.T, open Opener) {
	t.Parallel()
	s := open(t)
	const total, workers, slots = 500, 8, 5
	for range total / 100 {
		insertN(t, s, T0, "cc", 100)
	}
	var (
		mu    sync.Mutex
		owner = map[int64]string{}
		wg    sync.WaitGroup
	)
	take := func(proc string, jobs []model.Job) {
		mu.Lock()
		defer mu.Unlock()
		for _, j := range jobs {
			if prev, dup := owner[j.ID]; dup {
				t.Errorf("job %d handed to %s and %s", j.ID, prev, proc)
			}
			owner[j.ID] = proc
			if j.Processor != proc || j.State != model.JobRunning || j.Epoch != 1 {
				t.Errorf("job %d claimed by %s: processor %q state %q epoch %d", j.ID, proc, j.Processor, j.State, j.Epoch)
			}
		}
	}
	for w := range workers {
		proc := fmt.Sprintf("p%d", w)
		wg.Go(func() {
			for range total {
				jobs, err := s.JobClaim(t.Context(), store.ClaimParams{
					Processor: proc, Slots: map[string]int{"cc": slots}, LeaseTTL: time.Minute, Now: at(time.Second),
				})
				if err != nil {
					t.Errorf("%s: JobClaim: %v", proc, err)
					return
				}
				if len(jobs) > slots {
					t.Errorf("%s: %d jobs for %d slots", proc, len(jobs), slots)
				}
				if len(jobs) == 0 {
					return
				}
				take(proc, jobs)
			}
		})
	}
	wg.Wait()
	// A claim may come back empty while rows are locked by others (SKIP
	// LOCKED); whatever is left must still be claimable.
	for range total {
		jobs := claimN(t, s, "cc", "drain", slots, at(time.Second))
		if len(jobs) == 0 {
			break
		}
		take("drain", jobs)
	}
	if len(owner) != total {
		t.Fatalf("%d distinct jobs handed out, want %d", len(owner), total)
	}
	counts, err := s.JobCounts(t.Context())
	if err != nil {
		t.Fatalf("JobCounts: %v", err)
	}
	if counts[model.JobRunning] != total || counts[model.JobQueued] != 0 {
		t.Fatalf("counts %v, want %d running", counts, total)
	}
}
