package workflows

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/dpe-engine/dpe/internal/model"
	"github.com/dpe-engine/dpe/internal/server/wake"
	"github.com/dpe-engine/dpe/internal/store"
	"github.com/dpe-engine/dpe/internal/template"
	"github.com/dpe-engine/dpe/internal/wire"
)

// Claim hands a worker the instances that need its attention: those it
// holds that an event woke, and free ones (new, or whose worker died) up to
// its free capacity. It long-polls up to req.Wait.
func (s *Service) Claim(ctx context.Context, req model.InstanceClaimRequest) ([]model.Instance, error) {
	if req.Worker == "" {
		return nil, model.Invalid("worker", "required")
	}
	if err := wire.CheckName("worker", req.Worker); err != nil {
		return nil, err
	}
	ttl := req.LeaseTTL.D()
	if ttl == 0 {
		ttl = DefaultLeaseTTL
	}
	if ttl < time.Second || ttl > 10*time.Minute {
		return nil, model.Invalid("lease_ttl", "must be between 1s and 10m, got %s", ttl)
	}
	limit := req.Limit
	if limit <= 0 || limit > MaxClaim {
		limit = MaxClaim
	}
	for t, n := range req.Slots {
		if n < 0 {
			return nil, model.Invalid("slots."+t, "must not be negative")
		}
	}
	if req.Default < 0 {
		return nil, model.Invalid("default", "must not be negative")
	}
	if len(req.Exclude) > MaxExclude {
		return nil, model.Invalid("exclude", "at most %d ids, got %d", MaxExclude, len(req.Exclude))
	}
	p := store.InstanceClaimParams{Worker: req.Worker, Templates: req.Templates, Slots: req.Slots, Default: req.Default,
		Exclude: req.Exclude, Limit: limit, LeaseTTL: ttl}
	var out []model.Instance
	err := s.wake.Poll(ctx, []string{wake.Instances}, min(req.Wait.D(), MaxWait), s.tick, func() (bool, error) {
		p.Now = s.clock.Now()
		var err error
		out, err = s.store.InstanceClaim(ctx, p)
		if err != nil {
			return false, fmt.Errorf("claim instances: %w", err)
		}
		return len(out) > 0, nil
	})
	if err != nil {
		return nil, err
	}
	if out == nil {
		out = []model.Instance{}
	}
	return out, nil
}

// ClaimDetailed is Claim answering with each claimed instance's detail
// too (InstanceClaimRequest.Detail), read after the claim committed: a
// worker decides without one more call per instance.
func (s *Service) ClaimDetailed(ctx context.Context, req model.InstanceClaimRequest) (model.InstanceClaimAnswer, error) {
	list, err := s.Claim(ctx, req)
	if err != nil || !req.Detail || len(list) == 0 {
		return model.InstanceClaimAnswer{Items: list}, err
	}
	ids := make([]int64, len(list))
	for i, inst := range list {
		ids[i] = inst.ID
	}
	ds, err := s.store.InstanceDetails(ctx, ids)
	if err != nil {
		// The leases are taken: the worker claims them again (they stay
		// due) once the database answers.
		return model.InstanceClaimAnswer{}, fmt.Errorf("details of %d claimed instances: %w", len(ids), err)
	}
	return model.InstanceClaimAnswer{Items: list, Details: ds}, nil
}

// Detail returns an instance with its steps and the jobs and children its
// running steps wait for.
func (s *Service) Detail(ctx context.Context, id int64) (model.InstanceDetail, error) {
	ds, err := s.store.InstanceDetails(ctx, []int64{id})
	if err != nil {
		return model.InstanceDetail{}, fmt.Errorf("instance %d: %w", id, err)
	}
	if len(ds) == 0 {
		return model.InstanceDetail{}, fmt.Errorf("instance %d: %w", id, model.ErrNotFound)
	}
	return ds[0], nil
}

// Advance applies a worker's decision under its lease epoch. A stale epoch
// is model.ErrConflict: the worker lost the instance and must drop it.
func (s *Service) Advance(ctx context.Context, a model.Advance) (model.Instance, error) {
	if err := checkAdvance(a); err != nil {
		return model.Instance{}, err
	}
	if err := s.limitNesting(ctx, &a, s.clock.Now()); err != nil {
		return model.Instance{}, err
	}
	s.logSteps(ctx, a)
	inst, err := s.store.InstanceAdvance(ctx, a, s.clock.Now())
	if err != nil {
		return inst, fmt.Errorf("advance instance %d: %w", a.InstanceID, err)
	}
	s.signalAdvanced(a, inst)
	return inst, nil
}

