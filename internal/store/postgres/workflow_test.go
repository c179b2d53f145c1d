package postgres

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dpe-engine/dpe/internal/model"
	"github.com/dpe-engine/dpe/internal/store"
)

// Engine-specific workflow tests: several *Store on one schema (several
// servers), query plans, notifications and lock order; the semantics are
// the conformance suite's (storetest.RunWorkflow).

// stores opens n stores on one fresh schema.
func stores(t *testing.T, n int) []*Store {
	t.Helper()
	dsn := newTestDB(t).schemaDSN(t)
	out := make([]*Store, n)
	for i := range out {
		out[i] = openDSN(t, dsn)
	}
	return out
}

// holdNew creates an instance and leases it to worker.
func holdNew(t *testing.T, s *Store, spec model.InstanceSpec, worker string, now time.Time) model.Instance {
	t.Helper()
	in, existing, err := s.InstanceCreate(t.Context(), spec, now)
	if err != nil || existing {
		t.Fatalf("InstanceCreate(%s): existing %v, %v", spec.Name, existing, err)
	}
	got, err := s.InstanceClaim(t.Context(), store.InstanceClaimParams{
		Worker: worker, Templates: []string{spec.Template}, Default: 1, LeaseTTL: time.Minute, Now: now,
	})
	if err != nil || len(got) != 1 || got[0].ID != in.ID {
		t.Fatalf("claim of %s: %v, %v", spec.Name, got, err)
	}
	return got[0]
}

// TestTemplatePutAcrossStores imports one name from several servers at
// once: every distinct content gets its own version, and one content
// imported everywhere at once is stored once.
func TestTemplatePutAcrossStores(t *testing.T) {
	t.Parallel()
	ss := stores(t, 5)
	now := time.Now()
	put := func(body func(i int) string) ([]model.Template, []bool) {
		got, created := make([]model.Template, len(ss)), make([]bool, len(ss))
		var wg sync.WaitGroup
		for i, s := range ss {
			wg.Go(func() {
				var err error
				got[i], created[i], err = s.TemplatePut(t.Context(), model.Template{
					Name: "w", Source: body(i), Canonical: []byte(`{"b":"` + body(i) + `"}`),
				}, now)
				if err != nil {
					t.Errorf("store %d: TemplatePut: %v", i, err)
				}
			})
		}
		wg.Wait()
		return got, created
	}

	got, created := put(func(i int) string { return fmt.Sprint("content-", i) })
	versions := map[int]bool{}
	for i := range got {
		if !created[i] {
			t.Errorf("store %d: distinct content not created", i)
		}
		versions[got[i].Version] = true
	}
	for v := 1; v <= len(ss); v++ {
		if !versions[v] {
			t.Fatalf("versions %v: want 1..%d, one each", versions, len(ss))
		}
	}

	got, created = put(func(int) string { return "same" })
	n := 0
	for i := range got {
		if created[i] {
			n++
		}
		if got[i].Version != len(ss)+1 {
			t.Errorf("store %d: version %d, want %d", i, got[i].Version, len(ss)+1)
		}
	}
	if n != 1 {
		t.Errorf("%d stores created the same content, want 1", n)
	}
}

// TestSkipStartAcrossStores starts instances of one concurrency key with
// policy skip from several servers at once: exactly one starts.
func TestSkipStartAcrossStores(t *testing.T) {
	t.Parallel()
	ss := stores(t, 5)
	now := time.Now()
	for round := range 10 {
		key := fmt.Sprint("key-", round)
		var (
			wg      sync.WaitGroup
			mu      sync.Mutex
			started int
		)
		for i, s := range ss {
			wg.Go(func() {
				_, _, err := s.InstanceCreate(t.Context(), model.InstanceSpec{
					Template: "w", Version: 1, Name: fmt.Sprintf("%s/%d", key, i),
					ConcurrencyKey: key, ConcurrencyPolicy: model.ConcurrencySkip,
				}, now)
				switch {
				case err == nil:
					mu.Lock()
					started++
					mu.Unlock()
				case !errors.Is(err, model.ErrConflict):
					t.Errorf("store %d: InstanceCreate: %v", i, err)
				}
			})
		}
		wg.Wait()
		if started != 1 {
			t.Fatalf("%s: %d instances started, want 1", key, started)
		}
	}
}

