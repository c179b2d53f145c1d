package storetest

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dpe-engine/dpe/internal/model"
	"github.com/dpe-engine/dpe/internal/store"
)

func intp(v int) *int { return &v }

// testJobHeartbeat covers lease renewal and the per-job answers.
func testJobHeartbeat(t *testing.T, open Opener) {
	t.Run("RenewsAndStoresProgress", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		insertN(t, s, T0, "h.a", 1)
		j := claimOne(t, s, "h.a", "p1", T0) // lease until T0+30s
		now := at(10 * time.Second)
		res, err := s.JobHeartbeat(t.Context(), []model.Heartbeat{
			{ID: j.ID, Epoch: j.Epoch, Progress: intp(40), Message: "half way"},
		}, 30*time.Second, now)
		if err != nil {
			t.Fatalf("JobHeartbeat: %v", err)
		}
		if len(res) != 1 || res[0].ID != j.ID || res[0].Status != model.LeaseOK {
			t.Fatalf("results %+v, want one ok for %d", res, j.ID)
		}
		sameTime(t, "result LeaseUntil", res[0].LeaseUntil, now.Add(30*time.Second))
		g := get(t, s, j.ID)
		sameTimePtr(t, "LeaseUntil", g.LeaseUntil, now.Add(30*time.Second))
		if g.Progress != 40 || g.Message != "half way" {
			t.Errorf("progress %d %q, want 40 %q", g.Progress, g.Message, "half way")
		}
		wantState(t, "after heartbeat", g, model.JobRunning)

		// Without progress, the stored progress stays.
		res, err = s.JobHeartbeat(t.Context(), []model.Heartbeat{{ID: j.ID, Epoch: j.Epoch}}, 30*time.Second, at(20*time.Second))
		if err != nil || len(res) != 1 || res[0].Status != model.LeaseOK {
			t.Fatalf("second heartbeat: %+v, %v", res, err)
		}
		g = get(t, s, j.ID)
		if g.Progress != 40 {
			t.Errorf("progress %d after a heartbeat without progress, want 40", g.Progress)
		}
		sameTimePtr(t, "LeaseUntil", g.LeaseUntil, at(50*time.Second))
	})

	t.Run("Empty", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		res, err := s.JobHeartbeat(t.Context(), nil, time.Second, T0)
		if err != nil || len(res) != 0 {
			t.Fatalf("JobHeartbeat(nil) = %v, %v", res, err)
		}
	})

	t.Run("MixedBatch", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		insertN(t, s, T0, "h.m", 5)
		held := claimN(t, s, "h.m", "p1", 4, T0)
		if len(held) != 4 {
			t.Fatalf("claimed %d, want 4", len(held))
		}
		okJob, staleJob, cancelJob, doneJob := held[0], held[1], held[2], held[3]
		cancel(t, s, cancelJob.ID, T0)
		complete(t, s, model.Completion{ID: doneJob.ID, Epoch: doneJob.Epoch}, T0)
		queued, _ := s.JobList(t.Context(), model.JobFilter{States: []model.JobState{model.JobQueued}, Limit: 10})
		if len(queued.Items) != 1 {
			t.Fatalf("want one queued job, got %d", len(queued.Items))
		}
		now := at(5 * time.Second)
		beats := []model.Heartbeat{
			{ID: okJob.ID, Epoch: okJob.Epoch},
			{ID: staleJob.ID, Epoch: staleJob.Epoch + 1, Progress: intp(99)},
			{ID: cancelJob.ID, Epoch: cancelJob.Epoch},
			{ID: queued.Items[0].ID, Epoch: 0},
			{ID: doneJob.ID, Epoch: doneJob.Epoch},
			{ID: 1 << 40, Epoch: 1},
		}
		want := []model.LeaseStatus{model.LeaseOK, model.LeaseLost, model.LeaseCanceled, model.LeaseLost, model.LeaseLost, model.LeaseLost}
		res, err := s.JobHeartbeat(t.Context(), beats, time.Minute, now)
		if err != nil {
			t.Fatalf("JobHeartbeat: %v", err)
		}
		if len(res) != len(beats) {
			t.Fatalf("%d results for %d beats", len(res), len(beats))
		}
		for i, r := range res {
			if r.ID != beats[i].ID || r.Status != want[i] {
				t.Errorf("result %d = %+v, want id %d status %s", i, r, beats[i].ID, want[i])
			}
		}
		sameTimePtr(t, "renewed lease", get(t, s, okJob.ID).LeaseUntil, now.Add(time.Minute))
		stale := get(t, s, staleJob.ID)
		sameTimePtr(t, "stale lease (not renewed)", stale.LeaseUntil, at(30*time.Second))
		if stale.Progress != 0 {
			t.Errorf("a stale heartbeat stored progress %d", stale.Progress)
		}
	})
}

