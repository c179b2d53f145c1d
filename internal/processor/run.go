package processor

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Run announces the processor, then claims and runs jobs until ctx ends,
// then drains:
//
//  1. Claims stop at once (an in-flight long poll is abandoned).
//  2. Running handlers go on for up to Grace with their contexts alive;
//     the outcomes of those that finish are reported as usual, and leases
//     keep being renewed.
//  3. After Grace the remaining handlers are cancelled and their jobs
//     given back (released), so another processor takes them without
//     waiting for the leases to expire. A handler that ignores
//     cancellation for StopWait has its job given back anyway.
//  4. Outstanding reports get up to FlushTimeout to reach the server.
//
// Run returns nil after a clean drain. It returns an error when the
// server refuses the processor at start (bad token, bad ID), or when
// reports were still undelivered at the end of the drain (those jobs run
// again once their leases expire). Run may be called once.
func (p *Processor) Run(ctx context.Context) error {
	if !p.ran.CompareAndSwap(false, true) {
		return errors.New("processor: Run called more than once")
	}
	// Leases, progress and reports must outlive ctx through the drain;
	// handler contexts too, until the grace is over. Both keep ctx's
	// values.
	ioCtx, stopIO := context.WithCancel(context.WithoutCancel(ctx))
	defer stopIO()
	workCtx, stopWork := context.WithCancelCause(context.WithoutCancel(ctx))
	defer stopWork(errGraceOver)
	p.ioCtx, p.workCtx = ioCtx, workCtx
	p.mu.Lock()
	p.started = p.clock.Now()
	p.mu.Unlock()

	if err := p.announce(ctx); err != nil && ctx.Err() == nil {
		if !worthRetrying(err) {
			return fmt.Errorf("processor: announce to the server: %w", err)
		}
		p.log.Warn("cannot reach the servers yet; will keep trying", "err", err)
	}
	var bg sync.WaitGroup
	bg.Go(func() { p.completer.run(ioCtx) })
	bg.Go(func() { p.heartbeatLoop(ioCtx) })
	bg.Go(func() { p.progressLoop(ioCtx) })
	bg.Go(func() { p.presenceLoop(ioCtx) })
	p.log.Info("processor started", "quota", p.cfg.Quota, "labels", p.cfg.Labels,
		"lease_ttl", p.cfg.LeaseTTL, "servers", p.c.URLs())

	var claims sync.WaitGroup
	for _, typ := range p.types {
		claims.Go(func() { p.claimLoop(ctx, typ) })
	}
	claims.Wait() // the claim loops end with ctx

	err := p.drain(stopIO)
	stopIO()
	bg.Wait()
	s := p.Stats()
	p.log.Info("processor stopped", "completed", s.Completed, "failed", s.Failed,
		"released", s.Released, "dropped", s.Dropped)
	return err
}

// drain runs steps 2 to 4 of Run's shutdown.
func (p *Processor) drain(stopIO context.CancelFunc) error {
	p.mu.Lock()
	p.draining = true
	running := len(p.jobs)
	p.mu.Unlock()
	signal(p.presenceWake)
	p.log.Info("shutting down: claims stopped, waiting for running jobs", "held", running, "grace", p.cfg.Grace)

	handlersDone := waitDone(&p.handlers)
	grace := time.NewTimer(p.cfg.Grace)
	defer grace.Stop()
	select {
	case <-handlersDone:
	case <-grace.C:
		n := p.cancelRunning()
		p.log.Info("grace over: stopping running jobs to give them back", "jobs", n)
		stop := time.NewTimer(p.cfg.StopWait)
		defer stop.Stop()
		select {
		case <-handlersDone:
		case <-stop.C:
			p.abandonRunning()
		}
	}

	reportsDone := waitDone(&p.reports)
	flush := time.NewTimer(p.cfg.FlushTimeout)
	defer flush.Stop()
	select {
	case <-reportsDone:
		return nil
	case <-flush.C:
	}
	p.mu.Lock()
	left := len(p.jobs)
	p.mu.Unlock()
	stopIO() // the deliveries see it and give up at once
	<-reportsDone
	return fmt.Errorf("processor: %d job reports undelivered at shutdown; those jobs run again once their leases expire", left)
}

// cancelRunning cancels every running handler for the shutdown and
// returns how many there were.
func (p *Processor) cancelRunning() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, hj := range p.jobs {
		if !hj.finished && !hj.lost {
			hj.cancel(errGraceOver)
			n++
		}
	}
	return n
}

// abandonRunning gives back the jobs whose handlers ignored cancellation.
// Their goroutines are left to end on their own; nothing is reported when
// they do.
func (p *Processor) abandonRunning() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, hj := range p.jobs {
		if hj.finished || hj.lost || hj.abandoned {
			continue
		}
		hj.abandoned = true
		p.log.Error("handler ignored cancellation; giving its job back anyway", hj.attrs("waited", p.cfg.StopWait)...)
		p.reports.Add(1)
		go func() {
			defer p.reports.Done()
			p.deliver(newRelease(hj))
		}()
	}
}

// waitDone returns a channel closed when wg's count reaches zero.
func waitDone(wg *sync.WaitGroup) <-chan struct{} {
	ch := make(chan struct{})
	go func() {
		wg.Wait()
		close(ch)
	}()
	return ch
}
