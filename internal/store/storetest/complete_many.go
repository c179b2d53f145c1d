package storetest

import (
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/dpe-engine/dpe/internal/model"
	"github.com/dpe-engine/dpe/internal/store"
)

// missingID is a job id no test creates.
const missingID = 1 << 40

// completeMany runs JobCompleteMany and fails the test unless it answers
// every completion.
func completeMany(t *testing.T, s store.Store, cs []model.Completion, now time.Time) []store.CompleteResult {
	t.Helper()
	res, err := s.JobCompleteMany(t.Context(), cs, now)
	if err != nil {
		t.Fatalf("JobCompleteMany(%d completions): %v", len(cs), err)
	}
	if len(res) != len(cs) {
		t.Fatalf("JobCompleteMany: %d results for %d completions", len(res), len(cs))
	}
	return res
}

// completeManyCase is one kind of completion of the mixed batch. Every case
// gets two identical jobs: one completed in the batch, its twin completed
// alone by JobComplete; both must end alike.
type completeManyCase struct {
	name string
	spec model.JobSpec // Type is set from name
	// queued leaves the jobs unclaimed.
	queued bool
	// prep runs on each of the two jobs after the claim.
	prep func(t *testing.T, s store.Store, j model.Job)
	// report builds the completion of the job.
	report func(j model.Job) model.Completion
	want   model.JobState // when err is nil
	err    error          // model.ErrConflict, model.ErrNotFound or nil
}

// testJobCompleteMany covers JobCompleteMany: each completion of a batch
// ends exactly as JobComplete alone would end it, bad ones do not fail the
// others, and the wake-ups, size and concurrency of group commit.
func testJobCompleteMany(t *testing.T, open Opener) {
	t.Run("MixedBatchLikeOneByOne", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		testCompleteManyMixed(t, s)
	})

	t.Run("Empty", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		for _, cs := range [][]model.Completion{nil, {}} {
			res, err := s.JobCompleteMany(t.Context(), cs, T0)
			if err != nil || len(res) != 0 {
				t.Fatalf("JobCompleteMany(%v) = %v, %v; want empty, nil", cs, res, err)
			}
		}
	})

	t.Run("OnlyBadCompletions", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		j := insertN(t, s, T0, "cm.bad", 1)[0]
		res := completeMany(t, s, []model.Completion{
			{ID: missingID, Epoch: 1},
			{ID: j.ID, Epoch: 0}, // queued: never claimed
		}, T0)
		if !errors.Is(res[0].Err, model.ErrNotFound) {
			t.Errorf("unknown id: Err %v, want ErrNotFound", res[0].Err)
		}
		if !errors.Is(res[1].Err, model.ErrConflict) {
			t.Errorf("queued job: Err %v, want ErrConflict", res[1].Err)
		}
		sameJob(t, "untouched queued job", get(t, s, j.ID), j)
	})

	t.Run("WakesInstances", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		testCompleteManyWake(t, s)
	})

	t.Run("Large", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		const n = 2000
		insert(t, s, T0, repeatSpec(model.JobSpec{Type: "cm.large", MaxAttempts: 2, Backoff: model.Duration(time.Second)}, n)...)
		held := claimN(t, s, "cm.large", "p1", n, T0)
		if len(held) != n {
			t.Fatalf("claimed %d, want %d", len(held), n)
		}
		cs := make([]model.Completion, n)
		failures := 0
		for i, j := range held {
			cs[i] = model.Completion{ID: j.ID, Epoch: j.Epoch, Result: json.RawMessage(fmt.Sprintf(`{"i":%d}`, i))}
			if i%4 == 3 {
				cs[i] = model.Completion{ID: j.ID, Epoch: j.Epoch, Error: "flaky"}
				failures++
			}
		}
		now := at(time.Second)
		res := completeMany(t, s, cs, now)
		for i, r := range res {
			want := model.JobSucceeded
			if cs[i].Error != "" {
				want = model.JobQueued
			}
			if r.Err != nil || r.Job.ID != cs[i].ID || r.Job.State != want {
				t.Fatalf("result %d: job %d %s, err %v; want job %d %s", i, r.Job.ID, r.Job.State, r.Err, cs[i].ID, want)
			}
		}
		wantCounts(t, s, map[model.JobState]int{model.JobSucceeded: n - failures, model.JobQueued: failures})
		sameJob(t, "last job", get(t, s, cs[n-1].ID), res[n-1].Job)
	})

	t.Run("Concurrent", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		const (
			workers = 8
			perCall = 25
			calls   = 4
			n       = workers * perCall * calls
		)
		insertN(t, s, T0, "cm.conc", n)
		held := claimN(t, s, "cm.conc", "p1", n, T0)
		if len(held) != n {
			t.Fatalf("claimed %d, want %d", len(held), n)
		}
		now := at(time.Second)
		var wg sync.WaitGroup
		errs := make([]error, workers)
		for w := range workers {
			mine := held[w*perCall*calls : (w+1)*perCall*calls]
			wg.Go(func() {
				for c := range calls {
					cs := make([]model.Completion, 0, perCall)
					for _, j := range mine[c*perCall : (c+1)*perCall] {
						cs = append(cs, model.Completion{ID: j.ID, Epoch: j.Epoch})
					}
					res, err := s.JobCompleteMany(t.Context(), cs, now)
					if err == nil && len(res) != len(cs) {
						err = fmt.Errorf("%d results for %d completions", len(res), len(cs))
					}
					for i := range res {
						if err == nil && res[i].Err != nil {
							err = fmt.Errorf("job %d: %w", cs[i].ID, res[i].Err)
						}
						if err == nil && res[i].Job.State != model.JobSucceeded {
							err = fmt.Errorf("job %d: state %s, want succeeded", cs[i].ID, res[i].Job.State)
						}
					}
					if err != nil {
						errs[w] = fmt.Errorf("call %d: %w", c, err)
						return
					}
				}
			})
		}
		wg.Wait()
		for w, err := range errs {
			if err != nil {
				t.Errorf("worker %d: %v", w, err)
			}
		}
		wantCounts(t, s, map[model.JobState]int{model.JobSucceeded: n})
	})
}

