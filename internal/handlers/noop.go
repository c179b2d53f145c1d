package handlers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/dpe-engine/dpe/internal/jobtype"
	"github.com/dpe-engine/dpe/internal/model"
)

// noopHandler runs noop, the job type of tests and benchmarks.
type noopHandler struct {
	cfg  Config
	spec jobtype.Spec
}

type noopParams struct {
	Sleep  model.Duration  `json:"sleep"`
	Fail   bool            `json:"fail"`
	Result json.RawMessage `json:"result"`
	Log    string          `json:"log"`
}

// errNoopFail is the retryable failure noop gives when asked to.
var errNoopFail = errors.New("noop: asked to fail")

// noopTicks is how many progress reports a noop sleep makes at most.
const noopTicks = 10

// Run writes the log param to the job's log, sleeps (reporting progress, stopping early when ctx ends), then
// fails when asked to, else returns the result param or {"slept": SLEEP}.
func (h *noopHandler) Run(ctx context.Context, t Task) (any, error) {
	var p noopParams
	if err := decode(h.spec, t.Params, &p); err != nil {
		return nil, err
	}
	if p.Log != "" {
		t.Logf(model.LogInfo, "%s", p.Log)
	}
	if err := sleep(ctx, t, p.Sleep.D()); err != nil {
		return nil, fmt.Errorf("noop: %w", err)
	}
	if p.Fail {
		return nil, errNoopFail
	}
	if len(p.Result) > 0 && string(p.Result) != "null" {
		return p.Result, nil
	}
	return map[string]string{"slept": p.Sleep.D().String()}, nil
}

// sleep waits for d or until ctx ends, reporting progress in noopTicks
// steps (none for sleeps under a second: they are over before anyone looks).
func sleep(ctx context.Context, t Task, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	var tick <-chan time.Time
	if d >= time.Second && t.Progress != nil {
		ticker := time.NewTicker(d / noopTicks)
		defer ticker.Stop()
		tick = ticker.C
	}
	for i := 1; ; i++ {
		select {
		case <-ctx.Done():
			return ctxErr(ctx)
		case <-timer.C:
			return nil
		case <-tick:
			if i < noopTicks {
				t.Progress(i*100/noopTicks, fmt.Sprintf("slept %s of %s", d*time.Duration(i)/noopTicks, d))
			}
		}
	}
}
