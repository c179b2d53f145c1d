// Package jobs is the job service of the server: it validates what clients
// and processors ask, applies it to the core database through the store, and
// lets claims long-poll until work arrives. It holds no state that matters:
// any number of servers may run it on one database.
package jobs

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/dpe-engine/dpe/internal/clock"
	"github.com/dpe-engine/dpe/internal/jobtype"
	"github.com/dpe-engine/dpe/internal/metrics"
	"github.com/dpe-engine/dpe/internal/server/wake"
	"github.com/dpe-engine/dpe/internal/store"
	"github.com/dpe-engine/dpe/internal/wire"
)

// Limits of what one request may ask.
const (
	MaxBatch        = wire.MaxJobBatch
	MaxWait         = wire.MaxWait
	DefaultLeaseTTL = 30 * time.Second
	MinLeaseTTL     = 1 * time.Second
	MaxLeaseTTL     = 10 * time.Minute
	MaxAttempts     = 100
	MaxKeyLen       = 200
)

// Config configures a Service.
type Config struct {
	Store store.Store
	Clock clock.Clock  // default clock.Real
	Log   *slog.Logger // default slog.Default()
	// Tick bounds how long a long-poll sleeps without re-checking (jobs
	// whose back-off ends, rate limits refilling). Default 1s.
	Tick time.Duration
	// RescueEvery is how often expired leases are looked for. Default 1s.
	RescueEvery time.Duration
	// Wake is the server's wake-up hub (default: a private one).
	Wake *wake.Hub
	// Metrics receives dispatch latency, outcomes and rescues (nil: none).
	Metrics *metrics.Jobs
}

// Service is the job service.
type Service struct {
	store       store.Store
	clock       clock.Clock
	log         *slog.Logger
	tick        time.Duration
	rescueEvery time.Duration

	builtins map[string]jobtype.Spec
	wake     *wake.Hub
	metrics  *metrics.Jobs

	traces traceCache // instances of claimed jobs, for Job.Trace

	typesMu sync.Mutex
	types   map[string]bool // registered types, refreshed on a miss
	typesAt time.Time
}

// New returns a Service.
func New(cfg Config) *Service {
	if cfg.Clock == nil {
		cfg.Clock = clock.Real{}
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.Tick <= 0 {
		cfg.Tick = time.Second
	}
	if cfg.RescueEvery <= 0 {
		cfg.RescueEvery = time.Second
	}
	if cfg.Wake == nil {
		cfg.Wake = wake.NewHub()
	}
	return &Service{
		store:       cfg.Store,
		clock:       cfg.Clock,
		log:         cfg.Log,
		tick:        cfg.Tick,
		rescueEvery: cfg.RescueEvery,
		builtins:    jobtype.Builtins(),
		wake:        cfg.Wake,
		metrics:     cfg.Metrics,
	}
}

// Run runs the background duties until ctx ends: rescue of expired leases,
// cross-server wake-ups, and the periodic re-check of long-polls.
func (s *Service) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		s.rescueLoop(ctx)
	}()
	go func() {
		defer wg.Done()
		s.watchLoop(ctx)
	}()
	wg.Wait()
	return nil
}

func (s *Service) rescueLoop(ctx context.Context) {
	t := time.NewTicker(s.rescueEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if _, err := s.Rescue(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("lease rescue failed", "err", err)
		}
	}
}

// Rescue puts the jobs of dead processors back in the queue and wakes the
// claims waiting for them.
func (s *Service) Rescue(ctx context.Context) (store.RescueResult, error) {
	r, err := s.store.JobRescue(ctx, s.clock.Now())
	if err != nil {
		return r, fmt.Errorf("rescue: %w", err)
	}
	s.metrics.Rescued(r.Requeued, r.Failed, r.Canceled)
	for typ, states := range r.Ended {
		for st, n := range states {
			s.metrics.EndedN(typ, st, n)
		}
	}
	if r.Requeued+r.Failed+r.Canceled > 0 {
		s.log.Info("rescued jobs with expired leases", "requeued", r.Requeued, "failed", r.Failed, "canceled", r.Canceled)
	}
	for _, t := range r.Types {
		s.wake.Signal(t)
	}
	if r.Failed+r.Canceled > 0 {
		// Jobs that ended for good may be steps of instances to decide.
		s.wake.Signal(wake.Instances)
	}
	return r, nil
}

// watchLoop relays other servers' notifications to local long-polls.
func (s *Service) watchLoop(ctx context.Context) {
	if !s.store.Capabilities().Notify {
		return
	}
	for ctx.Err() == nil {
		err := s.store.WatchJobs(ctx, s.wake.Signal)
		if err != nil && ctx.Err() == nil {
			s.log.Warn("job notifications interrupted", "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
	}
}

// KnownType reports whether jobs of the type may be submitted: a built-in
// type, or one registered by a processor or through the types API.
func (s *Service) KnownType(ctx context.Context, name string) (bool, error) {
	if _, ok := s.builtins[name]; ok {
		return true, nil
	}
	s.typesMu.Lock()
	defer s.typesMu.Unlock()
	if s.types[name] {
		return true, nil
	}
	// A miss refreshes the cache, at most once a second, so a type just
	// registered on another server becomes known quickly.
	now := s.clock.Now()
	if s.types != nil && now.Sub(s.typesAt) < time.Second {
		return false, nil
	}
	list, err := s.store.TypeList(ctx)
	if err != nil {
		return false, fmt.Errorf("list types: %w", err)
	}
	s.types = make(map[string]bool, len(list))
	for _, t := range list {
		s.types[t.Type] = true
	}
	s.typesAt = now
	return s.types[name], nil
}