// testCompleteManyMixed completes one batch holding every kind of
// completion, and their twins one by one with JobComplete, in the same
// order, and compares each outcome.
func testCompleteManyMixed(t *testing.T, s store.Store) {
	retry := model.JobSpec{MaxAttempts: 3, Backoff: model.Duration(2 * time.Second), BackoffMax: model.Duration(time.Minute)}
	cases := []completeManyCase{
		{name: "ok", report: func(j model.Job) model.Completion {
			return model.Completion{ID: j.ID, Epoch: j.Epoch, Result: json.RawMessage(`{"size": 3}`)}
		}, want: model.JobSucceeded},
		{name: "ok-noresult", want: model.JobSucceeded},
		{name: "retry", spec: retry, report: failure("flaky", false), want: model.JobQueued},
		{name: "permanent", spec: retry, report: failure("no such file", true), want: model.JobFailed},
		{name: "exhausted", spec: model.JobSpec{MaxAttempts: 1}, report: failure("boom", false), want: model.JobFailed},
		{name: "cancel-asked", spec: retry, prep: func(t *testing.T, s store.Store, j model.Job) {
			cancel(t, s, j.ID, T0)
		}, report: failure("stopped", false), want: model.JobCanceled},
		{name: "stale", report: func(j model.Job) model.Completion {
			return model.Completion{ID: j.ID, Epoch: j.Epoch + 1}
		}, err: model.ErrConflict},
		{name: "not-running", queued: true, err: model.ErrConflict},
		{name: "unknown", report: func(model.Job) model.Completion {
			return model.Completion{ID: missingID, Epoch: 1}
		}, err: model.ErrNotFound},
		{name: "repeat", spec: retry, prep: func(t *testing.T, s store.Store, j model.Job) {
			complete(t, s, model.Completion{ID: j.ID, Epoch: j.Epoch, Error: "flaky"}, T0)
		}, report: failure("flaky", false), want: model.JobQueued},
		{name: "repeat-success", prep: func(t *testing.T, s store.Store, j model.Job) {
			complete(t, s, model.Completion{ID: j.ID, Epoch: j.Epoch}, T0)
		}, want: model.JobSucceeded},
	}
	// The batch applies in order: a completion repeated later in the same
	// batch is an exact repeat of one that took effect, and one of another
	// epoch after it is stale.
	order := []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 0, 2}
	staleAfter := func(j model.Job) model.Completion { return model.Completion{ID: j.ID, Epoch: j.Epoch + 1} }

	batch := make([]model.Job, len(cases))
	twin := make([]model.Job, len(cases))
	for i, c := range cases {
		spec := c.spec
		spec.Type = "cm." + c.name
		pair := insert(t, s, T0, spec, spec)
		if !c.queued {
			pair = claimN(t, s, spec.Type, "p1", 2, T0)
			if len(pair) != 2 {
				t.Fatalf("%s: claimed %d jobs, want 2", c.name, len(pair))
			}
		}
		batch[i], twin[i] = pair[0], pair[1]
		if c.prep != nil {
			c.prep(t, s, batch[i])
			c.prep(t, s, twin[i])
		}
	}
	report := func(c completeManyCase, j model.Job) model.Completion {
		if c.report == nil {
			return model.Completion{ID: j.ID, Epoch: j.Epoch}
		}
		return c.report(j)
	}
	var cs, twinCS []model.Completion
	for _, i := range order {
		cs = append(cs, report(cases[i], batch[i]))
		twinCS = append(twinCS, report(cases[i], twin[i]))
	}
	cs = append(cs, staleAfter(batch[0]))
	twinCS = append(twinCS, staleAfter(twin[0]))

	now := at(5 * time.Second)
	res := completeMany(t, s, cs, now)
	for k, r := range res {
		name := "stale after ok"
		var c completeManyCase
		if k < len(order) {
			c = cases[order[k]]
			name = c.name
		} else {
			c = completeManyCase{err: model.ErrConflict}
		}
		if k >= len(cases) && k < len(order) {
			name += " (again in the batch)"
		}
		alone, aloneErr := s.JobComplete(t.Context(), twinCS[k], now)
		switch {
		case c.err != nil:
			wantErr(t, name+": JobComplete", aloneErr, c.err)
			wantErr(t, name+": JobCompleteMany", r.Err, c.err)
			continue
		case aloneErr != nil:
			t.Fatalf("%s: JobComplete: %v", name, aloneErr)
		case r.Err != nil:
			t.Errorf("%s: JobCompleteMany: Err %v, want nil", name, r.Err)
			continue
		}
		wantState(t, name+": JobComplete", alone, c.want)
		got := r.Job
		if got.ID != cs[k].ID {
			t.Errorf("%s: result %d is job %d, want %d", name, k, got.ID, cs[k].ID)
		}
		got.ID = alone.ID
		sameJob(t, name+": JobCompleteMany vs JobComplete", got, alone)
	}

	// What the batch returned is what it stored; refused completions
	// changed nothing.
	for i, c := range cases {
		g := get(t, s, batch[i].ID)
		switch {
		case c.name == "unknown":
		case c.err != nil:
			sameJob(t, c.name+": refused, unchanged", g, batch[i])
		default:
			sameJob(t, c.name+": JobGet after the batch", g, res[i].Job)
		}
	}
	g := get(t, s, batch[2].ID)
	sameTime(t, "retry: RunAfter", g.RunAfter, now.Add(model.RetryDelay(cases[2].spec.Backoff.D(), cases[2].spec.BackoffMax.D(), 1)))
	noTime(t, "retry: FinishedAt", g.FinishedAt)
	if g.Error != "flaky" || g.Attempt != 1 {
		t.Errorf("retry: error %q attempt %d, want flaky 1", g.Error, g.Attempt)
	}
}

