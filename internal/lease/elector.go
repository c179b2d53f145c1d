// Package lease runs work under a named lease in the core database: the
// standby mode of every role (DESIGN §2). Copies of a role with the same
// group compete for one lease; the holder is active and renews it; when it
// dies, another copy takes over once the lease expires (its TTL, default
// 10 s). Leadership is tied to the lease's epoch, so a copy that lost the
// lease while paused cannot act as leader afterwards.
package lease

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/dpe-engine/dpe/internal/backoff"
	"github.com/dpe-engine/dpe/internal/clock"
	"github.com/dpe-engine/dpe/internal/model"
)

// Acquirer takes, renews and frees named leases: the store on a server,
// the HTTP client in a remote role.
type Acquirer interface {
	LeaseAcquire(ctx context.Context, name, holder string, ttl time.Duration) (model.Lease, error)
	LeaseRelease(ctx context.Context, name, holder string) error
}

// DefaultTTL is the lease TTL when none is given.
const DefaultTTL = 10 * time.Second

// MinTTL is the shortest TTL allowed.
const MinTTL = 2 * time.Second

// Elector keeps trying to hold one named lease and runs Lead while it does.
type Elector struct {
	Acquirer Acquirer
	Name     string // e.g. "worker/default"
	Holder   string // this copy's id
	TTL      time.Duration
	Log      *slog.Logger
	// OnChange, when set, is told each time this copy gains (true) or
	// loses (false) the lease.
	OnChange func(leader bool, l model.Lease)
	// Clock times renewals, the standby's retries and the lease's local
	// end. Nil: clock.Real.
	Clock clock.Clock
}

// Run competes for the lease until ctx ends. While this copy holds it, lead
// runs with a context that is cancelled as soon as the lease cannot be
// renewed in time (before it could expire, so two leaders never overlap as
// long as clocks run at the same rate; the bound is measured as elapsed
// time, so setting a clock, e.g. an NTP step, does not stretch it). On
// return the lease is released so a standby takes over at once. lead
// returning early (nil or error) gives the lease up; Run then competes
// again after a pause.
func (e *Elector) Run(ctx context.Context, lead func(ctx context.Context, l model.Lease) error) error {
	if e.TTL == 0 {
		e.TTL = DefaultTTL
	}
	if e.TTL < MinTTL {
		return fmt.Errorf("lease %s: ttl %s is below the minimum %s", e.Name, e.TTL, MinTTL)
	}
	if e.Log == nil {
		e.Log = slog.Default()
	}
	if e.Clock == nil {
		e.Clock = clock.Real{}
	}
	renew := e.TTL / 3
	// Standby: try again at a jittered fraction of the renew interval
	// (between a half and all of it), so a dead leader's lease is taken
	// soon after it expires and standbys do not ask in lockstep.
	standby := backoff.Policy{Initial: renew, Max: renew, Multiplier: 1, Jitter: 0.5}
	unreachable := 0 // failed attempts in a row that were not a conflict
	for attempt := 0; ; attempt++ {
		sinceAsked := e.Clock.Stopwatch()
		l, err := e.Acquirer.LeaseAcquire(ctx, e.Name, e.Holder, e.TTL)
		switch {
		case ctx.Err() != nil:
			if err == nil { // won and stopped at once: give it back
				e.release(ctx)
			}
			return nil
		case err != nil && !errors.Is(err, model.ErrConflict):
			// An outage: warn once, not at every retry.
			level := slog.LevelDebug
			if unreachable == 0 {
				level = slog.LevelWarn
			}
			unreachable++
			e.Log.Log(ctx, level, "cannot reach the lease", "lease", e.Name, "err", err, "failures", unreachable)
		default:
			if unreachable > 0 {
				e.Log.Info("lease reachable again", "lease", e.Name, "failures", unreachable)
				unreachable = 0
			}
			if err == nil {
				e.lead(ctx, l, sinceAsked, renew, lead)
				if ctx.Err() != nil {
					return nil
				}
			}
		}
		if clock.Sleep(ctx, e.Clock, standby.Delay(attempt)) != nil {
			return nil
		}
	}
}

// lead runs the leader's work while renewing the lease l; sinceAsked tells
// how long ago l was asked for.
func (e *Elector) lead(ctx context.Context, l model.Lease, sinceAsked func() time.Duration, renew time.Duration, lead func(context.Context, model.Lease) error) {
	e.Log.Info("lease acquired: active", "lease", e.Name, "holder", e.Holder, "epoch", l.Epoch)
	if e.OnChange != nil {
		e.OnChange(true, l)
	}
	lctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- lead(lctx, l) }()
	// The lease is ours for TTL after it was last asked for: the server
	// granted it at or after that, so it is a safe (early) bound. It is
	// measured on a stopwatch, never as a difference of wall-clock times,
	// which a step of the system clock would stretch.
	next := e.Clock.After(renew)
	stopped := false
	for !stopped {
		select {
		case err := <-done:
			if err != nil && ctx.Err() == nil {
				e.Log.Warn("active work ended with an error; giving the lease up", "lease", e.Name, "err", err)
			}
			stopped = true
			continue
		case <-ctx.Done():
		case <-next:
			sinceRenewAsked := e.Clock.Stopwatch()
			next = e.Clock.After(renew)
			// A renewal may not outlast the point where a leader that
			// could not renew must already have stood down: half a renew
			// interval before the lease ends by the stopwatch.
			rctx, rcancel := context.WithTimeout(ctx, e.TTL-sinceAsked()-renew/2)
			nl, err := e.Acquirer.LeaseAcquire(rctx, e.Name, e.Holder, e.TTL)
			rcancel()
			if err == nil && nl.Epoch == l.Epoch {
				sinceAsked = sinceRenewAsked
				continue
			}
			if err != nil && !errors.Is(err, model.ErrConflict) && sinceAsked()+renew < e.TTL {
				// A transient failure with time left: try again next tick.
				e.Log.Warn("lease renewal failed; retrying", "lease", e.Name, "err", err)
				continue
			}
			if ctx.Err() == nil {
				e.Log.Warn("lease lost: standing down", "lease", e.Name, "err", err)
			}
		}
		cancel()
		<-done
		stopped = true
	}
	cancel()
	e.release(ctx)
	if e.OnChange != nil {
		e.OnChange(false, l)
	}
	e.Log.Info("lease released: standby", "lease", e.Name, "holder", e.Holder)
}

// release frees the lease with a fresh bounded context (ctx may have
// ended), so a standby takes over at once.
func (e *Elector) release(ctx context.Context) {
	rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer rcancel()
	if err := e.Acquirer.LeaseRelease(rctx, e.Name, e.Holder); err != nil {
		e.Log.Debug("lease release failed; it will expire", "lease", e.Name, "err", err)
	}
}
