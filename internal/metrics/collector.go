package metrics

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dpe-engine/dpe/internal/model"
	"github.com/dpe-engine/dpe/internal/store"
)

// Source is what the state collector reads at scrape time: cheap
// aggregate queries the store already answers.
type Source interface {
	JobCounts(ctx context.Context) (map[model.JobState]int, error)
	ProcessorList(ctx context.Context, seenSince time.Time) ([]model.Processor, error)
	LeaseList(ctx context.Context, prefix string) ([]model.Lease, error)
}

// GroupPrefixes are the lease name prefixes of standby groups: one active
// copy holds the lease, the others wait to take it over.
var GroupPrefixes = model.GroupLeasePrefixes

// StateConfig configures the state collector.
type StateConfig struct {
	Source Source
	Now    func() time.Time // default time.Now
	Log    *slog.Logger     // default slog.Default()
	// CacheFor is how long one reading of the store answers scrapes, so
	// that a storm of scrapes costs the database one query set. Default 5s.
	CacheFor time.Duration
	// SeenWithin is how recent a processor's heartbeat must be for it to
	// count. Default 1m.
	SeenWithin time.Duration
	// Timeout bounds one reading. Default 5s.
	Timeout time.Duration
}

// State is a prometheus.Collector of the plant's state read from the store.
type State struct {
	cfg StateConfig

	jobs, slots, slotUse, procs, active *prometheus.Desc
	errors                              prometheus.Counter

	conns, connsMax, waits, waitTime, commit *prometheus.Desc
	queue                                    *prometheus.Desc

	mu   sync.Mutex
	at   time.Time
	last []prometheus.Metric
}

// NewState returns the collector; register it on the server's registry.
func NewState(cfg StateConfig) *State {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.CacheFor <= 0 {
		cfg.CacheFor = 5 * time.Second
	}
	if cfg.SeenWithin <= 0 {
		cfg.SeenWithin = time.Minute
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 5 * time.Second
	}
	return &State{
		cfg:      cfg,
		jobs:     prometheus.NewDesc(NameJobs, "Jobs in the core database by state (queued and running: the queue's depth).", []string{"state"}, nil),
		slots:    prometheus.NewDesc(NameSlots, "Slots (quota) of live processors by job type.", []string{"type"}, nil),
		slotUse:  prometheus.NewDesc(NameSlotUse, "Slots of live processors used (jobs running) and free.", []string{"use"}, nil),
		procs:    prometheus.NewDesc(NameProcessors, "Processors by whether they heartbeated within the window.", []string{"status"}, nil),
		active:   prometheus.NewDesc(NameActiveCopies, "Copies holding the lease of a standby group (1 or 0).", []string{"group"}, nil),
		queue:    prometheus.NewDesc(NameQueue, "Unfinished jobs by type and state (queued, running); types without any are absent.", []string{"type", "state"}, nil),
		conns:    prometheus.NewDesc(NameDBConns, "Connections of a core database pool, in use or idle.", []string{"pool", "state"}, nil),
		connsMax: prometheus.NewDesc(NameDBConnsMax, "Connections a core database pool allows (0: no limit).", []string{"pool"}, nil),
		waits:    prometheus.NewDesc(NameDBWaits, "Acquisitions of a connection that waited for one.", []string{"pool"}, nil),
		waitTime: prometheus.NewDesc(NameDBWaitSeconds, "Total time waited for a connection.", []string{"pool"}, nil),
		commit:   prometheus.NewDesc(NameDBCommitSeconds, "Time of the commits of write transactions.", nil, nil),
		errors:   prometheus.NewCounter(prometheus.CounterOpts{Name: NameScrapeErrors, Help: "Failed readings of the store's state for a scrape."}),
	}
}

// Describe implements prometheus.Collector.
func (s *State) Describe(ch chan<- *prometheus.Desc) {
	ch <- s.jobs
	ch <- s.slots
	ch <- s.slotUse
	ch <- s.procs
	ch <- s.active
	ch <- s.queue
	ch <- s.conns
	ch <- s.connsMax
	ch <- s.waits
	ch <- s.waitTime
	ch <- s.commit
	s.errors.Describe(ch)
}

