package workflows_test

import (
	"context"
	"testing"
	"time"

	"github.com/dpe-engine/dpe/internal/model"
)

// TestLogStepsStored: the messages of the `log` steps an advance ends go
// to the instance's log, through Advance and AdvanceMany alike; other
// steps, and a log step still running, write nothing.
func TestLogStepsStored(t *testing.T) {
	for _, many := range []bool{false, true} {
		b := setup(t)
		ctx := context.Background()
		b.start(t, model.InstanceSpec{Template: "wf", Name: "logged"}, "")
		held, err := b.flows.Claim(ctx, model.InstanceClaimRequest{Worker: "w", Default: 5, LeaseTTL: model.Duration(time.Minute)})
		if err != nil || len(held) != 1 {
			t.Fatalf("claim: %+v, %v; want one instance", held, err)
		}
		in := held[0]
		now := b.clock.Now()
		end := now.Add(time.Second)
		adv := model.Advance{InstanceID: in.ID, Worker: "w", Epoch: in.Epoch, WakeSeq: in.WakeSeq, State: model.InstanceRunning,
			Steps: []model.Step{
				{Path: "hello", ID: "hello", Kind: "log", State: model.StepSucceeded, StartedAt: now, FinishedAt: &end, Result: []byte(`{"message":"hello world"}`)},
				{Path: "later", ID: "later", Kind: "log", State: model.StepRunning, StartedAt: now},
				{Path: "v", ID: "v", Kind: "set", State: model.StepSucceeded, StartedAt: now, FinishedAt: &end, Result: []byte(`{"message":"not a log"}`)},
			},
		}
		if many {
			res, err := b.flows.AdvanceMany(ctx, []model.Advance{adv})
			if err != nil || res[0].Err != nil {
				t.Fatalf("AdvanceMany: %v, %+v", err, res)
			}
		} else if _, err := b.flows.Advance(ctx, adv); err != nil {
			t.Fatalf("Advance: %v", err)
		}
		lines, err := b.store.LogList(ctx, model.LogFilter{InstanceID: in.ID})
		if err != nil {
			t.Fatal(err)
		}
		if len(lines) != 1 || lines[0].Message != "hello world" || !lines[0].At.Equal(end) || lines[0].Level != model.LogInfo {
			t.Errorf("many=%v: log = %+v, want one info line hello world at %v", many, lines, end)
		}
	}
}
