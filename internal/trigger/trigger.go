// Package trigger holds what the trigger roles share (packages scheduler,
// folderwatcher and tablewatcher): the standby/concurrent run modes and the calls that hand events to the
// server, which creates their instances exactly once.
package trigger

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/dpe-engine/dpe/internal/client"
	"github.com/dpe-engine/dpe/internal/holder"
	"github.com/dpe-engine/dpe/internal/lease"
	"github.com/dpe-engine/dpe/internal/model"
)

// Modes.
const (
	Standby    = "standby"
	Concurrent = "concurrent"
)

// Mode says how copies of a trigger run together.
type Mode struct {
	Mode   string        // Standby or Concurrent (default Concurrent)
	Group  string        // standby group (default: the trigger's name)
	TTL    time.Duration // standby lease TTL (default 10s, at least 2s)
	Holder string        // this copy's id
}

// Validate checks the mode for the trigger called name.
func (m Mode) Validate(name string) error {
	switch m.Mode {
	case "", Standby, Concurrent:
	default:
		return fmt.Errorf("trigger %s: mode %q: want standby or concurrent", name, m.Mode)
	}
	if m.TTL != 0 && m.TTL < lease.MinTTL {
		return fmt.Errorf("trigger %s: lease ttl %s is below %s", name, m.TTL, lease.MinTTL)
	}
	return nil
}

// Run runs active while this copy may act: always in concurrent mode
// (while keeping the trigger's concurrent lease, see runConcurrent);
// while it holds the group's lease ("trigger/<group>") in standby mode.
// active's ctx ends when the lease is lost.
func Run(ctx context.Context, c *client.Client, name string, m Mode, log *slog.Logger, active func(ctx context.Context) error) error {
	if err := m.Validate(name); err != nil {
		return err
	}
	if m.Mode != Standby {
		return runConcurrent(ctx, c, name, m, log, active)
	}
	group := m.Group
	if group == "" {
		group = name
	}
	e := &lease.Elector{Acquirer: c, Name: "trigger/" + group, Holder: m.Holder, TTL: m.TTL, Log: log}
	return e.Run(ctx, func(ctx context.Context, _ model.Lease) error { return active(ctx) })
}

// runConcurrent runs active at once, and beside it keeps the trigger's
// concurrent lease (model.TriggerConcurrentLease) while this copy can:
// the copies take turns holding it, and the server lists the trigger as
// run by all of its copies while one does. The lease never gates active.
func runConcurrent(ctx context.Context, c *client.Client, name string, m Mode, log *slog.Logger, active func(ctx context.Context) error) error {
	pctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	if log == nil {
		log = slog.Default()
	}
	e := &lease.Elector{Acquirer: c, Name: model.TriggerConcurrentLease + name,
		Holder: cmp.Or(m.Holder, holder.New("trigger")), TTL: m.TTL, Log: log}
	wg.Go(func() {
		_ = e.Run(pctx, func(ctx context.Context, _ model.Lease) error {
			<-ctx.Done()
			return nil
		})
	})
	return active(ctx)
}

// Fire hands due schedule fires to the server.
func Fire(ctx context.Context, c *client.Client, name string, req model.FireRequest) (model.TriggerResult, error) {
	res, err := c.Fire(ctx, name, req)
	if err != nil {
		return model.TriggerResult{}, err
	}
	return *res, nil
}

// Observe hands one page of a watcher's observation to the server.
func Observe(ctx context.Context, c *client.Client, name string, o model.Observation) (model.TriggerResult, error) {
	res, err := c.Observe(ctx, name, o)
	if err != nil {
		return model.TriggerResult{}, err
	}
	return *res, nil
}

// Get returns the trigger's state in the core DB (model.ErrNotFound before
// its first event).
func Get(ctx context.Context, c *client.Client, name string) (model.Trigger, error) {
	t, err := c.GetTrigger(ctx, name)
	if err != nil {
		return model.Trigger{}, err
	}
	return *t, nil
}

// ReportError records (or clears, with "") the trigger's error state, e.g.
// a watched folder that is missing, so status shows it.
func ReportError(ctx context.Context, c *client.Client, name, kind, msg string) error {
	return c.ReportTriggerError(ctx, name, kind, msg)
}
