package jobs

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/dpe-engine/dpe/internal/jobtype"
	"github.com/dpe-engine/dpe/internal/model"
	"github.com/dpe-engine/dpe/internal/server/wake"
	"github.com/dpe-engine/dpe/internal/store"
	"github.com/dpe-engine/dpe/internal/wire"
)

// Claim hands jobs to a processor. When none is claimable it waits up to
// req.Wait for work to arrive (long-poll) and returns as soon as some is
// claimed; an empty answer after the wait is normal. key is the call's
// Idempotency-Key ("" for none): a claim repeating the key of one whose
// jobs the processor still runs gets those jobs back and claims nothing,
// so a claim whose answer was lost can be sent again safely.
func (s *Service) Claim(ctx context.Context, req model.ClaimRequest, key string) ([]model.Job, error) {
	p, wait, err := s.claimParams(req, key)
	if err != nil {
		return nil, err
	}
	types := make([]string, 0, len(p.Slots))
	for t := range p.Slots {
		types = append(types, t)
	}
	sort.Strings(types)
	var jobs []model.Job
	err = s.wake.Poll(ctx, types, wait, s.tick, func() (bool, error) {
		p.Now = s.clock.Now()
		var err error
		jobs, err = s.store.JobClaim(ctx, p)
		if err != nil {
			return false, fmt.Errorf("claim: %w", err)
		}
		s.metrics.Claimed(p.Now, jobs)
		return len(jobs) > 0, nil
	})
	if err != nil {
		return nil, err
	}
	if jobs == nil {
		jobs = []model.Job{}
	}
	if req.Trace {
		s.setTraces(ctx, jobs)
	}
	return jobs, nil
}

// claimParams checks a claim request and turns it into the store's
// parameters (the time is set per try) and the long poll's wait.
func (s *Service) claimParams(req model.ClaimRequest, key string) (store.ClaimParams, time.Duration, error) {
	var p store.ClaimParams
	if err := checkProcessor(req.Processor); err != nil {
		return p, 0, err
	}
	if err := checkLabels("labels", req.Labels); err != nil {
		return p, 0, err
	}
	if len(req.Slots) == 0 {
		return p, 0, model.Invalid("slots", "at least one job type with a free slot is required")
	}
	for t, n := range req.Slots {
		if err := jobtype.ValidName(t); err != nil {
			return p, 0, model.Invalid("slots", "%v", err)
		}
		if n < 1 || n > 1000 {
			return p, 0, model.Invalid("slots."+t, "must be between 1 and 1000, got %d", n)
		}
	}
	ttl, err := leaseTTL(req.LeaseTTL, "lease_ttl")
	if err != nil {
		return p, 0, err
	}
	wait := req.Wait.D()
	if wait > MaxWait {
		wait = MaxWait
	}
	p = store.ClaimParams{Processor: req.Processor, Slots: req.Slots, Labels: req.Labels, LeaseTTL: ttl, Key: key}
	return p, wait, nil
}

func leaseTTL(d model.Duration, field string) (time.Duration, error) {
	ttl := d.D()
	if ttl == 0 {
		return DefaultLeaseTTL, nil
	}
	if ttl < MinLeaseTTL || ttl > MaxLeaseTTL {
		return 0, model.Invalid(field, "must be between %s and %s, got %s", MinLeaseTTL, MaxLeaseTTL, ttl)
	}
	return ttl, nil
}

// Heartbeat renews a processor's leases in one call.
func (s *Service) Heartbeat(ctx context.Context, req wire.HeartbeatRequest) ([]model.HeartbeatResult, error) {
	if err := checkProcessor(req.Processor); err != nil {
		return nil, err
	}
	ttl, err := leaseTTL(req.LeaseTTL, "lease_ttl")
	if err != nil {
		return nil, err
	}
	for i, b := range req.Jobs {
		if err := checkProgress(b.Progress, fmt.Sprintf("jobs[%d].progress", i)); err != nil {
			return nil, err
		}
	}
	if len(req.Jobs) == 0 {
		return []model.HeartbeatResult{}, nil
	}
	res, err := s.store.JobHeartbeat(ctx, req.Jobs, ttl, s.clock.Now())
	if err != nil {
		return nil, fmt.Errorf("heartbeat: %w", err)
	}
	return res, nil
}

