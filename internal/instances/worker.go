package instances

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/dpe-engine/dpe/internal/model"
	"github.com/dpe-engine/dpe/internal/store"
	"github.com/dpe-engine/dpe/internal/wake"
)

// Claim hands a worker the instances that need its attention: those it
// holds that an event woke, and free ones (new, or whose worker died) up to
// its free capacity. It long-polls up to req.Wait.
func (s *Service) Claim(ctx context.Context, req model.InstanceClaimRequest) ([]model.Instance, error) {
	if req.Worker == "" {
		return nil, model.Invalid("worker", "required")
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
	p := store.InstanceClaimParams{Worker: req.Worker, Templates: req.Templates, Slots: req.Slots, Default: req.Default, Limit: limit, LeaseTTL: ttl}
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

// Detail returns an instance with its steps and the jobs and children its
// running steps wait for.
func (s *Service) Detail(ctx context.Context, id int64) (model.InstanceDetail, error) {
	inst, err := s.Get(ctx, id)
	if err != nil {
		return model.InstanceDetail{}, err
	}
	steps, err := s.store.InstanceSteps(ctx, id)
	if err != nil {
		return model.InstanceDetail{}, fmt.Errorf("steps of instance %d: %w", id, err)
	}
	d := model.InstanceDetail{Instance: inst, Steps: steps}
	if d.Steps == nil {
		d.Steps = []model.Step{}
	}
	for _, st := range steps {
		if st.State != model.StepRunning {
			continue
		}
		if st.JobID != 0 {
			j, err := s.store.JobGet(ctx, st.JobID)
			if err != nil && !errors.Is(err, model.ErrNotFound) {
				return d, fmt.Errorf("job %d of instance %d: %w", st.JobID, id, err)
			}
			if err == nil {
				d.Jobs = append(d.Jobs, j)
			}
		}
		if st.ChildID != 0 {
			c, err := s.store.InstanceGet(ctx, st.ChildID)
			if err != nil && !errors.Is(err, model.ErrNotFound) {
				return d, fmt.Errorf("child %d of instance %d: %w", st.ChildID, id, err)
			}
			if err == nil {
				d.Children = append(d.Children, c)
			}
		}
	}
	return d, nil
}

// Advance applies a worker's decision under its lease epoch. A stale epoch
// is model.ErrConflict: the worker lost the instance and must drop it.
func (s *Service) Advance(ctx context.Context, a model.Advance) (model.Instance, error) {
	if a.Worker == "" {
		return model.Instance{}, model.Invalid("worker", "required")
	}
	if a.Epoch <= 0 {
		return model.Instance{}, model.Invalid("epoch", "required (the epoch of the claim)")
	}
	if !a.State.Valid() || a.State == model.InstancePending {
		return model.Instance{}, model.Invalid("state", "must be running, succeeded, failed or canceled, got %q", a.State)
	}
	if a.Progress < 0 || a.Progress > 100 {
		return model.Instance{}, model.Invalid("progress", "must be between 0 and 100")
	}
	for i, j := range a.Jobs {
		if j.InstanceID != a.InstanceID || j.Key == "" || j.Step == "" {
			return model.Instance{}, model.Invalid("jobs["+strconv.Itoa(i)+"]", "a workflow job needs the instance id, its step and a key")
		}
	}
	inst, err := s.store.InstanceAdvance(ctx, a, s.clock.Now())
	if err != nil {
		return inst, fmt.Errorf("advance instance %d: %w", a.InstanceID, err)
	}
	for _, j := range a.Jobs {
		s.wake.Signal(j.Type)
	}
	if len(a.Children) > 0 || inst.State.Final() {
		// New children to drive; a parent or a queued instance to wake.
		s.wake.Signal(wake.Instances)
	}
	return inst, nil
}

// Heartbeat renews a worker's instance leases and names the lost ones.
func (s *Service) Heartbeat(ctx context.Context, l model.InstanceLeases) ([]int64, error) {
	if l.Worker == "" {
		return nil, model.Invalid("worker", "required")
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
	if err := s.store.InstanceRelease(ctx, l.Worker, l.IDs, s.clock.Now()); err != nil {
		return fmt.Errorf("release instances: %w", err)
	}
	s.wake.Signal(wake.Instances)
	return nil
}