// AdvanceMany applies many decisions with one commit (group commit); each
// result is what Advance would have answered for it. An advance that is
// invalid, or whose instance appears earlier in the batch, is refused on
// its own. When the batch fails for another reason than the database
// being unreachable (one advance's work refused, say), each advance is
// tried again in its own transaction, so that one bad decision cannot hold
// back the others.
func (s *Service) AdvanceMany(ctx context.Context, as []model.Advance) ([]store.AdvanceResult, error) {
	if len(as) > MaxAdvances {
		return nil, model.Invalid("advances", "at most %d per call, got %d", MaxAdvances, len(as))
	}
	out := make([]store.AdvanceResult, len(as))
	var idx []int
	var batch []model.Advance
	seen := make(map[int64]bool, len(as))
	now := s.clock.Now()
	for i, a := range as {
		err := checkAdvance(a)
		if err == nil {
			err = s.limitNesting(ctx, &a, now)
			if errors.Is(err, model.ErrUnavailable) {
				return nil, err
			}
		}
		if err == nil && seen[a.InstanceID] {
			err = model.Invalid("advances["+strconv.Itoa(i)+"].instance_id", "instance %d appears twice in the batch", a.InstanceID)
		}
		if err != nil {
			out[i].Err = err
			continue
		}
		seen[a.InstanceID] = true
		idx = append(idx, i)
		batch = append(batch, a)
	}
	if len(batch) == 0 {
		return out, nil
	}
	for _, a := range batch {
		s.logSteps(ctx, a)
	}
	res, err := s.store.InstanceAdvanceMany(ctx, batch, now)
	if err != nil {
		if errors.Is(err, model.ErrUnavailable) || ctx.Err() != nil {
			return nil, fmt.Errorf("advance %d instances: %w", len(batch), err)
		}
		res = make([]store.AdvanceResult, len(batch))
		for k, a := range batch {
			res[k].Instance, res[k].Err = s.store.InstanceAdvance(ctx, a, now)
			if errors.Is(res[k].Err, model.ErrUnavailable) {
				return nil, fmt.Errorf("advance instance %d: %w", a.InstanceID, res[k].Err)
			}
		}
	}
	for k, r := range res {
		i := idx[k]
		if r.Err != nil {
			out[i].Err = fmt.Errorf("advance instance %d: %w", batch[k].InstanceID, r.Err)
			continue
		}
		out[i] = r
		s.signalAdvanced(batch[k], r.Instance)
	}
	return out, nil
}

// checkAdvance refuses an advance no store should see.
func checkAdvance(a model.Advance) error {
	if a.Worker == "" {
		return model.Invalid("worker", "required")
	}
	if err := wire.CheckName("worker", a.Worker); err != nil {
		return err
	}
	if a.Epoch <= 0 {
		return model.Invalid("epoch", "required (the epoch of the claim)")
	}
	if !a.State.Valid() || a.State == model.InstancePending {
		return model.Invalid("state", "must be running, succeeded, failed or canceled, got %q", a.State)
	}
	if a.Progress < 0 || a.Progress > 100 {
		return model.Invalid("progress", "must be between 0 and 100")
	}
	for i, j := range a.Jobs {
		if j.InstanceID != a.InstanceID || j.Key == "" || j.Step == "" {
			return model.Invalid("jobs["+strconv.Itoa(i)+"]", "a workflow job needs the instance id, its step and a key")
		}
	}
	return nil
}

// signalAdvanced wakes the long polls an applied advance concerns: the
// claims of its jobs' types, and workers when it created children or
// ended (a parent or a queued instance to wake).
func (s *Service) signalAdvanced(a model.Advance, inst model.Instance) {
	s.metrics.Ended(inst)
	for _, j := range a.Jobs {
		s.wake.Signal(j.Type)
	}
	if len(a.Children) > 0 || inst.State.Final() {
		s.wake.Signal(wake.Instances)
	}
}

// logSteps stores the messages of the `log` steps an advance ends in its
// instance's log. Each such step is reported once, by the advance that
// ran it (a worker reports only changed steps). They are stored before
// the advance is applied, so that whoever sees the instance final finds
// every line of it (dpe workflow logs --follow); the price is a line
// written twice when the advance is then refused (the worker lost its
// lease, or the database failed) and the step runs again. A failure to
// store them is logged, not returned: the lines are not worth the run.
func (s *Service) logSteps(ctx context.Context, a model.Advance) {
	var lines []model.LogEntry
	for _, st := range a.Steps {
		if st.Kind != string(template.KindLog) || st.State != model.StepSucceeded {
			continue
		}
		var r struct{ Message string }
		if json.Unmarshal(st.Result, &r) != nil {
			continue
		}
		l := model.LogEntry{Level: model.LogInfo, Message: r.Message}
		if st.FinishedAt != nil {
			l.At = *st.FinishedAt
		}
		lines = append(lines, l)
	}
	if len(lines) == 0 {
		return
	}
	if err := s.store.LogAppend(ctx, a.InstanceID, 0, lines, s.clock.Now()); err != nil {
		s.log.WarnContext(ctx, "log lines of a workflow not stored", "instance", a.InstanceID, "lines", len(lines), "err", err)
	}
}

// Heartbeat renews a worker's instance leases and names the lost ones.
func (s *Service) Heartbeat(ctx context.Context, l model.InstanceLeases) ([]int64, error) {
	if l.Worker == "" {
		return nil, model.Invalid("worker", "required")
	}
	if err := wire.CheckName("worker", l.Worker); err != nil {
		return nil, err
	}
	ttl := l.LeaseTTL.D()
	if ttl == 0 {
		ttl = DefaultLeaseTTL
	}
	lost, err := s.store.InstanceHeartbeat(ctx, l.Worker, l.IDs, ttl, s.clock.Now())
	if err != nil {
		return nil, fmt.Errorf("instance heartbeat: %w", err)
	}
	if lost == nil {
		lost = []int64{}
	}
	return lost, nil
}

// Release drops a worker's leases so others take the instances at once.
func (s *Service) Release(ctx context.Context, l model.InstanceLeases) error {
	if l.Worker == "" {
		return model.Invalid("worker", "required")
	}
	if err := wire.CheckName("worker", l.Worker); err != nil {
		return err
	}
	if err := s.store.InstanceRelease(ctx, l.Worker, l.IDs, s.clock.Now()); err != nil {
		return fmt.Errorf("release instances: %w", err)
	}
	s.wake.Signal(wake.Instances)
	return nil
}
