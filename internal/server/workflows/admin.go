package workflows

import (
	"context"
	"fmt"
	"strconv"

	"github.com/dpe-engine/dpe/internal/model"
	"github.com/dpe-engine/dpe/internal/server/wake"
)

// Get returns one instance.
func (s *Service) Get(ctx context.Context, id int64) (model.Instance, error) {
	inst, err := s.store.InstanceGet(ctx, id)
	if err != nil {
		return inst, fmt.Errorf("instance %d: %w", id, err)
	}
	return inst, nil
}

// GetByName returns the instance of a name.
func (s *Service) GetByName(ctx context.Context, name string) (model.Instance, error) {
	inst, err := s.store.InstanceGetByName(ctx, name)
	if err != nil {
		return inst, fmt.Errorf("instance %q: %w", name, err)
	}
	return inst, nil
}

// List returns a page of instances, newest first.
func (s *Service) List(ctx context.Context, f model.InstanceFilter) (model.Page[model.Instance], error) {
	for _, st := range f.States {
		if !st.Valid() {
			return model.Page[model.Instance]{}, model.Invalid("state", "unknown state %q (want pending, running, succeeded, failed or canceled)", st)
		}
	}
	if f.Limit <= 0 {
		f.Limit = 100
	}
	if f.Limit > 1000 {
		return model.Page[model.Instance]{}, model.Invalid("limit", "at most 1000")
	}
	page, err := s.store.InstanceList(ctx, f)
	if err != nil {
		return page, fmt.Errorf("list instances: %w", err)
	}
	if page.Items == nil {
		page.Items = []model.Instance{}
	}
	if len(page.Items) == f.Limit {
		page.Next = strconv.FormatInt(page.Items[len(page.Items)-1].ID, 10)
	}
	return page, nil
}

// Cancel asks an instance to stop: its worker cancels running jobs and
// children and ends it canceled.
func (s *Service) Cancel(ctx context.Context, id int64) (model.Instance, error) {
	inst, err := s.store.InstanceCancel(ctx, id, s.clock.Now())
	if err != nil {
		return inst, fmt.Errorf("cancel instance %d: %w", id, err)
	}
	s.wake.Signal(wake.Instances)
	return inst, nil
}

// SetPriority re-prioritises an instance and its queued jobs.
func (s *Service) SetPriority(ctx context.Context, id int64, priority *int) (model.Instance, error) {
	if priority == nil {
		return model.Instance{}, model.Invalid("priority", "required")
	}
	if *priority < 0 || *priority > model.MaxPriority {
		return model.Instance{}, model.Invalid("priority", "must be between 0 and %d, got %d", model.MaxPriority, *priority)
	}
	inst, err := s.store.InstanceSetPriority(ctx, id, *priority, s.clock.Now())
	if err != nil {
		return inst, fmt.Errorf("set priority of instance %d: %w", id, err)
	}
	return inst, nil
}

// Retry resumes a failed or canceled instance from the steps that failed
// it, keeping the finished ones (see store.PlanRetry): its worker decides
// it again at once, and the claims of the retried jobs' types wake.
func (s *Service) Retry(ctx context.Context, id int64) (model.Instance, error) {
	inst, err := s.store.InstanceRetry(ctx, id, s.clock.Now())
	if err != nil {
		return inst, fmt.Errorf("retry instance %d: %w", id, err)
	}
	s.wake.Signal(wake.Instances)
	// Jobs queued again: their claims may be waiting (a failed read here
	// costs only the wait until the claims' next tick).
	if page, err := s.store.JobList(ctx, model.JobFilter{InstanceID: id, States: []model.JobState{model.JobQueued}, Limit: 1000}); err == nil {
		seen := map[string]bool{}
		for _, j := range page.Items {
			if !seen[j.Type] {
				seen[j.Type] = true
				s.wake.Signal(j.Type)
			}
		}
	}
	return inst, nil
}