// failure returns a report of a failed attempt.
func failure(msg string, permanent bool) func(j model.Job) model.Completion {
	return func(j model.Job) model.Completion {
		return model.Completion{ID: j.ID, Epoch: j.Epoch, Error: msg, Permanent: permanent}
	}
}

// testCompleteManyWake checks that the jobs of a batch wake their instances
// as JobComplete does: each end an event, a retry none.
func testCompleteManyWake(t *testing.T, s store.Store) {
	// Instance "batch" gets its jobs completed by JobCompleteMany, "alone"
	// the same jobs by JobComplete; "retry" and "retry-alone" only get
	// retries.
	names := []string{"batch", "alone", "retry", "retry-alone"}
	insts := make([]model.Instance, len(names))
	jobs := make([][]model.Job, len(names))
	for i, name := range names {
		insts[i] = parkInst(t, s, model.InstanceSpec{Template: "w", Version: 1, Name: name}, "w1", T0)
		typ := "cmw." + name
		insert(t, s, T0,
			model.JobSpec{Type: typ, InstanceID: insts[i].ID, Step: "a", Key: name + "/a", MaxAttempts: 3},
			model.JobSpec{Type: typ, InstanceID: insts[i].ID, Step: "b", Key: name + "/b", MaxAttempts: 3})
		jobs[i] = claimN(t, s, typ, "p1", 2, T0)
		if len(jobs[i]) != 2 {
			t.Fatalf("%s: claimed %d jobs, want 2", name, len(jobs[i]))
		}
	}
	insertN(t, s, T0, "cmw.plain", 1)
	plain := claimN(t, s, "cmw.plain", "p1", 1, T0)
	if len(plain) != 1 {
		t.Fatalf("claimed %d plain jobs, want 1", len(plain))
	}
	ends := func(js []model.Job) []model.Completion {
		return []model.Completion{
			{ID: js[0].ID, Epoch: js[0].Epoch},
			{ID: js[1].ID, Epoch: js[1].Epoch, Error: "x", Permanent: true},
		}
	}
	retries := func(js []model.Job) []model.Completion {
		return []model.Completion{
			{ID: js[0].ID, Epoch: js[0].Epoch, Error: "flaky"},
			{ID: js[1].ID, Epoch: js[1].Epoch, Error: "flaky"},
		}
	}
	now := at(time.Minute)
	cs := append(ends(jobs[0]), model.Completion{ID: plain[0].ID, Epoch: plain[0].Epoch})
	cs = append(cs, retries(jobs[2])...)
	for i, r := range completeMany(t, s, cs, now) {
		if r.Err != nil {
			t.Fatalf("completion %d: %v", i, r.Err)
		}
	}
	for _, c := range append(ends(jobs[1]), retries(jobs[3])...) {
		complete(t, s, c, now)
	}

	// Two jobs ended: two events, as when completed one by one.
	got, alone := getInst(t, s, insts[0].ID), getInst(t, s, insts[1].ID)
	wantWoken(t, "instance of the batch", got, 1, now)
	if got.WakeSeq != alone.WakeSeq {
		t.Errorf("batch WakeSeq %d, JobComplete one by one %d", got.WakeSeq, alone.WakeSeq)
	}
	wantNotWoken(t, "instance of batch retries", getInst(t, s, insts[2].ID), 0)
	wantNotWoken(t, "instance of retries one by one", getInst(t, s, insts[3].ID), 0)
}

// repeatSpec returns n copies of spec.
func repeatSpec(spec model.JobSpec, n int) []model.JobSpec {
	out := make([]model.JobSpec, n)
	for i := range out {
		out[i] = spec
	}
	return out
}

// wantCounts fails unless JobCounts answers want exactly.
func wantCounts(t *testing.T, s store.Store, want map[model.JobState]int) {
	t.Helper()
	got, err := s.JobCounts(t.Context())
	if err != nil {
		t.Fatalf("JobCounts: %v", err)
	}
	for st, n := range want {
		if got[st] != n {
			t.Errorf("JobCounts[%s] = %d, want %d (all: %v)", st, got[st], n, got)
		}
	}
	for st, n := range got {
		if _, ok := want[st]; !ok && n != 0 {
			t.Errorf("JobCounts[%s] = %d, want none (all: %v)", st, n, got)
		}
	}
}
