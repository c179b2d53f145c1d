package processor

import (
	"context"
	"time"

	"github.com/dpe-engine/dpe/internal/client"
	"github.com/dpe-engine/dpe/internal/model"
	"github.com/dpe-engine/dpe/internal/wire"
)

// heartbeatLoop renews every held lease with one call each LeaseTTL/3
// until ctx ends. A failed heartbeat is not fatal: leases last a full TTL,
// and while the servers are down nobody else can claim the jobs either;
// the first heartbeat that gets through says which leases survived.
func (p *Processor) heartbeatLoop(ctx context.Context) {
	t := time.NewTicker(p.heartbeatEvery())
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			p.heartbeat(ctx)
			p.flushLogs(ctx)
		}
	}
}

// heartbeat sends one batched heartbeat and applies its answers.
func (p *Processor) heartbeat(ctx context.Context) {
	beats := p.beats()
	if len(beats) == 0 {
		return
	}
	// One attempt may take an interval (then the next URL is tried), the
	// call two: past that the leases are nearly gone, and the next
	// heartbeat, with fresh progress and the current set of jobs, is
	// worth more than a retry of this one.
	every := p.heartbeatEvery()
	hctx, cancel := context.WithTimeout(ctx, 2*every)
	defer cancel()
	sent := p.clock.Now()
	res, err := p.c.Heartbeat(hctx, wire.HeartbeatRequest{
		Processor: p.cfg.ID, LeaseTTL: model.Duration(p.cfg.LeaseTTL), Jobs: beats,
	}, client.WithAttemptTimeout(every))
	if err != nil {
		if ctx.Err() == nil {
			p.log.Warn("heartbeat failed", "jobs", len(beats), "err", err)
		}
		return
	}
	epochs := make(map[int64]int64, len(beats))
	for _, b := range beats {
		epochs[b.ID] = b.Epoch
	}
	for _, r := range res {
		if e, ok := epochs[r.ID]; ok {
			p.applyLease(r, e, sent)
		}
	}
}

// beats lists a heartbeat for every held job, with its latest progress.
func (p *Processor) beats() []model.Heartbeat {
	p.mu.Lock()
	defer p.mu.Unlock()
	beats := make([]model.Heartbeat, 0, len(p.jobs))
	for _, hj := range p.jobs {
		if hj.lost || hj.abandoned {
			continue
		}
		b := model.Heartbeat{ID: hj.job.ID, Epoch: hj.job.Epoch}
		if hj.hasProgress {
			pct := hj.progress
			b.Progress, b.Message = &pct, hj.message
		}
		beats = append(beats, b)
	}
	return beats
}

// applyLease acts on the server's word about one lease, sent under epoch
// at time sent: renewed, cancel asked, or lost.
func (p *Processor) applyLease(r model.HeartbeatResult, epoch int64, sent time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	hj := p.jobs[r.ID]
	if hj == nil || hj.job.Epoch != epoch {
		return // finished meanwhile, or a newer claim of the same job
	}
	switch r.Status {
	case model.LeaseOK:
		hj.leaseUntil = sent.Add(p.cfg.LeaseTTL)
	case model.LeaseCanceled:
		hj.leaseUntil = sent.Add(p.cfg.LeaseTTL)
		if !hj.finished {
			p.log.Info("cancel asked; stopping job", hj.log...)
			hj.cancel(errCancelAsked)
		}
	case model.LeaseLost:
		p.markLost(hj)
	default:
		p.log.Warn("unknown lease status", hj.attrs("status", r.Status)...)
	}
}

// markLost records that another holder may have the job: its handler is
// cancelled and nothing is reported for it. Callers hold p.mu.
func (p *Processor) markLost(hj *heldJob) {
	if hj.lost {
		return
	}
	hj.lost = true
	close(hj.lostCh)
	if !hj.finished {
		p.log.Info("lease lost; stopping job", hj.log...)
		hj.cancel(errLeaseLost)
	}
}
