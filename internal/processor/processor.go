// Package processor is the job processor role (DESIGN §3): it declares a
// quota per job type, long-polls the server for work, runs each claimed job
// through its handler, renews all its leases with one batched heartbeat,
// reports progress and outcomes under the claim's epoch, and on shutdown
// stops claiming, lets running jobs finish within a grace period and gives
// back the rest.
package processor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dpe-engine/dpe/internal/client"
	"github.com/dpe-engine/dpe/internal/clock"
	"github.com/dpe-engine/dpe/internal/handlers"
	"github.com/dpe-engine/dpe/internal/holder"
	"github.com/dpe-engine/dpe/internal/model"
	"github.com/dpe-engine/dpe/internal/tracing"
)

// Defaults of Config.
const (
	DefaultLeaseTTL      = 30 * time.Second
	DefaultPollWait      = 20 * time.Second
	DefaultGrace         = 30 * time.Second
	DefaultPresenceEvery = model.DefaultPresenceEvery
	DefaultProgressEvery = time.Second
	DefaultStopWait      = 5 * time.Second
	DefaultFlushTimeout  = 30 * time.Second
	DefaultResultKeep    = 5 * time.Minute
)

// Config configures a Processor. Client, Quota and Handlers are required.
type Config struct {
	// Client talks to the servers.
	Client *client.Client
	// ID names the processor to the server. Empty: holder.New("processor").
	ID string
	// Quota is the most jobs of each type run at once; each must be > 0
	// and have a handler.
	Quota map[string]int
	// Handlers run the jobs, by type. Types without a quota are not served.
	Handlers map[string]handlers.Handler
	// Labels are matched against jobs' selectors at claim time.
	Labels map[string]string
	// Unavailable names the job types this processor cannot run, with
	// the reason (handlers.Unavailable): announced so that `dpe status`
	// tells why nobody claims them. They must have no quota.
	Unavailable map[string]string
	// LeaseTTL is the lease asked for on claims and heartbeats; one
	// heartbeat call every LeaseTTL/3 renews all held leases. Zero: 30s.
	LeaseTTL time.Duration
	// PollWait is how long a claim waits for work (long poll); at most
	// client.MaxLongPoll. Zero: 20s.
	PollWait time.Duration
	// Grace is how long running jobs may go on after shutdown begins
	// before they are cancelled and given back. Zero: 30s.
	Grace time.Duration
	// PresenceEvery is how often the processor announces itself (its
	// version, quota and used slots); the server marks it gone after three
	// silent intervals. Zero: 10s.
	PresenceEvery time.Duration
	// Version is the dpe version announced to the server.
	Version string
	// ProgressEvery is the shortest interval between two progress calls
	// for one job; progress also rides on every heartbeat. Zero: 1s.
	ProgressEvery time.Duration
	// StopWait is how long, after grace, a cancelled handler may take to
	// return before its job is given back anyway. Zero: 5s.
	StopWait time.Duration
	// FlushTimeout bounds the delivery of outstanding reports (outcomes
	// and give-backs) at shutdown, once all handlers are done. Zero: 30s.
	FlushTimeout time.Duration
	// ResultKeep is how long past its lease's last known expiry a
	// finished job's outcome is kept and re-sent while the servers are
	// unreachable; by then another processor has the job. Zero: 5m.
	ResultKeep time.Duration
	// Log receives the processor's records. Nil: discarded.
	Log *slog.Logger
	// Clock tells the time (lease bookkeeping, progress pacing). Nil: the
	// real clock. Timers stay real.
	Clock clock.Clock
	// Tracing, when enabled, makes a span of every job attempt, in the
	// trace of the job's workflow instance (nil: none).
	Tracing *tracing.Provider
}

// Processor runs jobs for the server. Create it with New, then call Run
// once.
type Processor struct {
	cfg   Config
	c     *client.Client
	log   *slog.Logger
	clock clock.Clock
	host  string
	types []string // served types, sorted

	completer    *completer               // group commit of outcomes
	freed        map[string]chan struct{} // per type: a slot came free
	progressWake chan struct{}
	presenceWake chan struct{}
	// lingerAfter is time.After for claim loops' lingering; tests replace
	// it to end a linger when they choose.
	lingerAfter func(time.Duration) <-chan time.Time

	// ioCtx carries leases, progress and reports; it outlives Run's ctx
	// through the drain. workCtx is the parent of handler contexts. Both
	// are set by Run before it starts any goroutine.
	ioCtx, workCtx context.Context

	// handlers counts running handler goroutines; reports counts outcome
	// and give-back deliveries in flight.
	handlers, reports sync.WaitGroup
	ran               atomic.Bool

	mu       sync.Mutex
	jobs     map[int64]*heldJob // every job whose lease this processor holds
	running  map[string]int     // handlers running, per type
	draining bool
	started  time.Time
	stats    Stats
}