// TestInstanceClaimAcrossStores claims from several servers at once: no
// instance goes to two workers, and all are handed out.
func TestInstanceClaimAcrossStores(t *testing.T) {
	t.Parallel()
	ss := stores(t, 4)
	now := time.Now()
	const total = 80
	for i := range total {
		if _, _, err := ss[0].InstanceCreate(t.Context(), model.InstanceSpec{Template: fmt.Sprint("t", i%4), Version: 1, Name: fmt.Sprint(i)}, now); err != nil {
			t.Fatal(err)
		}
	}
	var (
		mu    sync.Mutex
		owner = map[int64]string{}
		wg    sync.WaitGroup
	)
	for w := range 8 {
		s, worker := ss[w%len(ss)], fmt.Sprint("w", w)
		wg.Go(func() {
			for {
				got, err := s.InstanceClaim(t.Context(), store.InstanceClaimParams{
					Worker: worker, Default: 3, Limit: 3, LeaseTTL: time.Minute, Now: now,
				})
				if err != nil {
					t.Errorf("%s: %v", worker, err)
					return
				}
				if len(got) == 0 {
					return
				}
				for _, in := range got {
					mu.Lock()
					if prev, dup := owner[in.ID]; dup {
						t.Errorf("instance %d handed to %s and %s", in.ID, prev, worker)
					}
					owner[in.ID] = worker
					mu.Unlock()
					// Parked: no longer due, so the loop ends.
					if _, err := s.InstanceAdvance(t.Context(), model.Advance{
						InstanceID: in.ID, Worker: worker, Epoch: in.Epoch, WakeSeq: in.WakeSeq, State: model.InstanceRunning,
					}, now); err != nil {
						t.Errorf("%s: advance: %v", worker, err)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	if len(owner) != total {
		t.Fatalf("%d instances handed out, want %d", len(owner), total)
	}
}

// TestInstanceClaimUsesIndex checks the plan of the claim with many
// instances waiting for events, many finished and a few due: it must read
// the partial index of due instances, not scan the table.
func TestInstanceClaimUsesIndex(t *testing.T) {
	t.Parallel()
	s := newTestDB(t).open(t)
	ctx := t.Context()
	// Running and waiting (wake_at NULL), finished, and every 1000th due.
	_, err := s.pool.Exec(ctx, `
		INSERT INTO instances (name, template, version, args, state, wake_at, concurrency_key,
			concurrency_policy, worker, epoch, lease_until, created_at, updated_at)
		SELECT 'i' || g, 't' || (g % 10), 1, '{}',
			CASE WHEN g % 3 = 0 THEN 'succeeded' ELSE 'running' END,
			CASE WHEN g % 1000 = 1 THEN now() END,
			CASE WHEN g % 2 = 0 THEN 'k' || (g % 50) ELSE '' END,
			CASE WHEN g % 2 = 0 THEN 'queue' ELSE '' END,
			'w' || (g % 7), 1, now() + interval '1 minute', now(), now()
		FROM generate_series(1, 60000) g`)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.pool.Exec(ctx, `ANALYZE instances`); err != nil {
		t.Fatal(err)
	}
	limit := 10
	rows, err := s.pool.Query(ctx, `EXPLAIN `+instanceClaimSQL, "w1", time.Now().Add(time.Second),
		[]string{}, []string{"t1"}, []int32{5}, int32(5), &limit, time.Now().Add(time.Minute), []int64{1, 2})
	if err != nil {
		t.Fatal(err)
	}
	var plan strings.Builder
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			t.Fatal(err)
		}
		plan.WriteString(line + "\n")
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if p := plan.String(); !strings.Contains(p, "instances_due") || strings.Contains(p, "Seq Scan on instances") {
		t.Fatalf("claim plan does not read instances_due:\n%s", p)
	}
}

// TestInstanceNotifications checks that another server's WatchJobs hears
// "@instances" when an instance is created and when a job of an instance
// ends: what wakes long-polling workers everywhere.
func TestInstanceNotifications(t *testing.T) {
	t.Parallel()
	ss := stores(t, 2)
	a, b := ss[0], ss[1]
	w := watch(t, a)
	w.until(t, b, "ready")
	// Notifications of one database arrive in commit order: once a marker
	// committed after a change is heard, so is the change's.
	heardAfter := func(what string, change func()) {
		t.Helper()
		before := w.count(instancesPayload)
		change()
		w.until(t, b, "marker."+what)
		if w.count(instancesPayload) == before {
			t.Errorf("%s: no %s notification", what, instancesPayload)
		}
	}
	now := time.Now()
	var in model.Instance
	heardAfter("create", func() {
		in = holdNew(t, b, model.InstanceSpec{Template: "w", Version: 1, Name: "i"}, "w1", now)
	})
	in, err := b.InstanceAdvance(t.Context(), model.Advance{
		InstanceID: in.ID, Worker: "w1", Epoch: in.Epoch, WakeSeq: in.WakeSeq, State: model.InstanceRunning,
		Jobs: []model.JobSpec{{Type: "n.job", InstanceID: in.ID, Step: "j", Key: "i/j"}},
	}, now)
	if err != nil {
		t.Fatal(err)
	}
	jobs, err := b.JobClaim(t.Context(), store.ClaimParams{Processor: "p", Slots: map[string]int{"n.job": 1}, Now: now})
	if err != nil || len(jobs) != 1 {
		t.Fatalf("JobClaim: %v, %v", jobs, err)
	}
	heardAfter("job end", func() {
		if _, err := b.JobComplete(t.Context(), model.Completion{ID: jobs[0].ID, Epoch: jobs[0].Epoch}, now); err != nil {
			t.Fatal(err)
		}
	})
	heardAfter("cancel", func() {
		if _, err := b.InstanceCancel(t.Context(), in.ID, now); err != nil {
			t.Fatal(err)
		}
	})
}

// TestAdvanceCancelRacesJobEnds has a worker cancel an instance's running
// jobs while their processor reports them, many times over: the two
// transactions lock the same job and instance rows, and must do so in one
// order, so that they never deadlock (a deadlock costs a second of the
// server's deadlock_timeout and a retry).
func TestAdvanceCancelRacesJobEnds(t *testing.T) {
	t.Parallel()
	s := newTestDB(t).open(t)
	ctx := t.Context()
	now := time.Now()
	for round := range 20 {
		name := fmt.Sprint("r", round)
		in := holdNew(t, s, model.InstanceSpec{Template: name, Version: 1, Name: name}, "w1", now)
		a := model.Advance{InstanceID: in.ID, Worker: "w1", Epoch: in.Epoch, WakeSeq: in.WakeSeq, State: model.InstanceRunning}
		for j := range 6 {
			a.Jobs = append(a.Jobs, model.JobSpec{Type: name, InstanceID: in.ID, Step: fmt.Sprint("s", j), Key: fmt.Sprintf("%s/%d", name, j)})
		}
		in, err := s.InstanceAdvance(ctx, a, now)
		if err != nil {
			t.Fatal(err)
		}
		jobs, err := s.JobClaim(ctx, store.ClaimParams{Processor: "p", Slots: map[string]int{name: 6}, Now: now})
		if err != nil || len(jobs) != 6 {
			t.Fatalf("JobClaim: %d, %v", len(jobs), err)
		}
		var ids []int64
		for _, j := range jobs {
			ids = append(ids, j.ID)
		}
		var wg sync.WaitGroup
		wg.Go(func() {
			// The worker gives up on the instance and cancels its jobs.
			_, err := s.InstanceAdvance(ctx, model.Advance{
				InstanceID: in.ID, Worker: "w1", Epoch: in.Epoch, WakeSeq: in.WakeSeq,
				State: model.InstanceFailed, CancelJobs: ids,
			}, now)
			if err != nil {
				t.Errorf("advance: %v", err)
			}
		})
		for i := len(jobs) - 1; i >= 0; i-- {
			wg.Go(func() {
				if _, err := s.JobComplete(ctx, model.Completion{ID: jobs[i].ID, Epoch: jobs[i].Epoch}, now); err != nil {
					t.Errorf("complete: %v", err)
				}
			})
		}
		wg.Wait()
	}
	if n := s.retries.Load(); n != 0 {
		t.Errorf("%d transactions were run again after a deadlock", n)
	}
}

// TestAdvanceCancelRacesChildEnd has a parent cancel its child while the
// child ends (and wakes the parent), many times over: both lock the child
// before the parent, so they never deadlock.
func TestAdvanceCancelRacesChildEnd(t *testing.T) {
	t.Parallel()
	s := newTestDB(t).open(t)
	ctx := t.Context()
	now := time.Now()
	for round := range 20 {
		name := fmt.Sprint("p", round)
		parent := holdNew(t, s, model.InstanceSpec{Template: name, Version: 1, Name: name}, "w1", now)
		parent, err := s.InstanceAdvance(ctx, model.Advance{
			InstanceID: parent.ID, Worker: "w1", Epoch: parent.Epoch, WakeSeq: parent.WakeSeq, State: model.InstanceRunning,
			Children: []model.InstanceSpec{{Template: name + ".c", Version: 1, Name: name + "/c", ParentStep: "c"}},
		}, now)
		if err != nil {
			t.Fatal(err)
		}
		child, err := s.InstanceClaim(ctx, store.InstanceClaimParams{Worker: "w2", Templates: []string{name + ".c"}, Default: 1, Now: now})
		if err != nil || len(child) != 1 {
			t.Fatalf("child claim: %v, %v", child, err)
		}
		var wg sync.WaitGroup
		wg.Go(func() {
			if _, err := s.InstanceAdvance(ctx, model.Advance{
				InstanceID: parent.ID, Worker: "w1", Epoch: parent.Epoch, WakeSeq: parent.WakeSeq,
				State: model.InstanceFailed, CancelChildren: []int64{child[0].ID},
			}, now); err != nil {
				t.Errorf("parent advance: %v", err)
			}
		})
		wg.Go(func() {
			c := child[0]
			if _, err := s.InstanceAdvance(ctx, model.Advance{
				InstanceID: c.ID, Worker: "w2", Epoch: c.Epoch, WakeSeq: c.WakeSeq, State: model.InstanceSucceeded,
			}, now); err != nil {
				t.Errorf("child advance: %v", err)
			}
		})
		wg.Wait()
	}
	if n := s.retries.Load(); n != 0 {
		t.Errorf("%d transactions were run again after a deadlock", n)
	}
}

// TestInstanceTriggerStored checks that the trigger that started an
// instance is kept (not yet covered by the shared suite).
func TestInstanceTriggerStored(t *testing.T) {
	t.Parallel()
	s := newTestDB(t).open(t)
	in, _, err := s.InstanceCreate(t.Context(), model.InstanceSpec{Template: "w", Version: 1, Name: "t", Trigger: "nightly"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.InstanceGet(t.Context(), in.ID)
	if err != nil || in.Trigger != "nightly" || got.Trigger != "nightly" {
		t.Fatalf("Trigger created %q, read %q (%v); want nightly", in.Trigger, got.Trigger, err)
	}
}