// Progress records one job's progress (and renews its lease). A lost lease
// is model.ErrConflict.
func (s *Service) Progress(ctx context.Context, b model.Heartbeat) (model.HeartbeatResult, error) {
	if err := checkProgress(b.Progress, "progress"); err != nil {
		return model.HeartbeatResult{}, err
	}
	// The lease is renewed by the caller's TTL, never a fixed default:
	// a progress call must not stretch a short lease (a hung processor
	// would keep its jobs for 30 s instead of its --lease-ttl; found by
	// the chaos suite).
	ttl, err := leaseTTL(b.LeaseTTL, "lease_ttl")
	if err != nil {
		return model.HeartbeatResult{}, err
	}
	res, err := s.store.JobHeartbeat(ctx, []model.Heartbeat{b}, ttl, s.clock.Now())
	if err != nil {
		return model.HeartbeatResult{}, fmt.Errorf("progress: %w", err)
	}
	if len(res) != 1 {
		return model.HeartbeatResult{}, fmt.Errorf("progress: store answered %d results for 1 job", len(res))
	}
	if res[0].Status == model.LeaseLost {
		return res[0], fmt.Errorf("job %d epoch %d: lease lost: %w", b.ID, b.Epoch, model.ErrConflict)
	}
	return res[0], nil
}

func checkProgress(p *int, field string) error {
	if p != nil && (*p < 0 || *p > 100) {
		return model.Invalid(field, "must be between 0 and 100, got %d", *p)
	}
	return nil
}

// Complete records the outcome of a job attempt. A stale epoch is
// model.ErrConflict: the caller lost the lease and must drop the work.
func (s *Service) Complete(ctx context.Context, c model.Completion) (model.Job, error) {
	if c.Epoch <= 0 {
		return model.Job{}, model.Invalid("epoch", "required (the epoch of the claim)")
	}
	j, err := s.store.JobComplete(ctx, c, s.clock.Now())
	if err != nil {
		return j, fmt.Errorf("complete job %d: %w", c.ID, err)
	}
	s.metrics.Ended(j)
	// A freed slot may unblock a type capped cluster-wide; a retry may be
	// claimable after its back-off (the tick covers that).
	s.wake.Signal(j.Type)
	s.wakeInstance(j)
	return j, nil
}

// wakeInstance tells waiting workflow claims that a job of an instance
// ended or went back to the queue: the store woke the instance in the same
// transaction, and its worker should decide the next step at once rather
// than at the next long-poll tick.
func (s *Service) wakeInstance(j model.Job) {
	if j.InstanceID != 0 {
		s.wake.Signal(wake.Instances)
	}
}

// MaxCompletions caps one group-commit call.
const MaxCompletions = wire.MaxCompletions

// CompleteMany records many outcomes in one transaction. Each item's
// result is what Complete would answer alone: its job, or an error
// matching model.ErrConflict (stale epoch) or model.ErrNotFound.
func (s *Service) CompleteMany(ctx context.Context, cs []model.Completion) ([]store.CompleteResult, error) {
	if len(cs) == 0 {
		return []store.CompleteResult{}, nil
	}
	if len(cs) > MaxCompletions {
		return nil, model.Invalid("completions", "at most %d per call, got %d", MaxCompletions, len(cs))
	}
	for i, c := range cs {
		if c.ID <= 0 {
			return nil, model.Invalid(fmt.Sprintf("completions[%d].id", i), "required")
		}
		if c.Epoch <= 0 {
			return nil, model.Invalid(fmt.Sprintf("completions[%d].epoch", i), "required (the epoch of the claim)")
		}
	}
	res, err := s.store.JobCompleteMany(ctx, cs, s.clock.Now())
	if err != nil {
		return nil, fmt.Errorf("complete %d jobs: %w", len(cs), err)
	}
	seen := map[string]bool{}
	for _, r := range res {
		if r.Err == nil && !seen[r.Job.Type] {
			seen[r.Job.Type] = true
			s.wake.Signal(r.Job.Type)
		}
		if r.Err == nil {
			s.metrics.Ended(r.Job)
			s.wakeInstance(r.Job)
		}
	}
	return res, nil
}

// Release gives a held job back to the queue (a draining processor).
func (s *Service) Release(ctx context.Context, id, epoch int64) (model.Job, error) {
	if epoch <= 0 {
		return model.Job{}, model.Invalid("epoch", "required (the epoch of the claim)")
	}
	j, err := s.store.JobRelease(ctx, id, epoch, s.clock.Now())
	if err != nil {
		return j, fmt.Errorf("release job %d: %w", id, err)
	}
	s.metrics.Ended(j) // canceled when a cancel had been asked
	s.wake.Signal(j.Type)
	s.wakeInstance(j)
	return j, nil
}

// checkProcessor refuses a missing or overlong processor id: claims and
// heartbeats are logged and shown under it.
func checkProcessor(id string) error {
	switch {
	case id == "":
		return model.Invalid("processor", "required: the id of the calling processor")
	case len(id) > wire.MaxIDLen:
		return wire.CheckName("processor", id)
	}
	return nil
}
