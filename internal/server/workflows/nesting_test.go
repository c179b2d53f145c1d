package workflows_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/dpe-engine/dpe/internal/model"
	"github.com/dpe-engine/dpe/internal/server/workflows"
	"github.com/dpe-engine/dpe/internal/template"
)

// TestImportRefusesCycle is the static half of finding 2 of issue 13: a
// template whose step starts itself, directly or through the stored
// templates, is refused at import naming the step and the cycle.
func TestImportRefusesCycle(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	imp := func(src string) error {
		t.Helper()
		_, _, err := b.flows.Import(ctx, []byte(src))
		return err
	}
	if err := imp("name: a\nsteps:\n  - {id: sub, workflow: wf}\n"); err != nil {
		t.Fatal(err)
	}
	if err := imp("name: b\nsteps:\n  - {id: sub, workflow: a}\n"); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, src, step, cycle string // cycle "": accepted
	}{
		{"starts itself", "name: loop\nsteps:\n  - {id: again, workflow: loop}\n", "again", "loop -> loop"},
		{"starts itself in a branch", "name: loop\nsteps:\n  - id: maybe\n    if: \"true\"\n    then:\n      - {id: deep, workflow: loop}\n", "deep", "loop -> loop"},
		{"through another template", "name: a\nsteps:\n  - {id: back, workflow: b}\n", "back", "a -> b -> a"},
		{"a chain without a cycle", "name: c\nsteps:\n  - {id: sub, workflow: b}\n", "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := imp(tc.src)
			if tc.cycle == "" {
				if err != nil {
					t.Fatalf("import: %v", err)
				}
				return
			}
			var ve *template.ValidationError
			if !errors.As(err, &ve) || len(ve.Problems) != 1 {
				t.Fatalf("import = %v, want one validation problem", err)
			}
			p := ve.Problems[0]
			if p.Step != tc.step || p.Field != "workflow" || !strings.Contains(p.Reason, tc.cycle) {
				t.Errorf("problem %+v, want step %s, field workflow, cycle %q", p, tc.step, tc.cycle)
			}
		})
	}
}

// nest claims the one due instance and advances it with a running step
// "sub" that starts a child of template wf; it returns the advance's
// answer.
func nest(t *testing.T, b bundle) (model.Instance, model.Instance, error) {
	t.Helper()
	ctx := context.Background()
	held, err := b.flows.Claim(ctx, model.InstanceClaimRequest{Worker: "w", Default: 5, LeaseTTL: model.Duration(time.Minute)})
	if err != nil || len(held) != 1 {
		t.Fatalf("claim: %+v, %v; want one instance", held, err)
	}
	in := held[0]
	now := b.clock.Now()
	adv := model.Advance{InstanceID: in.ID, Worker: "w", Epoch: in.Epoch, WakeSeq: in.WakeSeq, State: model.InstanceRunning,
		Steps:    []model.Step{{Path: "sub", ID: "sub", Kind: "workflow", State: model.StepRunning, StartedAt: now}},
		Children: []model.InstanceSpec{{Template: "wf", Name: in.Name + "/sub", ParentID: in.ID, ParentStep: "sub"}},
	}
	res, err := b.flows.AdvanceMany(ctx, []model.Advance{adv})
	if err != nil {
		return in, model.Instance{}, err
	}
	return in, res[0].Instance, res[0].Err
}

// TestNestingDepthCap is the run-time half of finding 2: instances that
// keep starting children stop at workflows.MaxDepth, the step that would
// go deeper failed with the reason and no child made.
func TestNestingDepthCap(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	b.start(t, model.InstanceSpec{Template: "wf", Name: "top"}, "")
	for depth := 1; depth < workflows.MaxDepth; depth++ {
		if _, _, err := nest(t, b); err != nil {
			t.Fatalf("depth %d: %v", depth, err)
		}
	}
	in, after, err := nest(t, b)
	if err != nil {
		t.Fatal(err)
	}
	page, err := b.flows.List(ctx, model.InstanceFilter{ParentID: in.ID})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Items) != 0 {
		t.Fatalf("instance at depth %d started %d children, want none", workflows.MaxDepth, len(page.Items))
	}
	d, err := b.flows.Detail(ctx, in.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Steps) != 1 || d.Steps[0].State != model.StepFailed || !strings.Contains(d.Steps[0].Error, "nest at most 16") {
		t.Fatalf("steps %+v, want sub failed naming the cap", d.Steps)
	}
	if after.WakeAt == nil {
		t.Error("the instance is not woken to take the failure")
	}
}

// TestCancelStopsDescendants: cancelling the top of a tree asks every
// descendant to stop at once, and a descendant decided before the cancel
// starts no new child.
func TestCancelStopsDescendants(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	top, _ := b.start(t, model.InstanceSpec{Template: "wf", Name: "top"}, "")
	for range 3 {
		if _, _, err := nest(t, b); err != nil {
			t.Fatal(err)
		}
	}
	// The deepest child is due; claim it before the cancel lands.
	held, err := b.flows.Claim(ctx, model.InstanceClaimRequest{Worker: "w", Default: 5, LeaseTTL: model.Duration(time.Minute)})
	if err != nil || len(held) != 1 {
		t.Fatalf("claim: %+v %v", held, err)
	}
	if _, err := b.flows.Cancel(ctx, top.ID); err != nil {
		t.Fatal(err)
	}
	page, err := b.flows.List(ctx, model.InstanceFilter{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range page.Items {
		if !i.CancelAsked && !i.State.Final() {
			t.Errorf("instance %s neither cancelled nor asked to", i.Name)
		}
	}
	in := held[0]
	now := b.clock.Now()
	res, err := b.flows.AdvanceMany(ctx, []model.Advance{{InstanceID: in.ID, Worker: "w", Epoch: in.Epoch, WakeSeq: in.WakeSeq, State: model.InstanceRunning,
		Steps:    []model.Step{{Path: "sub", ID: "sub", Kind: "workflow", State: model.StepRunning, StartedAt: now}},
		Children: []model.InstanceSpec{{Template: "wf", Name: in.Name + "/sub", ParentID: in.ID, ParentStep: "sub"}},
	}})
	if err != nil || res[0].Err != nil {
		t.Fatalf("advance: %v %+v", err, res)
	}
	kids, err := b.flows.List(ctx, model.InstanceFilter{ParentID: in.ID})
	if err != nil {
		t.Fatal(err)
	}
	if len(kids.Items) != 0 {
		t.Errorf("a cancelled tree grew a child: %+v", kids.Items)
	}
}
