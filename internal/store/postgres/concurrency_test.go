package postgres

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dpe-engine/dpe/internal/model"
	"github.com/dpe-engine/dpe/internal/store"
)

// These tests run several *Store (several pools, as several servers would)
// on one schema: what the conformance suite, with one store, cannot show.

func TestKeyedInsertAcrossStores(t *testing.T) {
	t.Parallel()
	db := newTestDB(t)
	dsn := db.schemaDSN(t)
	const n = 5
	stores := make([]*Store, n)
	for i := range stores {
		stores[i] = openDSN(t, dsn)
	}
	now := time.Now()
	for round := range 10 {
		key := fmt.Sprintf("key-%d", round)
		got := make([]store.Inserted, n)
		var wg sync.WaitGroup
		for i, s := range stores {
			wg.Go(func() {
				ins, err := s.JobInsert(t.Context(), []model.JobSpec{{Type: "k", Key: key}}, now)
				if err != nil {
					t.Errorf("store %d: JobInsert: %v", i, err)
					return
				}
				got[i] = ins[0]
			})
		}
		wg.Wait()
		created := 0
		for i := range got {
			if !got[i].Existing {
				created++
			}
			if got[i].Job.ID != got[0].Job.ID {
				t.Fatalf("%s: store %d got job %d, store 0 got %d", key, i, got[i].Job.ID, got[0].Job.ID)
			}
		}
		if created != 1 {
			t.Fatalf("%s: %d inserts reported a new job, want exactly 1", key, created)
		}
	}
}

// TestMaxRunningAcrossStores claims one limited type from many servers at
// once: the cluster-wide cap must hold, and no job may go out twice.
func TestMaxRunningAcrossStores(t *testing.T) {
	t.Parallel()
	db := newTestDB(t)
	dsn := db.schemaDSN(t)
	stores := []*Store{openDSN(t, dsn), openDSN(t, dsn), openDSN(t, dsn)}
	ctx := t.Context()
	const maxRunning = 7
	if err := stores[0].TypePut(ctx, model.TypeLimit{Type: "lim", MaxRunning: maxRunning}); err != nil {
		t.Fatal(err)
	}
	specs := make([]model.JobSpec, 60)
	for i := range specs {
		specs[i] = model.JobSpec{Type: "lim"}
	}
	now := time.Now()
	if _, err := stores[0].JobInsert(ctx, specs, now); err != nil {
		t.Fatal(err)
	}

	var (
		mu    sync.Mutex
		owner = map[int64]string{}
	)
	claimAll := func() {
		var wg sync.WaitGroup
		for w := range 6 {
			s := stores[w%len(stores)]
			proc := fmt.Sprintf("p%d", w)
			wg.Go(func() {
				for range 5 {
					jobs, err := s.JobClaim(ctx, store.ClaimParams{
						Processor: proc, Slots: map[string]int{"lim": 3}, LeaseTTL: time.Minute, Now: now,
					})
					if err != nil {
						t.Errorf("%s: JobClaim: %v", proc, err)
						return
					}
					mu.Lock()
					for _, j := range jobs {
						if prev, dup := owner[j.ID]; dup {
							t.Errorf("job %d handed to %s and %s", j.ID, prev, proc)
						}
						owner[j.ID] = proc
					}
					mu.Unlock()
				}
			})
		}
		wg.Wait()
	}
	running := func() int {
		c, err := stores[1].JobCounts(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return c[model.JobRunning]
	}

	claimAll()
	if got := running(); got != maxRunning {
		t.Fatalf("%d running after concurrent claims, want the cap %d", got, maxRunning)
	}
	// Finishing three frees three places, and no more.
	done := 0
	for id := range owner {
		if done == 3 {
			break
		}
		j, err := stores[2].JobGet(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := stores[2].JobComplete(ctx, model.Completion{ID: id, Epoch: j.Epoch}, now); err != nil {
			t.Fatal(err)
		}
		done++
	}
	claimAll()
	if got := running(); got != maxRunning {
		t.Fatalf("%d running after completions and more claims, want %d", got, maxRunning)
	}
	if len(owner) != maxRunning+3 {
		t.Fatalf("%d jobs handed out in all, want %d", len(owner), maxRunning+3)
	}
}

// TestClaimUsesIndex checks the plan of the claim with many jobs queued and
// finished: it must walk the partial index, not scan the table.
func TestClaimUsesIndex(t *testing.T) {
	t.Parallel()
	s := newTestDB(t).open(t)
	ctx := t.Context()
	_, err := s.pool.Exec(ctx, `
		INSERT INTO jobs (type, params, state, max_attempts, backoff_ns, backoff_max_ns, run_after, created_at, updated_at, priority)
		SELECT 't' || (g % 20), '{}', CASE WHEN g % 4 = 0 THEN 'queued' ELSE 'succeeded' END,
			3, 1, 1, now(), now(), now(), g % 7
		FROM generate_series(1, 40000) g`)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.pool.Exec(ctx, `ANALYZE jobs`); err != nil {
		t.Fatal(err)
	}
	for name, plan := range map[string]string{
		"claim": explain(t, s, claimSQLFull,
			[]string{"t4", "t8"}, []int32{10, 10}, []int32{0, 0}, time.Now(), `{}`, "p", time.Now(), "key"),
		"claim unlimited": explain(t, s, claimUnlimitedSQL,
			[]string{"t4", "t8"}, []int32{10, 10}, time.Now(), `{}`, "p", time.Now(), "key"),
	} {
		if !strings.Contains(plan, "jobs_claim") || strings.Contains(plan, "Seq Scan on jobs") {
			t.Errorf("%s plan does not walk jobs_claim:\n%s", name, plan)
		}
	}
}

// TestKeyedBatchesInOppositeOrders inserts the same keys from two servers in
// opposite orders, the classic deadlock: both must succeed (the store
// inserts keys in one global order) with one job per key.
func TestKeyedBatchesInOppositeOrders(t *testing.T) {
	t.Parallel()
	db := newTestDB(t)
	dsn := db.schemaDSN(t)
	a, b := openDSN(t, dsn), openDSN(t, dsn)
	now := time.Now()
	for round := range 2 {
		var fwd, rev []model.JobSpec
		for i := range 2000 {
			fwd = append(fwd, model.JobSpec{Type: "o", Key: fmt.Sprintf("r%d-k%d", round, i)})
		}
		for i := len(fwd) - 1; i >= 0; i-- {
			rev = append(rev, fwd[i])
		}
		var (
			wg     sync.WaitGroup
			ga, gb []store.Inserted
			ea, eb error
		)
		wg.Go(func() { ga, ea = a.JobInsert(t.Context(), fwd, now) })
		wg.Go(func() { gb, eb = b.JobInsert(t.Context(), rev, now) })
		wg.Wait()
		if ea != nil || eb != nil {
			t.Fatalf("round %d: JobInsert: %v / %v", round, ea, eb)
		}
		for i := range fwd {
			if x, y := ga[i].Job, gb[len(gb)-1-i].Job; x.ID != y.ID || x.Key != fwd[i].Key {
				t.Fatalf("round %d key %s: jobs %d and %d", round, fwd[i].Key, x.ID, y.ID)
			}
		}
	}
}
