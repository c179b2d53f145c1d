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

// testJobInsert covers JobInsert: defaults, order, atomicity and Key dedup.
func testJobInsert(t *testing.T, open Opener) {
	t.Run("BigBatchInOrder", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		// Long runs of keyless specs around a keyed one, each spec told
		// apart by its params and priority: whatever an engine does with
		// long runs (multi-row inserts), jobs come back in spec order with
		// growing ids, each as specified.
		var specs []model.JobSpec
		for i := range 150 {
			sp := model.JobSpec{Type: "t.big", Params: json.RawMessage(fmt.Sprintf(`{"i": %d}`, i)), Priority: i % 7}
			if i == 70 {
				sp.Key = "big/70"
			}
			if i%9 == 0 {
				sp.Selector = map[string]string{"site": fmt.Sprint(i)}
			}
			specs = append(specs, sp)
		}
		got := insert(t, s, T0, specs...)
		for i, j := range got {
			var p struct{ I int }
			if err := json.Unmarshal(j.Params, &p); err != nil || p.I != i || j.Priority != i%7 || j.Type != "t.big" {
				t.Fatalf("job %d: params %s priority %d type %s, want spec %d", i, j.Params, j.Priority, j.Type, i)
			}
			if i > 0 && j.ID <= got[i-1].ID {
				t.Fatalf("job %d: id %d after %d", i, j.ID, got[i-1].ID)
			}
			if (i%9 == 0) != (j.Selector["site"] == fmt.Sprint(i)) || j.State != model.JobQueued || !j.RunAfter.Equal(T0) {
				t.Fatalf("job %d: selector %v state %s run_after %v", i, j.Selector, j.State, j.RunAfter)
			}
			if same := get(t, s, j.ID); same.ID != j.ID || string(same.Params) != string(j.Params) {
				t.Fatalf("job %d stored as %+v", j.ID, same)
			}
		}
		if got[70].Key != "big/70" {
			t.Errorf("keyed spec: key %q", got[70].Key)
		}
	})

	t.Run("Defaults", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		j := insert(t, s, T0, model.JobSpec{Type: "t.a"})[0]
		d := model.JobSpec{Type: "t.a"}.WithDefaults()
		want := model.Job{
			ID: j.ID, Type: "t.a", Params: d.Params, State: model.JobQueued,
			MaxAttempts: d.MaxAttempts, Backoff: d.Backoff, BackoffMax: d.BackoffMax,
			RunAfter: T0, CreatedAt: T0, UpdatedAt: T0,
		}
		if j.ID <= 0 {
			t.Fatalf("ID = %d, want > 0", j.ID)
		}
		sameJob(t, "inserted", j, want)
		sameJob(t, "JobGet", get(t, s, j.ID), want)
	})

	t.Run("EveryField", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		spec := model.JobSpec{
			Type: "t.full", Params: json.RawMessage(`{"b": [true, 2.5], "a": "x"}`),
			Priority: 7, MaxAttempts: 5, Backoff: model.Duration(time.Second),
			BackoffMax: model.Duration(time.Minute), Timeout: model.Duration(30 * time.Second),
			Selector:   map[string]string{"site": "berlin", "gpu.kind": "a-100_x"},
			InstanceID: 42, Step: "sum", Key: "full-1", RunAfter: at(time.Hour),
		}
		j := insert(t, s, T0, spec)[0]
		want := model.Job{
			ID: j.ID, Type: spec.Type, Params: spec.Params, Priority: 7, State: model.JobQueued,
			MaxAttempts: 5, Backoff: spec.Backoff, BackoffMax: spec.BackoffMax, Timeout: spec.Timeout,
			Selector: spec.Selector, InstanceID: 42, Step: "sum", Key: "full-1",
			RunAfter: at(time.Hour), CreatedAt: T0, UpdatedAt: T0,
		}
		sameJob(t, "inserted", j, want)
		sameJob(t, "JobGet", get(t, s, j.ID), want)
	})

	t.Run("OrderKept", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		var specs []model.JobSpec
		for i := range 6 {
			specs = append(specs, model.JobSpec{Type: fmt.Sprintf("t.%d", i%3), Priority: i})
		}
		jobs := insert(t, s, T0, specs...)
		for i, j := range jobs {
			if j.Type != specs[i].Type || j.Priority != specs[i].Priority {
				t.Errorf("job %d: type %q priority %d, want %q %d", i, j.Type, j.Priority, specs[i].Type, specs[i].Priority)
			}
			if i > 0 && j.ID <= jobs[i-1].ID {
				t.Errorf("ids not increasing in insert order: %v", ids(jobs))
			}
		}
	})

	t.Run("EmptyBatch", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		got, err := s.JobInsert(t.Context(), nil, T0)
		if err != nil || len(got) != 0 {
			t.Fatalf("JobInsert(nil) = %v, %v; want empty, nil", got, err)
		}
	})

	t.Run("KeyDedup", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		first := insert(t, s, T0, model.JobSpec{Type: "t.k", Key: "k1", Params: json.RawMessage(`{"n":1}`)})[0]
		// A later submit with the same key, even with other content, returns the first job.
		got, err := s.JobInsert(t.Context(), []model.JobSpec{{Type: "t.other", Key: "k1", Params: json.RawMessage(`{"n":2}`)}}, at(time.Minute))
		if err != nil {
			t.Fatalf("JobInsert: %v", err)
		}
		if len(got) != 1 || !got[0].Existing {
			t.Fatalf("second insert of key: %+v, want one Existing", got)
		}
		sameJob(t, "existing job", got[0].Job, first)
		wantTotal(t, s, model.JobFilter{}, 1)
	})

	t.Run("KeyDedupWithinBatch", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		got, err := s.JobInsert(t.Context(), []model.JobSpec{
			{Type: "t.k", Key: "dup"}, {Type: "t.k"}, {Type: "t.k", Key: "dup"}, {Type: "t.k"},
		}, T0)
		if err != nil {
			t.Fatalf("JobInsert: %v", err)
		}
		if len(got) != 4 {
			t.Fatalf("got %d results, want 4", len(got))
		}
		wantExisting := []bool{false, false, true, false}
		for i, in := range got {
			if in.Existing != wantExisting[i] {
				t.Errorf("result %d Existing = %v, want %v", i, in.Existing, wantExisting[i])
			}
		}
		if got[2].Job.ID != got[0].Job.ID {
			t.Errorf("duplicate key in batch: id %d, want %d", got[2].Job.ID, got[0].Job.ID)
		}
		// Specs without a key are never deduplicated.
		if got[1].Job.ID == got[3].Job.ID {
			t.Errorf("two keyless specs got one id %d", got[1].Job.ID)
		}
		wantTotal(t, s, model.JobFilter{}, 3)
	})

	t.Run("BatchAtomic", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		// Params that are not JSON must be refused (jsonb does, and engines
		// storing text must check); the good spec before it must not stay.
		_, err := s.JobInsert(t.Context(), []model.JobSpec{
			{Type: "t.ok", Key: "atomic-1"},
			{Type: "t.bad", Params: json.RawMessage(`{not json`)},
		}, T0)
		if err == nil {
			t.Fatal("JobInsert with malformed params: no error")
		}
		wantTotal(t, s, model.JobFilter{}, 0)
		// The key of the failed batch was not taken.
		insert(t, s, T0, model.JobSpec{Type: "t.ok", Key: "atomic-1"})
	})

	t.Run("ConcurrentKey", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		const n = 20
		var (
			wg      sync.WaitGroup
			results = make([]store.Inserted, n)
			errs    = make([]error, n)
		)
		for i := range n {
			wg.Go(func() {
				var got []store.Inserted
				got, errs[i] = s.JobInsert(t.Context(), []model.JobSpec{{Type: "t.once", Key: "once"}}, T0)
				if len(got) == 1 {
					results[i] = got[0]
				}
			})
		}
		wg.Wait()
		created := 0
		for i := range n {
			if errs[i] != nil {
				t.Fatalf("insert %d: %v", i, errs[i])
			}
			if !results[i].Existing {
				created++
			}
			if results[i].Job.ID != results[0].Job.ID {
				t.Errorf("insert %d: id %d, want %d", i, results[i].Job.ID, results[0].Job.ID)
			}
		}
		if created != 1 {
			t.Errorf("%d inserts created a job, want exactly 1", created)
		}
		wantTotal(t, s, model.JobFilter{}, 1)
	})
}

