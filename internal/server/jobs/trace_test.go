package jobs_test

import (
	"context"
	"testing"
	"time"

	"github.com/dpe-engine/dpe/internal/model"
	"github.com/dpe-engine/dpe/internal/tracing"
)

// TestClaimTrace: a claim that asks for trace contexts gets, on each
// workflow job, the traceparent of its step's span in its instance's
// trace (derived from the stored instance), none on a job of its own; a
// claim that does not ask gets none.
func TestClaimTrace(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	src := "name: t\nsteps:\n  - {id: a, job: noop}\n"
	if _, _, err := b.store.TemplatePut(ctx, model.Template{Name: "t", Version: 1, Source: src, Canonical: []byte(`{}`)}, t0); err != nil {
		t.Fatal(err)
	}
	inst, _, err := b.store.InstanceCreate(ctx, model.InstanceSpec{Template: "t", Version: 1, Name: "i1"}, t0.Add(1234567*time.Nanosecond))
	if err != nil {
		t.Fatal(err)
	}
	stored, err := b.store.InstanceGet(ctx, inst.ID)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		spec  model.JobSpec
		trace bool
		want  string
	}{
		{"workflow job, asked", model.JobSpec{Type: "noop", InstanceID: inst.ID, Step: "fan[1]/a"}, true, tracing.JobParent(stored, "fan[1]/a")},
		{"workflow job, not asked", model.JobSpec{Type: "noop", InstanceID: inst.ID, Step: "a"}, false, ""},
		{"job of its own, asked", model.JobSpec{Type: "noop"}, true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			j := b.submit(t, tt.spec)
			js, err := b.svc.Claim(ctx, model.ClaimRequest{Processor: "p1", Slots: map[string]int{"noop": 10}, Trace: tt.trace}, "")
			if err != nil {
				t.Fatal(err)
			}
			if len(js) != 1 || js[0].ID != j.ID {
				t.Fatalf("claimed %v, want job %d", js, j.ID)
			}
			if js[0].Trace != tt.want {
				t.Errorf("trace %q, want %q", js[0].Trace, tt.want)
			}
		})
	}
}