// Collect implements prometheus.Collector: the cached reading when fresh,
// a new one otherwise. A failed reading serves the previous one.
func (s *State) Collect(ch chan<- prometheus.Metric) {
	s.mu.Lock()
	now := s.cfg.Now()
	if s.last == nil || now.Sub(s.at) >= s.cfg.CacheFor {
		ms, err := s.read(now)
		if err != nil {
			s.errors.Inc()
			s.cfg.Log.Warn("metrics: read state", "err", err)
		} else {
			s.last, s.at = ms, now
		}
	}
	ms := s.last
	s.mu.Unlock()
	for _, m := range ms {
		ch <- m
	}
	s.errors.Collect(ch)
	if st, ok := s.cfg.Source.(store.Statser); ok {
		s.collectPools(ch, st.Stats()) // in memory: read at every scrape
	}
}

// collectPools reports an engine's connection pools and commit latency.
func (s *State) collectPools(ch chan<- prometheus.Metric, st store.Stats) {
	for _, p := range st.Pools {
		ch <- prometheus.MustNewConstMetric(s.conns, prometheus.GaugeValue, float64(p.InUse), p.Name, "in_use")
		ch <- prometheus.MustNewConstMetric(s.conns, prometheus.GaugeValue, float64(p.Idle), p.Name, "idle")
		ch <- prometheus.MustNewConstMetric(s.connsMax, prometheus.GaugeValue, float64(p.Max), p.Name)
		ch <- prometheus.MustNewConstMetric(s.waits, prometheus.CounterValue, float64(p.Waits), p.Name)
		ch <- prometheus.MustNewConstMetric(s.waitTime, prometheus.CounterValue, p.WaitTime.Seconds(), p.Name)
	}
	buckets := make(map[float64]uint64, len(store.CommitBuckets))
	for i, b := range store.CommitBuckets {
		buckets[b.Seconds()] = st.Commits.Cumulative[i]
	}
	ch <- prometheus.MustNewConstHistogram(s.commit, st.Commits.Count, st.Commits.Sum.Seconds(), buckets)
}

func (s *State) read(now time.Time) ([]prometheus.Metric, error) {
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.Timeout)
	defer cancel()
	counts, err := s.cfg.Source.JobCounts(ctx)
	if err != nil {
		return nil, err
	}
	var out []prometheus.Metric
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		out = append(out, prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...))
	}
	for _, st := range []model.JobState{model.JobQueued, model.JobRunning, model.JobSucceeded, model.JobFailed, model.JobCanceled} {
		gauge(s.jobs, float64(counts[st]), string(st))
	}
	var byType map[string]map[model.JobState]int
	if qc, ok := s.cfg.Source.(store.QueueCounter); ok {
		if byType, err = qc.JobQueueCounts(ctx); err != nil {
			return nil, err
		}
	}
	all, err := s.cfg.Source.ProcessorList(ctx, time.Time{})
	if err != nil {
		return nil, err
	}
	// The processors table has each processor's quota per type but only
	// its running total: capacity is per type, use is plant-wide.
	capacity := map[string]int{}
	var live, stale, running, total int
	for _, p := range all {
		if now.Sub(p.LastSeen) > s.cfg.SeenWithin {
			stale++
			continue
		}
		live++
		running += p.Running
		for t, q := range p.Quota {
			capacity[t] += q
			total += q
		}
	}
	for t, q := range capacity {
		gauge(s.slots, float64(q), t)
		if _, ok := byType[t]; !ok && byType != nil {
			byType[t] = nil // a served type's empty queue shows as 0
		}
	}
	for t, c := range byType {
		gauge(s.queue, float64(c[model.JobQueued]), t, string(model.JobQueued))
		gauge(s.queue, float64(c[model.JobRunning]), t, string(model.JobRunning))
	}
	gauge(s.slotUse, float64(running), "used")
	gauge(s.slotUse, float64(max(total-running, 0)), "free")
	gauge(s.procs, float64(live), "live")
	gauge(s.procs, float64(stale), "stale")
	for _, prefix := range GroupPrefixes {
		ls, err := s.cfg.Source.LeaseList(ctx, prefix)
		if err != nil {
			return nil, err
		}
		for _, l := range ls {
			if !strings.HasPrefix(l.Name, prefix) {
				continue
			}
			v := 0.0
			if l.Holder != "" && l.Until.After(now) {
				v = 1
			}
			gauge(s.active, v, l.Name)
		}
	}
	return out, nil
}
