// Package metrics holds the server's Prometheus series beyond HTTP: the
// counters and histograms the services feed as work flows (dispatch
// latency, job and workflow outcomes, attempts, rescues) and a collector
// that reads the plant's state from the store at scrape time (queue
// depth, processor slots, active copies of standby groups).
//
// Labels carry only bounded values: job types and template names, which
// users define, and states; never instance or job ids.
package metrics

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dpe-engine/dpe/internal/model"
)

// Names of the series, shared with the dashboard and alert rules in deploy/.
const (
	NameJobs             = "dpe_jobs"
	NameQueue            = "dpe_job_queue"
	NameDispatchSeconds  = "dpe_job_dispatch_seconds"
	NameJobOutcomes      = "dpe_job_outcomes_total"
	NameJobAttempts      = "dpe_job_attempts_total"
	NameJobRescued       = "dpe_job_lease_expired_total"
	NameWorkflowOutcomes = "dpe_workflow_outcomes_total"
	NameSlots            = "dpe_processor_slots"
	NameSlotUse          = "dpe_processor_slots_use"
	NameProcessors       = "dpe_processors"
	NameActiveCopies     = "dpe_group_active_copies"
	NameScrapeErrors     = "dpe_metrics_scrape_errors_total"
	NameDBConns          = "dpe_db_connections"
	NameDBConnsMax       = "dpe_db_connections_max"
	NameDBWaits          = "dpe_db_connection_waits_total"
	NameDBWaitSeconds    = "dpe_db_connection_wait_seconds_total"
	NameDBCommitSeconds  = "dpe_db_commit_seconds"
)

// Jobs is what the job service reports. A nil *Jobs reports nothing, so a
// service built without metrics (tests) needs no branch.
type Jobs struct {
	dispatch *prometheus.HistogramVec
	outcomes *prometheus.CounterVec
	attempts *prometheus.CounterVec
	rescued  *prometheus.CounterVec
}

// NewJobs registers the job series on reg.
func NewJobs(reg prometheus.Registerer) *Jobs {
	m := &Jobs{
		dispatch: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    NameDispatchSeconds,
			Help:    "Time from a job becoming claimable (created or its run-after time) to its claim, by type.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600},
		}, []string{"type"}),
		outcomes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: NameJobOutcomes, Help: "Jobs that reached a final state, by type and state.",
		}, []string{"type", "state"}),
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: NameJobAttempts, Help: "Job attempts started (claims), by type.",
		}, []string{"type"}),
		rescued: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: NameJobRescued, Help: "Jobs whose lease expired (processor lost), by what became of them.",
		}, []string{"result"}),
	}
	reg.MustRegister(m.dispatch, m.outcomes, m.attempts, m.rescued)
	for _, r := range []string{"requeued", "failed", "canceled"} {
		m.rescued.WithLabelValues(r)
	}
	return m
}

// Claimed observes jobs handed to a processor at now.
func (m *Jobs) Claimed(now time.Time, jobs []model.Job) {
	if m == nil {
		return
	}
	for _, j := range jobs {
		m.attempts.WithLabelValues(j.Type).Inc()
		from := j.CreatedAt
		if j.RunAfter.After(from) {
			from = j.RunAfter
		}
		d := now.Sub(from)
		if d < 0 {
			d = 0
		}
		m.dispatch.WithLabelValues(j.Type).Observe(d.Seconds())
	}
}

// Ended counts a job that reached a final state; others are ignored (a
// failed attempt going back to the queue for a retry).
func (m *Jobs) Ended(j model.Job) {
	if m == nil || !j.State.Final() {
		return
	}
	m.outcomes.WithLabelValues(j.Type, string(j.State)).Inc()
}

// EndedN counts n jobs of typ that reached final state st at once (a
// rescue of expired leases).
func (m *Jobs) EndedN(typ string, st model.JobState, n int) {
	if m == nil || !st.Final() {
		return
	}
	m.outcomes.WithLabelValues(typ, string(st)).Add(float64(n))
}

// Rescued counts the jobs a rescue of expired leases dealt with.
func (m *Jobs) Rescued(requeued, failed, canceled int) {
	if m == nil {
		return
	}
	m.rescued.WithLabelValues("requeued").Add(float64(requeued))
	m.rescued.WithLabelValues("failed").Add(float64(failed))
	m.rescued.WithLabelValues("canceled").Add(float64(canceled))
}

// Workflows is what the workflow service reports; nil reports nothing.
type Workflows struct {
	outcomes *prometheus.CounterVec
}

// NewWorkflows registers the workflow series on reg.
func NewWorkflows(reg prometheus.Registerer) *Workflows {
	m := &Workflows{outcomes: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: NameWorkflowOutcomes, Help: "Workflow instances that reached a final state, by template and state.",
	}, []string{"template", "state"})}
	reg.MustRegister(m.outcomes)
	return m
}

// Ended counts an instance that reached a final state.
func (m *Workflows) Ended(inst model.Instance) {
	if m == nil || !inst.State.Final() {
		return
	}
	m.outcomes.WithLabelValues(inst.Template, string(inst.State)).Inc()
}

// NameReady is the readiness gauge: 1 when the server answers /readyz.
const NameReady = "dpe_ready"

// RegisterReady registers dpe_ready, which asks ready at each scrape (a
// ping of the core database: cheap).
func RegisterReady(reg prometheus.Registerer, ready func(ctx context.Context) error) {
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: NameReady, Help: "1 when the server is ready (its core database answers and it is not shutting down), else 0.",
	}, func() float64 {
		if ready(context.Background()) != nil {
			return 0
		}
		return 1
	}))
}

// NameTriggerEvents counts trigger events.
const NameTriggerEvents = "dpe_trigger_events_total"

// Triggers is what the trigger service reports; nil reports nothing.
type Triggers struct {
	events *prometheus.CounterVec
}

// NewTriggers registers the trigger series on reg.
func NewTriggers(reg prometheus.Registerer) *Triggers {
	m := &Triggers{events: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: NameTriggerEvents,
		Help: "Trigger events recorded, by trigger kind, event (fire, created, updated, deleted) and what was done (started, skipped, throttled, baseline, failed).",
	}, []string{"kind", "event", "action"})}
	reg.MustRegister(m.events)
	return m
}

// Recorded counts the records of one fire or observation of a trigger of kind.
func (m *Triggers) Recorded(kind string, recs []model.TriggerRecord) {
	if m == nil {
		return
	}
	for _, r := range recs {
		ev := r.Event
		if ev == "" {
			ev = "fire"
		}
		m.events.WithLabelValues(kind, ev, r.Action).Inc()
	}
}