// testJobComplete covers outcomes, retries and fencing of completions.
func testJobComplete(t *testing.T, open Opener) {
	t.Run("Success", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		insertN(t, s, T0, "d.ok", 1)
		j := claimOne(t, s, "d.ok", "p1", T0)
		now := at(5 * time.Second)
		res := json.RawMessage(`{"checksum": "abc", "size": 3}`)
		got := complete(t, s, model.Completion{ID: j.ID, Epoch: j.Epoch, Result: res}, now)
		wantState(t, "completed", got, model.JobSucceeded)
		sameJSON(t, "Result", got.Result, res)
		sameTimePtr(t, "FinishedAt", got.FinishedAt, now)
		sameTime(t, "UpdatedAt", got.UpdatedAt, now)
		if got.Attempt != 1 || got.Epoch != 1 || got.Error != "" {
			t.Errorf("attempt %d epoch %d error %q", got.Attempt, got.Epoch, got.Error)
		}
		sameJob(t, "JobGet", get(t, s, j.ID), got)
	})

	t.Run("SuccessWithoutResult", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		insertN(t, s, T0, "d.ok", 1)
		j := claimOne(t, s, "d.ok", "p1", T0)
		got := complete(t, s, model.Completion{ID: j.ID, Epoch: j.Epoch}, T0)
		wantState(t, "completed", got, model.JobSucceeded)
	})

	t.Run("RetryWithBackoffThenFail", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		spec := model.JobSpec{Type: "d.retry", MaxAttempts: 3, Backoff: model.Duration(2 * time.Second), BackoffMax: model.Duration(3 * time.Second)}
		insert(t, s, T0, spec)
		now := T0
		for attempt := 1; attempt <= 3; attempt++ {
			j := claimOne(t, s, "d.retry", "p1", now)
			if j.Attempt != attempt || j.Epoch != int64(attempt) {
				t.Fatalf("claim %d: attempt %d epoch %d", attempt, j.Attempt, j.Epoch)
			}
			now = now.Add(time.Second)
			got := complete(t, s, model.Completion{ID: j.ID, Epoch: j.Epoch, Error: "boom"}, now)
			if got.Error != "boom" {
				t.Errorf("attempt %d: error %q, want boom", attempt, got.Error)
			}
			if attempt == 3 {
				wantState(t, "last attempt failed", got, model.JobFailed)
				sameTimePtr(t, "FinishedAt", got.FinishedAt, now)
				break
			}
			wantState(t, "failed with attempts left", got, model.JobQueued)
			noTime(t, "FinishedAt", got.FinishedAt)
			if got.Attempt != attempt {
				t.Errorf("queued again: attempt %d, want %d", got.Attempt, attempt)
			}
			next := now.Add(model.RetryDelay(spec.Backoff.D(), spec.BackoffMax.D(), attempt))
			sameTime(t, "RunAfter", got.RunAfter, next)
			if early := claimN(t, s, "d.retry", "p1", 1, next.Add(-time.Millisecond)); len(early) != 0 {
				t.Fatalf("claimed during the back-off")
			}
			now = next
		}
	})

	t.Run("PermanentFails", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		insert(t, s, T0, model.JobSpec{Type: "d.perm", MaxAttempts: 5})
		j := claimOne(t, s, "d.perm", "p1", T0)
		got := complete(t, s, model.Completion{ID: j.ID, Epoch: j.Epoch, Error: "no such file", Permanent: true}, at(time.Second))
		wantState(t, "permanent failure", got, model.JobFailed)
		if got.Error != "no such file" {
			t.Errorf("error %q", got.Error)
		}
		sameTimePtr(t, "FinishedAt", got.FinishedAt, at(time.Second))
	})

	t.Run("ExhaustedFails", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		insert(t, s, T0, model.JobSpec{Type: "d.one", MaxAttempts: 1})
		j := claimOne(t, s, "d.one", "p1", T0)
		got := complete(t, s, model.Completion{ID: j.ID, Epoch: j.Epoch, Error: "x"}, T0)
		wantState(t, "single attempt failed", got, model.JobFailed)
	})

	t.Run("CancelAskedThenFailure", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		insert(t, s, T0, model.JobSpec{Type: "d.c", MaxAttempts: 5})
		j := claimOne(t, s, "d.c", "p1", T0)
		cancel(t, s, j.ID, T0)
		got := complete(t, s, model.Completion{ID: j.ID, Epoch: j.Epoch, Error: "context canceled"}, at(time.Second))
		wantState(t, "failure after cancel", got, model.JobCanceled)
		sameTimePtr(t, "FinishedAt", got.FinishedAt, at(time.Second))
	})

	t.Run("CancelAskedThenSuccess", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		insertN(t, s, T0, "d.c", 1)
		j := claimOne(t, s, "d.c", "p1", T0)
		cancel(t, s, j.ID, T0)
		// The handler finished anyway: its effect happened, so the job
		// says so ("Success: succeeded").
		got := complete(t, s, model.Completion{ID: j.ID, Epoch: j.Epoch}, at(time.Second))
		wantState(t, "success after cancel", got, model.JobSucceeded)
	})

	t.Run("StaleEpoch", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		insertN(t, s, T0, "d.s", 1)
		j := claimOne(t, s, "d.s", "p1", T0)
		for _, e := range []int64{0, j.Epoch + 1} {
			_, err := s.JobComplete(t.Context(), model.Completion{ID: j.ID, Epoch: e}, T0)
			wantErr(t, "complete with a wrong epoch", err, model.ErrConflict)
		}
		wantState(t, "after refused completions", get(t, s, j.ID), model.JobRunning)
	})

	t.Run("NotRunning", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		j := insertN(t, s, T0, "d.q", 1)[0]
		_, err := s.JobComplete(t.Context(), model.Completion{ID: j.ID, Epoch: 0}, T0)
		wantErr(t, "complete a queued job", err, model.ErrConflict)
		_, err = s.JobComplete(t.Context(), model.Completion{ID: 1 << 40, Epoch: 1}, T0)
		wantErr(t, "complete a missing job", err, model.ErrNotFound)
	})

	t.Run("ExactRepeat", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		insertN(t, s, T0, "d.r", 2)
		a := claimOne(t, s, "d.r", "p1", T0)
		b := claimOne(t, s, "d.r", "p1", T0)
		for _, c := range []model.Completion{
			{ID: a.ID, Epoch: a.Epoch, Result: json.RawMessage(`{"n":1}`)}, // succeeded
			{ID: b.ID, Epoch: b.Epoch, Error: "try again"},                 // queued for a retry
		} {
			first := complete(t, s, c, at(time.Second))
			again, err := s.JobComplete(t.Context(), c, at(2*time.Second))
			if err != nil {
				t.Fatalf("repeat of an applied completion: %v", err)
			}
			sameJob(t, "repeated completion", again, first)
			sameJob(t, "JobGet after repeat", get(t, s, c.ID), first)
		}
	})

	t.Run("RepeatAfterReclaim", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		insert(t, s, T0, model.JobSpec{Type: "d.rr", Backoff: model.Duration(time.Second)})
		j := claimOne(t, s, "d.rr", "p1", T0)
		c := model.Completion{ID: j.ID, Epoch: j.Epoch, Error: "flaky"}
		complete(t, s, c, T0)
		again := claimOne(t, s, "d.rr", "p2", at(time.Minute))
		if again.Epoch != j.Epoch+1 {
			t.Fatalf("re-claim epoch %d, want %d", again.Epoch, j.Epoch+1)
		}
		_, err := s.JobComplete(t.Context(), c, at(time.Minute))
		wantErr(t, "old report after a re-claim", err, model.ErrConflict)
		_, err = s.JobComplete(t.Context(), model.Completion{ID: j.ID, Epoch: j.Epoch}, at(time.Minute))
		wantErr(t, "old epoch success after a re-claim", err, model.ErrConflict)
		g := get(t, s, j.ID)
		wantState(t, "held by p2", g, model.JobRunning)
		if g.Epoch != again.Epoch || g.Processor != "p2" {
			t.Errorf("epoch %d processor %q, want %d p2", g.Epoch, g.Processor, again.Epoch)
		}
	})
}