// Stats counts what a processor did since it started.
type Stats struct {
	// Running is the number of handlers running, per served type.
	Running map[string]int
	// Held is the number of leases held: running jobs plus finished ones
	// whose outcome is not delivered yet.
	Held int
	// Completed and Failed count outcomes the server accepted (Failed
	// includes canceled jobs).
	Completed, Failed int
	// Released counts jobs given back.
	Released int
	// Dropped counts jobs whose lease was lost, or whose outcome could not
	// be delivered; another processor runs them again.
	Dropped int
}

// New checks cfg, fills in its defaults and returns a Processor.
func New(cfg Config) (*Processor, error) {
	if cfg.Client == nil {
		return nil, errors.New("processor: no client")
	}
	if len(cfg.Quota) == 0 {
		return nil, errors.New("processor: no quota: give at least one TYPE=N")
	}
	for _, typ := range slices.Sorted(maps.Keys(cfg.Quota)) {
		if n := cfg.Quota[typ]; n <= 0 {
			return nil, fmt.Errorf("processor: quota %s=%d: must be at least 1", typ, n)
		}
		if reason, ok := cfg.Unavailable[typ]; ok {
			return nil, fmt.Errorf("processor: quota for job type %q, which is unavailable here: %s", typ, reason)
		}
		if cfg.Handlers[typ] == nil {
			return nil, fmt.Errorf("processor: quota for job type %q, which has no handler", typ)
		}
	}
	durations := []struct {
		name string
		d    *time.Duration
		def  time.Duration
	}{
		{"lease TTL", &cfg.LeaseTTL, DefaultLeaseTTL},
		{"poll wait", &cfg.PollWait, DefaultPollWait},
		{"grace", &cfg.Grace, DefaultGrace},
		{"presence interval", &cfg.PresenceEvery, DefaultPresenceEvery},
		{"progress interval", &cfg.ProgressEvery, DefaultProgressEvery},
		{"stop wait", &cfg.StopWait, DefaultStopWait},
		{"flush timeout", &cfg.FlushTimeout, DefaultFlushTimeout},
		{"result keep", &cfg.ResultKeep, DefaultResultKeep},
	}
	for _, f := range durations {
		if *f.d < 0 {
			return nil, fmt.Errorf("processor: negative %s %v", f.name, *f.d)
		}
		if *f.d == 0 {
			*f.d = f.def
		}
	}
	if cfg.PresenceEvery > model.MaxPresenceEvery {
		return nil, fmt.Errorf("processor: presence interval %v above %v (the server forgets a processor silent for a minute)", cfg.PresenceEvery, model.MaxPresenceEvery)
	}
	if cfg.LeaseTTL < 30*time.Millisecond {
		return nil, fmt.Errorf("processor: lease TTL %v too short", cfg.LeaseTTL)
	}
	if cfg.PollWait > client.MaxLongPoll {
		return nil, fmt.Errorf("processor: poll wait %v above the server's cap of %v", cfg.PollWait, client.MaxLongPoll)
	}
	host, _ := os.Hostname()
	if cfg.ID == "" {
		cfg.ID = holder.New("processor")
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.Real{}
	}
	cfg.Quota = maps.Clone(cfg.Quota)
	cfg.Unavailable = maps.Clone(cfg.Unavailable)
	cfg.Labels = maps.Clone(cfg.Labels)
	p := &Processor{
		completer:    newCompleter(cfg.Client, cfg.Tracing),
		cfg:          cfg,
		c:            cfg.Client,
		log:          cfg.Log.With("processor", cfg.ID),
		clock:        cfg.Clock,
		host:         host,
		types:        slices.Sorted(maps.Keys(cfg.Quota)),
		freed:        make(map[string]chan struct{}, len(cfg.Quota)),
		progressWake: make(chan struct{}, 1),
		presenceWake: make(chan struct{}, 1),
		lingerAfter:  time.After,
		jobs:         make(map[int64]*heldJob),
		running:      make(map[string]int, len(cfg.Quota)),
	}
	for _, typ := range p.types {
		p.freed[typ] = make(chan struct{}, 1)
	}
	return p, nil
}

// ID returns the processor's name.
func (p *Processor) ID() string { return p.cfg.ID }

// Stats returns a snapshot of the processor's counters.
func (p *Processor) Stats() Stats {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.stats
	s.Running = maps.Clone(p.running)
	for _, typ := range p.types {
		if _, ok := s.Running[typ]; !ok {
			s.Running[typ] = 0
		}
	}
	s.Held = len(p.jobs)
	return s
}

// heartbeatEvery is the interval of the batched heartbeat.
func (p *Processor) heartbeatEvery() time.Duration { return p.cfg.LeaseTTL / 3 }

// signal wakes whoever waits on ch without ever blocking.
func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}
