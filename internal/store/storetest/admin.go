package storetest

import (
	"maps"
	"testing"
	"time"

	"github.com/dpe-engine/dpe/internal/model"
)

// testJobCancel covers cancel in every state.
func testJobCancel(t *testing.T, open Opener) {
	t.Run("Queued", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		j := insertN(t, s, T0, "k.a", 1)[0]
		got := cancel(t, s, j.ID, at(time.Second))
		wantState(t, "canceled queued job", got, model.JobCanceled)
		sameTimePtr(t, "FinishedAt", got.FinishedAt, at(time.Second))
		sameJob(t, "JobGet", get(t, s, j.ID), got)
		if c := claimN(t, s, "k.a", "p1", 1, at(time.Second)); len(c) != 0 {
			t.Fatal("canceled job claimed")
		}
	})

	t.Run("WaitingForRetry", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		insertN(t, s, T0, "k.r", 1)
		j := claimOne(t, s, "k.r", "p1", T0)
		complete(t, s, model.Completion{ID: j.ID, Epoch: j.Epoch, Error: "x"}, T0)
		got := cancel(t, s, j.ID, at(time.Second))
		wantState(t, "canceled during back-off", got, model.JobCanceled)
	})

	t.Run("Running", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		insertN(t, s, T0, "k.b", 1)
		j := claimOne(t, s, "k.b", "p1", T0)
		got := cancel(t, s, j.ID, at(time.Second))
		wantState(t, "cancel of a running job", got, model.JobRunning)
		if !got.CancelAsked {
			t.Error("CancelAsked not set")
		}
		noTime(t, "FinishedAt", got.FinishedAt)
		again := cancel(t, s, j.ID, at(2*time.Second))
		wantState(t, "second cancel", again, model.JobRunning)
		if !again.CancelAsked {
			t.Error("CancelAsked lost")
		}
		hb, err := s.JobHeartbeat(t.Context(), []model.Heartbeat{{ID: j.ID, Epoch: j.Epoch}}, time.Minute, at(3*time.Second))
		if err != nil || len(hb) != 1 || hb[0].Status != model.LeaseCanceled {
			t.Errorf("heartbeat after cancel: %+v, %v; want canceled", hb, err)
		}
	})

	t.Run("Canceled", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		j := insertN(t, s, T0, "k.c", 1)[0]
		first := cancel(t, s, j.ID, at(time.Second))
		again := cancel(t, s, j.ID, at(time.Minute))
		sameJob(t, "cancel of a canceled job", again, first)
	})

	t.Run("FinalConflicts", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		insert(t, s, T0, model.JobSpec{Type: "k.d"}, model.JobSpec{Type: "k.d", MaxAttempts: 1})
		ok := claimOne(t, s, "k.d", "p1", T0)
		bad := claimOne(t, s, "k.d", "p1", T0)
		complete(t, s, model.Completion{ID: ok.ID, Epoch: ok.Epoch}, T0)
		complete(t, s, model.Completion{ID: bad.ID, Epoch: bad.Epoch, Error: "x"}, T0)
		for _, id := range []int64{ok.ID, bad.ID} {
			before := get(t, s, id)
			_, err := s.JobCancel(t.Context(), id, at(time.Second))
			wantErr(t, "cancel of a "+string(before.State)+" job", err, model.ErrConflict)
			sameJob(t, "after refused cancel", get(t, s, id), before)
		}
		_, err := s.JobCancel(t.Context(), 1<<40, T0)
		wantErr(t, "cancel of a missing job", err, model.ErrNotFound)
	})
}

// testJobSetPriority covers re-prioritising one job.
func testJobSetPriority(t *testing.T, open Opener) {
	t.Parallel()
	s := open(t)
	jobs := insertN(t, s, T0, "s.a", 3)
	got, err := s.JobSetPriority(t.Context(), jobs[2].ID, 9, at(time.Second))
	if err != nil {
		t.Fatalf("JobSetPriority: %v", err)
	}
	if got.Priority != 9 || get(t, s, jobs[2].ID).Priority != 9 {
		t.Fatalf("priority %d, want 9", got.Priority)
	}
	if first := claimOne(t, s, "s.a", "p1", at(time.Second)); first.ID != jobs[2].ID {
		t.Errorf("claimed %d first, want the raised job %d", first.ID, jobs[2].ID)
	}
	// A running job can still be re-prioritised.
	run := get(t, s, jobs[2].ID)
	if got, err := s.JobSetPriority(t.Context(), run.ID, -5, at(2*time.Second)); err != nil || got.Priority != -5 {
		t.Errorf("priority of a running job: %+v, %v", got, err)
	}
	complete(t, s, model.Completion{ID: run.ID, Epoch: run.Epoch}, at(3*time.Second))
	cancel(t, s, jobs[0].ID, at(3*time.Second))
	for _, id := range []int64{run.ID, jobs[0].ID} {
		_, err := s.JobSetPriority(t.Context(), id, 1, at(4*time.Second))
		wantErr(t, "priority of a final job", err, model.ErrConflict)
	}
	_, err = s.JobSetPriority(t.Context(), 1<<40, 1, T0)
	wantErr(t, "priority of a missing job", err, model.ErrNotFound)
}

