package postgres

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/dpe-engine/dpe/internal/model"
	"github.com/dpe-engine/dpe/internal/store"
)

// Engine details beyond the conformance suite: what counts as an exact
// repeat of a report, and input refused before it reaches SQL.

func claimOneForTest(t *testing.T, s *Store, typ string, now time.Time) model.Job {
	t.Helper()
	if _, err := s.JobInsert(t.Context(), []model.JobSpec{{Type: typ}}, now); err != nil {
		t.Fatal(err)
	}
	jobs, err := s.JobClaim(t.Context(), store.ClaimParams{Processor: "p", Slots: map[string]int{typ: 1}, LeaseTTL: time.Minute, Now: now})
	if err != nil || len(jobs) != 1 {
		t.Fatalf("claim: %v, %v", jobs, err)
	}
	return jobs[0]
}

func TestRepeatMustBeExact(t *testing.T) {
	t.Parallel()
	s := newTestDB(t).open(t)
	ctx, now := t.Context(), time.Now()

	j := claimOneForTest(t, s, "r", now)
	first, err := s.JobComplete(ctx, model.Completion{ID: j.ID, Epoch: j.Epoch, Result: json.RawMessage(`{"n": 1}`)}, now)
	if err != nil {
		t.Fatal(err)
	}
	// Same report, other whitespace: a repeat.
	again, err := s.JobComplete(ctx, model.Completion{ID: j.ID, Epoch: j.Epoch, Result: json.RawMessage(`{"n":1}`)}, now.Add(time.Second))
	if err != nil || !again.UpdatedAt.Equal(first.UpdatedAt) {
		t.Fatalf("repeat: %v (updated %v, first %v)", err, again.UpdatedAt, first.UpdatedAt)
	}
	// Another outcome under the same epoch is not a repeat.
	for _, c := range []model.Completion{
		{ID: j.ID, Epoch: j.Epoch, Result: json.RawMessage(`{"n":2}`)},
		{ID: j.ID, Epoch: j.Epoch, Error: "boom"},
	} {
		if _, err := s.JobComplete(ctx, c, now); !errors.Is(err, model.ErrConflict) {
			t.Errorf("different report %+v: %v, want ErrConflict", c, err)
		}
	}

	// A release repeated is answered with the released job.
	k := claimOneForTest(t, s, "rel", now)
	released, err := s.JobRelease(ctx, k.ID, k.Epoch, now)
	if err != nil {
		t.Fatal(err)
	}
	again, err = s.JobRelease(ctx, k.ID, k.Epoch, now.Add(time.Second))
	if err != nil || again.State != model.JobQueued || again.Attempt != released.Attempt {
		t.Fatalf("repeated release: %+v, %v", again, err)
	}
	// But a completion under the released epoch is stale.
	if _, err := s.JobComplete(ctx, model.Completion{ID: k.ID, Epoch: k.Epoch}, now); !errors.Is(err, model.ErrConflict) {
		t.Errorf("completion after release: %v, want ErrConflict", err)
	}
}

func TestInvalidInput(t *testing.T) {
	t.Parallel()
	s := newTestDB(t).open(t)
	ctx, now := t.Context(), time.Now()
	for _, c := range []struct {
		spec  model.JobSpec
		field string
	}{
		{model.JobSpec{}, "jobs[1].type"},
		{model.JobSpec{Type: "x", Params: json.RawMessage(`{`)}, "jobs[1].params"},
		{model.JobSpec{Type: "x", Priority: model.MaxPriority + 1}, "jobs[1].priority"},
	} {
		_, err := s.JobInsert(ctx, []model.JobSpec{{Type: "ok"}, c.spec}, now)
		var fe *model.FieldError
		if !errors.As(err, &fe) || fe.Field != c.field {
			t.Errorf("insert %+v: %v, want a field error on %s", c.spec, err, c.field)
		}
	}
	if c, err := s.JobCounts(ctx); err != nil || len(c) != 0 {
		t.Errorf("refused batches left jobs: %v, %v", c, err)
	}
	if _, err := s.JobSetPriorityByInstance(ctx, 0, 5, now); !errors.Is(err, model.ErrInvalid) {
		t.Errorf("priority of instance 0: %v, want ErrInvalid", err)
	}
	j := claimOneForTest(t, s, "res", now)
	if _, err := s.JobComplete(ctx, model.Completion{ID: j.ID, Epoch: j.Epoch, Result: json.RawMessage(`nope`)}, now); !errors.Is(err, model.ErrInvalid) {
		t.Errorf("complete with a result that is not JSON: %v, want ErrInvalid", err)
	}
	for _, l := range []model.TypeLimit{{}, {Type: "t", MaxRunning: -1}, {Type: "t", Rate: -1}, {Type: "t", Burst: -1}} {
		if err := s.TypePut(ctx, l); !errors.Is(err, model.ErrInvalid) {
			t.Errorf("TypePut(%+v): %v, want ErrInvalid", l, err)
		}
	}
}
