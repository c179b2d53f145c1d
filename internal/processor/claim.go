package processor

import (
	"context"
	"log/slog"
	"time"

	"github.com/dpe-engine/dpe/internal/backoff"
	"github.com/dpe-engine/dpe/internal/clock"
	"github.com/dpe-engine/dpe/internal/model"
)

// claimBackoff is the pause of a claim loop after a failed claim: doubled
// per failure in a row from 1s up to 30s, with jitter keeping at least half
// of it. (The client already retried through short outages before the
// claim failed.)
var claimBackoff = backoff.Policy{Initial: time.Second, Max: 30 * time.Second, Multiplier: 2, Jitter: 0.5}

// claimLinger bounds how long a busy claim loop waits for more of its
// slots to come free before it claims (see linger). Claims of a few jobs
// each cost the server a transaction per few jobs; a short wait lets the
// outcomes in flight free their slots so one claim takes many. Jobs held
// long are not kept waiting for it: the wait ends after this much.
const claimLinger = 2 * time.Millisecond

// claimLoop claims jobs of one type while it has free slots, until ctx
// ends. Each served type has its own loop and its own long poll, so a type
// whose slots are full never delays claims of another type whose slots just
// came free. With no free slot the loop waits on the type's freed channel.
func (p *Processor) claimLoop(ctx context.Context, typ string) {
	failures := 0 // failed claims in a row
	for {
		free := p.free(typ)
		if free <= 0 {
			select {
			case <-ctx.Done():
				return
			case <-p.freed[typ]:
				continue
			}
		}
		free = p.linger(ctx, typ, free)
		asked := time.Now()
		jobs, err := p.c.Claim(ctx, model.ClaimRequest{
			Processor: p.cfg.ID,
			Slots:     map[string]int{typ: free},
			Labels:    p.cfg.Labels,
			LeaseTTL:  model.Duration(p.cfg.LeaseTTL),
			Wait:      model.Duration(p.cfg.PollWait),
			Trace:     p.cfg.Tracing.Enabled(),
		})
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			wait := claimBackoff.Delay(failures)
			failures++
			// Unreachable servers are expected during a fail-over; a
			// refusal (bad token, bad label) needs an operator.
			level := slog.LevelWarn
			if !worthRetrying(err) {
				level = slog.LevelError
			}
			p.log.Log(ctx, level, "claim failed", "type", typ, "err", err, "retry_in", wait)
			// Real time: Config.Clock only tells the time (timers stay
			// real), and synctest's fake time drives clock.Real in tests.
			if clock.Sleep(ctx, clock.Real{}, wait) != nil {
				return
			}
			continue
		}
		failures = 0
		for _, j := range jobs {
			p.start(j)
		}
		// A server that answers an empty long poll at once (not waiting)
		// would make this loop spin; pace it.
		if len(jobs) == 0 {
			if early := p.cfg.PollWait/4 - time.Since(asked); clock.Sleep(ctx, clock.Real{}, early) != nil {
				return
			}
		}
	}
}

// linger returns the free slots of typ to claim now, free being those
// free at the call. A claim for fewer than half the type's quota while the
// other slots are busy (handlers running, outcomes on their way) waits
// until half the quota is free, or claimLinger passes, or ctx ends. An
// idle processor, or one with half its slots free, claims at once, so
// dispatch latency on a quiet system is untouched; a processor with few
// slots (quota 1) never waits.
func (p *Processor) linger(ctx context.Context, typ string, free int) int {
	want := p.cfg.Quota[typ] / 2
	if free >= want {
		return free
	}
	timeout := p.lingerAfter(claimLinger)
	for free < want {
		select {
		case <-ctx.Done():
			return free
		case <-timeout:
			return p.free(typ)
		case <-p.freed[typ]:
			free = p.free(typ)
		}
	}
	return free
}

// free is the number of jobs of typ the processor may still start.
func (p *Processor) free(typ string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cfg.Quota[typ] - p.running[typ]
}