// testJobSetPriorityByInstance covers re-prioritising an instance's queued
// jobs.
func testJobSetPriorityByInstance(t *testing.T, open Opener) {
	t.Parallel()
	s := open(t)
	jobs := insert(t, s, T0,
		model.JobSpec{Type: "i.a", InstanceID: 7}, // queued
		model.JobSpec{Type: "i.a", InstanceID: 7}, // queued
		model.JobSpec{Type: "i.b", InstanceID: 7}, // running
		model.JobSpec{Type: "i.c", InstanceID: 7}, // succeeded
		model.JobSpec{Type: "i.a", InstanceID: 8}, // other instance
		model.JobSpec{Type: "i.a"},                // no instance
	)
	claimOne(t, s, "i.b", "p1", T0)
	c := claimOne(t, s, "i.c", "p1", T0)
	complete(t, s, model.Completion{ID: c.ID, Epoch: c.Epoch}, T0)

	n, err := s.JobSetPriorityByInstance(t.Context(), 7, 50, at(time.Second))
	if err != nil {
		t.Fatalf("JobSetPriorityByInstance: %v", err)
	}
	if n != 2 {
		t.Errorf("changed %d, want 2", n)
	}
	for i, want := range []int{50, 50, 0, 0, 0, 0} {
		if got := get(t, s, jobs[i].ID).Priority; got != want {
			t.Errorf("job %d priority %d, want %d", i, got, want)
		}
	}
	if n, err := s.JobSetPriorityByInstance(t.Context(), 99, 5, T0); err != nil || n != 0 {
		t.Errorf("unknown instance: %d, %v; want 0, nil", n, err)
	}
}

// testJobCounts covers counts per state.
func testJobCounts(t *testing.T, open Opener) {
	t.Parallel()
	s := open(t)
	counts, err := s.JobCounts(t.Context())
	if err != nil || len(counts) != 0 {
		t.Fatalf("JobCounts on an empty store: %v, %v", counts, err)
	}
	insert(t, s, T0, model.JobSpec{Type: "n.a"}, model.JobSpec{Type: "n.a"}, model.JobSpec{Type: "n.a"},
		model.JobSpec{Type: "n.a"}, model.JobSpec{Type: "n.a", MaxAttempts: 1}, model.JobSpec{Type: "n.b"})
	run := claimN(t, s, "n.a", "p1", 5, T0)
	complete(t, s, model.Completion{ID: run[0].ID, Epoch: 1}, T0)
	complete(t, s, model.Completion{ID: run[4].ID, Epoch: 1, Error: "x", Permanent: true}, T0)
	cancel(t, s, run[1].ID, T0) // running: stays running
	b, _ := s.JobList(t.Context(), model.JobFilter{Types: []string{"n.b"}, Limit: 1})
	cancel(t, s, b.Items[0].ID, T0)
	counts, err = s.JobCounts(t.Context())
	if err != nil {
		t.Fatalf("JobCounts: %v", err)
	}
	want := map[model.JobState]int{model.JobRunning: 3, model.JobSucceeded: 1, model.JobFailed: 1, model.JobCanceled: 1}
	if !maps.Equal(counts, want) {
		t.Errorf("counts %v, want %v (states with none absent)", counts, want)
	}
}

// testJobPurge covers deleting old final jobs.
func testJobPurge(t *testing.T, open Opener) {
	t.Parallel()
	s := open(t)
	jobs := insert(t, s, T0,
		model.JobSpec{Type: "u.a"},                 // succeeded at +1m
		model.JobSpec{Type: "u.a", MaxAttempts: 1}, // failed at +2m
		model.JobSpec{Type: "u.a"},                 // succeeded at +10m
		model.JobSpec{Type: "u.a"},                 // running
		model.JobSpec{Type: "u.b"},                 // canceled at +3m
		model.JobSpec{Type: "u.c"},                 // queued
	)
	for range 4 {
		claimOne(t, s, "u.a", "p1", T0) // FIFO: jobs[0] to jobs[3]
	}
	complete(t, s, model.Completion{ID: jobs[0].ID, Epoch: 1}, at(time.Minute))
	complete(t, s, model.Completion{ID: jobs[1].ID, Epoch: 1, Error: "x"}, at(2*time.Minute))
	complete(t, s, model.Completion{ID: jobs[2].ID, Epoch: 1}, at(10*time.Minute))
	cancel(t, s, jobs[4].ID, at(3*time.Minute))

	n, err := s.JobPurge(t.Context(), at(5*time.Minute))
	if err != nil {
		t.Fatalf("JobPurge: %v", err)
	}
	if n != 3 {
		t.Errorf("purged %d, want 3", n)
	}
	for i, gone := range []bool{true, true, false, false, true, false} {
		_, err := s.JobGet(t.Context(), jobs[i].ID)
		if gone {
			wantErr(t, "purged job", err, model.ErrNotFound)
		} else if err != nil {
			t.Errorf("job %d: %v, want kept", i, err)
		}
	}
	if n, err := s.JobPurge(t.Context(), at(5*time.Minute)); err != nil || n != 0 {
		t.Errorf("second purge: %d, %v", n, err)
	}
}
