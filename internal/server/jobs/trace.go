package jobs

import (
	"context"
	"sync"

	"github.com/dpe-engine/dpe/internal/model"
	"github.com/dpe-engine/dpe/internal/tracing"
)

// maxTraceCache bounds the instances whose trace keys are remembered.
const maxTraceCache = 10000

// traceCache remembers the instances (id and creation time: what the
// trace context derives from, never changing) of recently claimed
// workflow jobs, so tracing costs a read per instance, not per job.
type traceCache struct {
	mu   sync.Mutex
	inst map[int64]model.Instance
}

// setTraces fills each workflow job's Trace with its step's span in its
// instance's trace (tracing.JobParent), for a claim that asked. A job
// whose instance cannot be read (purged) goes without: its processor
// makes it a trace of its own.
func (s *Service) setTraces(ctx context.Context, jobs []model.Job) {
	for i := range jobs {
		j := &jobs[i]
		if j.InstanceID == 0 {
			continue
		}
		inst, ok := s.traceInstance(ctx, j.InstanceID)
		if !ok {
			continue
		}
		j.Trace = tracing.JobParent(inst, j.Step)
	}
}

func (s *Service) traceInstance(ctx context.Context, id int64) (model.Instance, bool) {
	c := &s.traces
	c.mu.Lock()
	inst, ok := c.inst[id]
	c.mu.Unlock()
	if ok {
		return inst, true
	}
	full, err := s.store.InstanceGet(ctx, id)
	if err != nil {
		s.log.Debug("no trace context for a claimed job: instance unreadable", "instance", id, "err", err)
		return model.Instance{}, false
	}
	inst = model.Instance{ID: full.ID, CreatedAt: full.CreatedAt}
	c.mu.Lock()
	if c.inst == nil || len(c.inst) >= maxTraceCache {
		c.inst = map[int64]model.Instance{}
	}
	c.inst[id] = inst
	c.mu.Unlock()
	return inst, true
}
