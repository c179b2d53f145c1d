package workflows

import (
	"context"
	"errors"
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

// Cancel asks an instance and every unfinished descendant to stop: their
// workers cancel running jobs and end them canceled. The descendants are
// asked at once rather than one level per decision, which a tree still
// growing (a template starting itself) would outrun.
func (s *Service) Cancel(ctx context.Context, id int64) (model.Instance, error) {
	inst, err := s.store.InstanceCancel(ctx, id, s.clock.Now())
	if err != nil {
		return inst, fmt.Errorf("cancel instance %d: %w", id, err)
	}
	if err := s.cancelDescendants(ctx, id); err != nil {
		return inst, err
	}
	s.wake.Signal(wake.Instances)
	return inst, nil
}

// cancelDescendants asks every unfinished descendant of id to stop,
// breadth first, at most MaxDepth levels down.
func (s *Service) cancelDescendants(ctx context.Context, id int64) error {
	level := []int64{id}
	for depth := 0; depth < MaxDepth && len(level) > 0; depth++ {
		var next []int64
		for _, parent := range level {
			f := model.InstanceFilter{ParentID: parent, States: []model.InstanceState{model.InstancePending, model.InstanceRunning}, Limit: 1000}
			for {
				page, err := s.store.InstanceList(ctx, f)
				if err != nil {
					return fmt.Errorf("cancel descendants of %d: %w", id, err)
				}
				for _, c := range page.Items {
					if _, err := s.store.InstanceCancel(ctx, c.ID, s.clock.Now()); err != nil && !errors.Is(err, model.ErrConflict) && !errors.Is(err, model.ErrNotFound) {
						return fmt.Errorf("cancel instance %d: %w", c.ID, err)
					}
					next = append(next, c.ID)
				}
				if len(page.Items) < f.Limit {
					break
				}
				f.After = page.Items[len(page.Items)-1].ID
			}
		}
		level = next
	}
	return nil
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
