package processor

import (
	"context"
	"errors"
	"time"

	"github.com/dpe-engine/dpe/internal/model"
)

// setProgress records a handler's progress; the progress loop sends it.
// It never blocks the handler.
func (p *Processor) setProgress(hj *heldJob, pct int, msg string) {
	pct = max(0, min(100, pct))
	p.mu.Lock()
	changed := !hj.hasProgress || hj.progress != pct || hj.message != msg
	hj.progress, hj.message, hj.hasProgress = pct, msg, true
	p.mu.Unlock()
	if changed {
		signal(p.progressWake)
	}
}

// progressLoop sends changed progress with one call per job, at most one
// per ProgressEvery per job, until ctx ends. Progress also rides on every
// heartbeat, so a failed call loses nothing.
func (p *Processor) progressLoop(ctx context.Context) {
	var timer *time.Timer
	var fire <-chan time.Time
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return
		case <-p.progressWake:
		case <-fire:
		}
		due, next := p.dueProgress(p.clock.Now())
		for _, b := range due {
			p.sendProgress(ctx, b)
		}
		if timer != nil {
			timer.Stop()
			fire = nil
		}
		if next > 0 {
			timer = time.NewTimer(next)
			fire = timer.C
		}
	}
}

// dueProgress returns the progress calls to make now, marking them sent,
// and how long until the next one is due (0: none waiting).
func (p *Processor) dueProgress(now time.Time) (due []model.Heartbeat, next time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, hj := range p.jobs {
		if !hj.hasProgress || hj.finished || hj.lost ||
			(hj.sent.progress == hj.progress && hj.sent.message == hj.message && !hj.sent.at.IsZero()) {
			continue
		}
		if wait := hj.sent.at.Add(p.cfg.ProgressEvery).Sub(now); wait > 0 {
			if next == 0 || wait < next {
				next = wait
			}
			continue
		}
		hj.sent = progressMark{progress: hj.progress, message: hj.message, at: now}
		pct := hj.progress
		due = append(due, model.Heartbeat{ID: hj.job.ID, Epoch: hj.job.Epoch, Progress: &pct, Message: hj.message,
			LeaseTTL: model.Duration(p.cfg.LeaseTTL)})
	}
	return due, next
}

// sendProgress makes one progress call and applies its answer.
func (p *Processor) sendProgress(ctx context.Context, b model.Heartbeat) {
	pctx, cancel := context.WithTimeout(ctx, max(p.cfg.ProgressEvery, 5*time.Second))
	defer cancel()
	sent := p.clock.Now()
	res, err := p.c.Progress(pctx, b)
	switch {
	case err == nil:
		r := *res
		r.ID = b.ID // the answer is about this job, whatever it echoes
		p.applyLease(r, b.Epoch, sent)
	case errors.Is(err, model.ErrConflict):
		p.applyLease(model.HeartbeatResult{ID: b.ID, Status: model.LeaseLost}, b.Epoch, sent)
	case ctx.Err() == nil:
		p.log.Debug("progress call failed; the next heartbeat carries it", "job", b.ID, "err", err)
	}
}