// testJobGet covers JobGet of a missing job (found jobs are checked
// everywhere else).
func testJobGet(t *testing.T, open Opener) {
	t.Parallel()
	s := open(t)
	insertN(t, s, T0, "t.a", 1)
	for _, id := range []int64{0, -1, 1 << 40} {
		_, err := s.JobGet(t.Context(), id)
		wantErr(t, fmt.Sprintf("JobGet(%d)", id), err, model.ErrNotFound)
	}
}

// wantTotal fails unless the filter matches n jobs.
func wantTotal(t *testing.T, s store.Store, f model.JobFilter, n int) {
	t.Helper()
	p, err := s.JobList(t.Context(), f)
	if err != nil {
		t.Fatalf("JobList: %v", err)
	}
	if p.Total != n {
		t.Fatalf("JobList(%+v).Total = %d, want %d", f, p.Total, n)
	}
}

// testJobList covers filters, ordering, paging and Total.
func testJobList(t *testing.T, open Opener) {
	t.Run("TotalCapped", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		// One more than the cap of type a, the cap exactly of type b.
		for _, tc := range []struct {
			typ string
			n   int
		}{{"a", model.CountCap + 1}, {"b", model.CountCap}} {
			specs := make([]model.JobSpec, tc.n)
			for i := range specs {
				specs[i] = model.JobSpec{Type: tc.typ}
			}
			insert(t, s, at(0), specs...)
		}
		for _, tc := range []struct {
			f      model.JobFilter
			total  int
			capped bool
		}{
			{model.JobFilter{Types: []string{"a"}}, model.CountCap, true},
			{model.JobFilter{Types: []string{"b"}}, model.CountCap, false},
			{model.JobFilter{}, model.CountCap, true},
			{model.JobFilter{Types: []string{"c"}}, 0, false},
		} {
			p, err := s.JobList(t.Context(), tc.f)
			if err != nil {
				t.Fatal(err)
			}
			if p.Total != tc.total || p.TotalCapped != tc.capped {
				t.Errorf("JobList(%+v): Total %d, TotalCapped %v; want %d, %v", tc.f, p.Total, p.TotalCapped, tc.total, tc.capped)
			}
		}
	})
	t.Run("Filters", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		// Ten jobs one minute apart; even ones of type a, odd of b; the
		// first four belong to instance 7.
		var jobs []model.Job
		for i := range 10 {
			spec := model.JobSpec{Type: "b"}
			if i%2 == 0 {
				spec.Type = "a"
			}
			if i < 4 {
				spec.InstanceID = 7
			}
			jobs = append(jobs, insert(t, s, at(time.Duration(i)*time.Minute), spec)[0])
		}
		now := at(time.Hour)
		c := claimN(t, s, "a", "p1", 2, now) // jobs 0 and 2 (FIFO)
		if got, want := sortedIDs(c), []int64{jobs[0].ID, jobs[2].ID}; !slices.Equal(got, want) {
			t.Fatalf("claimed %v, want %v", got, want)
		}
		complete(t, s, model.Completion{ID: jobs[0].ID, Epoch: 1}, now)
		cancel(t, s, jobs[1].ID, now)
		// Now: 0 succeeded, 1 canceled, 2 running, 3..9 queued.

		idx := func(is ...int) []int64 {
			out := []int64{}
			for _, i := range is {
				out = append(out, jobs[i].ID)
			}
			return out
		}
		cases := []struct {
			name string
			f    model.JobFilter
			want []int64 // newest first
		}{
			{"none", model.JobFilter{}, idx(9, 8, 7, 6, 5, 4, 3, 2, 1, 0)},
			{"queued", model.JobFilter{States: []model.JobState{model.JobQueued}}, idx(9, 8, 7, 6, 5, 4, 3)},
			{"running+succeeded", model.JobFilter{States: []model.JobState{model.JobRunning, model.JobSucceeded}}, idx(2, 0)},
			{"canceled", model.JobFilter{States: []model.JobState{model.JobCanceled}}, idx(1)},
			{"failed", model.JobFilter{States: []model.JobState{model.JobFailed}}, idx()},
			{"type b", model.JobFilter{Types: []string{"b"}}, idx(9, 7, 5, 3, 1)},
			{"types a b", model.JobFilter{Types: []string{"a", "b"}}, idx(9, 8, 7, 6, 5, 4, 3, 2, 1, 0)},
			{"type unknown", model.JobFilter{Types: []string{"zzz"}}, idx()},
			{"instance", model.JobFilter{InstanceID: 7}, idx(3, 2, 1, 0)},
			{"created after", model.JobFilter{CreatedAfter: at(150 * time.Second)}, idx(9, 8, 7, 6, 5, 4, 3)},
			{"created before", model.JobFilter{CreatedBefore: at(150 * time.Second)}, idx(2, 1, 0)},
			{"created range", model.JobFilter{CreatedAfter: at(270 * time.Second), CreatedBefore: at(390 * time.Second)}, idx(6, 5)},
			{"queued a", model.JobFilter{States: []model.JobState{model.JobQueued}, Types: []string{"a"}}, idx(8, 6, 4)},
			{"instance queued", model.JobFilter{InstanceID: 7, States: []model.JobState{model.JobQueued}}, idx(3)},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				tc.f.Limit = 100
				p, err := s.JobList(t.Context(), tc.f)
				if err != nil {
					t.Fatalf("JobList: %v", err)
				}
				if got := ids(p.Items); !slices.Equal(got, tc.want) {
					t.Errorf("ids %v, want %v", got, tc.want)
				}
				if p.Total != len(tc.want) {
					t.Errorf("Total %d, want %d", p.Total, len(tc.want))
				}
				if p.Next != "" {
					t.Errorf("Next = %q, want empty (the API layer builds cursors)", p.Next)
				}
			})
		}
	})

	t.Run("Paging", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		var specs []model.JobSpec
		for i := range 25 {
			typ := "a"
			if i%3 == 0 {
				typ = "b"
			}
			specs = append(specs, model.JobSpec{Type: typ})
		}
		jobs := insert(t, s, T0, specs...)
		countB := 0
		for _, j := range jobs {
			if j.Type == "b" {
				countB++
			}
		}
		for _, tc := range []struct {
			name  string
			f     model.JobFilter
			total int
		}{
			{"all", model.JobFilter{Limit: 7}, 25},
			{"filtered", model.JobFilter{Types: []string{"b"}, Limit: 3}, countB},
		} {
			t.Run(tc.name, func(t *testing.T) {
				seen := map[int64]bool{}
				var order []int64
				f := tc.f
				for page := 0; ; page++ {
					if page > 30 {
						t.Fatal("paging does not end")
					}
					p, err := s.JobList(t.Context(), f)
					if err != nil {
						t.Fatalf("JobList: %v", err)
					}
					if p.Total != tc.total {
						t.Errorf("page %d: Total %d, want %d (every match, not the page)", page, p.Total, tc.total)
					}
					if len(p.Items) > f.Limit {
						t.Fatalf("page %d: %d items, limit %d", page, len(p.Items), f.Limit)
					}
					if len(p.Items) == 0 {
						break
					}
					for _, j := range p.Items {
						if seen[j.ID] {
							t.Fatalf("job %d on two pages", j.ID)
						}
						seen[j.ID] = true
						order = append(order, j.ID)
					}
					f.After = p.Items[len(p.Items)-1].ID
				}
				if len(seen) != tc.total {
					t.Errorf("paging visited %d jobs, want %d", len(seen), tc.total)
				}
				if !slices.IsSortedFunc(order, func(a, b int64) int { return int(b - a) }) {
					t.Errorf("pages not newest first: %v", order)
				}
			})
		}
	})
}
