package main

import (
	"cmp"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/dpe-engine/dpe/internal/client"
	"github.com/dpe-engine/dpe/internal/model"
)

// stepsTemplate is the step-latency workflow: three noop jobs in sequence.
const stepsTemplate = `name: bench-steps
description: dpe bench - three noop jobs in sequence (step-to-step latency)
steps:
  - {id: first, job: noop}
  - {id: second, job: noop}
  - {id: third, job: noop}
`

// Steps is the step-latency phase: instances of bench-steps started one
// at a time on an idle system (the next starts once the last one ended),
// driven by one `dpe worker` and one processor. The latency of a step
// change is the server's created_at of a step's job minus the finished_at
// of the previous step's job (both the server's clock; SQLite stores
// milliseconds, so ±1 ms there).
type Steps struct {
	Revision  string  `json:"revision"`
	Instances int     `json:"instances"`
	Failed    int     `json:"failed"`
	StepToJob Latency `json:"step_to_step"`
	// Slowest are the five longest step changes, in ms, slowest first:
	// whether a tail is one stall or many.
	Slowest []float64 `json:"slowest_ms"`
	// Instance is start acknowledged → instance finished_at (the server's
	// finished_at, read by a 20 ms poll that does not add to it).
	Instance Latency `json:"instance"`
	// Usage holds the server's time per route during the phase: where a
	// step change spends its time (completion, worker claim, advance).
	Usage
}

func (r *run) steps(ctx context.Context, n int, revision string) (*Steps, error) {
	if _, err := r.c.ImportTemplate(ctx, []byte(stepsTemplate), "application/yaml"); err != nil {
		return nil, fmt.Errorf("import template: %w", err)
	}
	if err := r.cl.startProcessors(ctx, 1, 4, false); err != nil {
		return nil, err
	}
	defer r.cl.stopWorkers()
	if err := r.cl.startWorker(ctx); err != nil {
		return nil, err
	}
	res := &Steps{Revision: revision, Instances: n}
	m := r.startMeter(ctx, false, "steps")
	var gaps, whole []time.Duration
	for i := range n {
		inst, err := r.c.StartWorkflow(ctx, model.InstanceSpec{Template: "bench-steps", Name: fmt.Sprintf("bench-steps/%d", i)})
		if err != nil {
			return nil, fmt.Errorf("start instance %d: %w", i, err)
		}
		acked := time.Now()
		end, err := r.waitInstance(ctx, inst.ID, 30*time.Second)
		if err != nil {
			return nil, err
		}
		if end.State != model.InstanceSucceeded {
			res.Failed++
			continue
		}
		if end.FinishedAt != nil {
			whole = append(whole, end.FinishedAt.Sub(acked))
		}
		page, err := r.c.ListJobs(ctx, client.JobQuery{Workflow: inst.ID, Limit: 10})
		if err != nil {
			return nil, fmt.Errorf("jobs of instance %d: %w", inst.ID, err)
		}
		jobs := page.Items
		if len(jobs) != 3 {
			return nil, fmt.Errorf("instance %d has %d jobs, want 3", inst.ID, len(jobs))
		}
		order := map[string]int{"first": 0, "second": 1, "third": 2}
		sort.Slice(jobs, func(a, b int) bool { return order[jobs[a].Step] < order[jobs[b].Step] })
		for k := 1; k < len(jobs); k++ {
			prev := jobs[k-1]
			if prev.FinishedAt == nil {
				return nil, fmt.Errorf("job %d (step %s) has no finished_at", prev.ID, prev.Step)
			}
			gaps = append(gaps, jobs[k].CreatedAt.Sub(*prev.FinishedAt))
		}
	}
	res.Usage = m.stop(ctx)
	res.StepToJob = summarize(gaps)
	sorted := slices.Clone(gaps)
	slices.SortFunc(sorted, func(a, b time.Duration) int { return cmp.Compare(b, a) })
	for _, d := range sorted[:min(5, len(sorted))] {
		res.Slowest = append(res.Slowest, ms(d))
	}
	res.Instance = summarize(whole)
	return res, nil
}

// waitInstance polls the instance every 20 ms until it is final: often
// enough to keep the phase short, rarely enough not to load the server
// whose step changes are measured (a 2 ms poll was a third of its time).
func (r *run) waitInstance(ctx context.Context, id int64, timeout time.Duration) (model.Instance, error) {
	deadline := time.Now().Add(timeout)
	for {
		d, err := r.c.GetWorkflow(ctx, id)
		if err != nil {
			return model.Instance{}, fmt.Errorf("instance %d: %w", id, err)
		}
		if d.Instance.State.Final() {
			return d.Instance, nil
		}
		if time.Now().After(deadline) {
			return d.Instance, fmt.Errorf("instance %d still %s after %s", id, d.Instance.State, timeout)
		}
		select {
		case <-ctx.Done():
			return d.Instance, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// buildRevision checks rev out into a detached git worktree under tmp and
// builds its cmd/dpe there: the baseline the steps phase compares with.
// The worktree is removed again before it returns.
func buildRevision(ctx context.Context, repo, rev, tmp string) (bin, short string, err error) {
	out, err := exec.CommandContext(ctx, "git", "-C", repo, "rev-parse", "--short", rev+"^{commit}").Output()
	if err != nil {
		return "", "", fmt.Errorf("-baseline-rev %s: not a commit of %s: %w", rev, repo, err)
	}
	short = strings.TrimSpace(string(out))
	wt := filepath.Join(tmp, "baseline-src")
	if out, err := exec.CommandContext(ctx, "git", "-C", repo, "worktree", "add", "--detach", wt, short).CombinedOutput(); err != nil {
		return "", "", fmt.Errorf("git worktree add %s: %w\n%s", short, err, out)
	}
	defer func() {
		if out, err := exec.Command("git", "-C", repo, "worktree", "remove", "--force", wt).CombinedOutput(); err != nil {
			logf("git worktree remove %s: %v: %s", wt, err, out)
		}
	}()
	dir := filepath.Join(tmp, "baseline-bin")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", "", err
	}
	bin, err = buildDPE(ctx, wt, dir)
	return bin, short, err
}