// testJobRelease covers giving a running job back without counting the
// attempt.
func testJobRelease(t *testing.T, open Opener) {
	t.Run("BackToQueue", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		insertN(t, s, T0, "r.a", 1)
		j := claimOne(t, s, "r.a", "p1", T0)
		now := at(time.Second)
		got, err := s.JobRelease(t.Context(), j.ID, j.Epoch, now)
		if err != nil {
			t.Fatalf("JobRelease: %v", err)
		}
		wantState(t, "released", got, model.JobQueued)
		if got.Attempt != 0 || got.Epoch != j.Epoch {
			t.Errorf("attempt %d epoch %d, want 0 %d", got.Attempt, got.Epoch, j.Epoch)
		}
		sameJob(t, "JobGet", get(t, s, j.ID), got)
		again := claimOne(t, s, "r.a", "p2", now)
		if again.Attempt != 1 || again.Epoch != j.Epoch+1 {
			t.Errorf("re-claim: attempt %d epoch %d, want 1 %d", again.Attempt, again.Epoch, j.Epoch+1)
		}
		_, err = s.JobComplete(t.Context(), model.Completion{ID: j.ID, Epoch: j.Epoch}, now)
		wantErr(t, "completion under the released epoch", err, model.ErrConflict)
	})

	t.Run("AfterRetry", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		insert(t, s, T0, model.JobSpec{Type: "r.b", Backoff: model.Duration(time.Second)})
		j := claimOne(t, s, "r.b", "p1", T0)
		complete(t, s, model.Completion{ID: j.ID, Epoch: j.Epoch, Error: "x"}, T0)
		j = claimOne(t, s, "r.b", "p1", at(time.Minute))
		got, err := s.JobRelease(t.Context(), j.ID, j.Epoch, at(time.Minute))
		if err != nil {
			t.Fatalf("JobRelease: %v", err)
		}
		if got.Attempt != 1 {
			t.Errorf("attempt %d after releasing attempt 2, want 1", got.Attempt)
		}
	})

	t.Run("Refused", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		jobs := insertN(t, s, T0, "r.c", 2)
		j := claimOne(t, s, "r.c", "p1", T0)
		_, err := s.JobRelease(t.Context(), j.ID, j.Epoch+1, T0)
		wantErr(t, "release with a wrong epoch", err, model.ErrConflict)
		wantState(t, "after refused release", get(t, s, j.ID), model.JobRunning)
		_, err = s.JobRelease(t.Context(), jobs[1].ID, 0, T0)
		wantErr(t, "release a queued job", err, model.ErrConflict)
		_, err = s.JobRelease(t.Context(), 1<<40, 1, T0)
		wantErr(t, "release a missing job", err, model.ErrNotFound)
	})
}

// testJobRescue covers expired leases.
func testJobRescue(t *testing.T, open Opener) {
	t.Run("Outcomes", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		insert(t, s, T0,
			model.JobSpec{Type: "x.requeue", MaxAttempts: 3},
			model.JobSpec{Type: "x.fail", MaxAttempts: 1},
			model.JobSpec{Type: "x.cancel", MaxAttempts: 3},
			model.JobSpec{Type: "x.live"},
			model.JobSpec{Type: "x.edge"},
		)
		ttl := 10 * time.Second
		take := func(typ string, ttl time.Duration, now time.Time) model.Job {
			t.Helper()
			got := claim(t, s, store.ClaimParams{Processor: "p1", Slots: map[string]int{typ: 1}, LeaseTTL: ttl, Now: now})
			if len(got) != 1 {
				t.Fatalf("claim %s: %d jobs", typ, len(got))
			}
			return got[0]
		}
		requeue := take("x.requeue", ttl, T0)
		fail := take("x.fail", ttl, T0)
		canc := take("x.cancel", ttl, T0)
		live := take("x.live", time.Hour, T0)
		edge := take("x.edge", ttl, at(5*time.Second)) // lease until exactly now
		cancel(t, s, canc.ID, T0)
		now := at(15 * time.Second)

		res, err := s.JobRescue(t.Context(), now)
		if err != nil {
			t.Fatalf("JobRescue: %v", err)
		}
		if res.Requeued != 1 || res.Failed != 1 || res.Canceled != 1 || !slices.Equal(res.Types, []string{"x.requeue"}) {
			t.Errorf("rescue result %+v, want 1 requeued (x.requeue), 1 failed, 1 canceled", res)
		}
		wantEnded := map[string]map[model.JobState]int{"x.fail": {model.JobFailed: 1}, "x.cancel": {model.JobCanceled: 1}}
		if fmt.Sprint(res.Ended) != fmt.Sprint(wantEnded) {
			t.Errorf("rescue ended %v, want %v", res.Ended, wantEnded)
		}

		g := get(t, s, requeue.ID)
		wantState(t, "expired with attempts left", g, model.JobQueued)
		if g.Attempt != 1 || g.Epoch != 1 {
			t.Errorf("requeued: attempt %d epoch %d, want 1 1", g.Attempt, g.Epoch)
		}
		g = get(t, s, fail.ID)
		wantState(t, "expired, no attempt left", g, model.JobFailed)
		if !strings.Contains(strings.ToLower(g.Error), "lease") {
			t.Errorf("error %q should say the lease expired", g.Error)
		}
		sameTimePtr(t, "FinishedAt", g.FinishedAt, now)
		g = get(t, s, canc.ID)
		wantState(t, "expired with cancel asked", g, model.JobCanceled)
		sameTimePtr(t, "FinishedAt", g.FinishedAt, now)
		sameJob(t, "unexpired lease", get(t, s, live.ID), live)
		sameJob(t, "lease expiring exactly now", get(t, s, edge.ID), edge)

		// The requeued job is claimable at once; its old holder is fenced.
		again := claimOne(t, s, "x.requeue", "p2", now)
		if again.Attempt != 2 || again.Epoch != 2 {
			t.Errorf("re-claim: attempt %d epoch %d, want 2 2", again.Attempt, again.Epoch)
		}
		_, err = s.JobComplete(t.Context(), model.Completion{ID: requeue.ID, Epoch: requeue.Epoch}, now)
		wantErr(t, "old holder completes after rescue and re-claim", err, model.ErrConflict)
		hb, err := s.JobHeartbeat(t.Context(), []model.Heartbeat{{ID: requeue.ID, Epoch: requeue.Epoch}}, ttl, now)
		if err != nil || len(hb) != 1 || hb[0].Status != model.LeaseLost {
			t.Errorf("old holder heartbeat: %+v, %v; want lost", hb, err)
		}
		complete(t, s, model.Completion{ID: again.ID, Epoch: again.Epoch}, now)

		res, err = s.JobRescue(t.Context(), now)
		if err != nil || res.Requeued+res.Failed+res.Canceled != 0 || len(res.Types) != 0 {
			t.Errorf("second rescue: %+v, %v; want nothing", res, err)
		}
	})

	t.Run("OldHolderBeforeReclaim", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		insertN(t, s, T0, "x.old", 1)
		j := claimOne(t, s, "x.old", "p1", T0)
		if _, err := s.JobRescue(t.Context(), at(time.Hour)); err != nil {
			t.Fatalf("JobRescue: %v", err)
		}
		// Not an "exact repeat": no report under this epoch took effect.
		_, err := s.JobComplete(t.Context(), model.Completion{ID: j.ID, Epoch: j.Epoch}, at(time.Hour))
		wantErr(t, "old holder completes a rescued job", err, model.ErrConflict)
		_, err = s.JobRelease(t.Context(), j.ID, j.Epoch, at(time.Hour))
		wantErr(t, "old holder releases a rescued job", err, model.ErrConflict)
		wantState(t, "rescued", get(t, s, j.ID), model.JobQueued)
	})
}
