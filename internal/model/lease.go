package model

import (
	"encoding/json"
	"time"
)

// ClaimRequest asks for up to Slots[type] jobs of each type for one
// processor. Jobs are handed out by priority (higher first), then FIFO.
type ClaimRequest struct {
	Processor string            `json:"processor"`
	Slots     map[string]int    `json:"slots"`            // free capacity per job type
	Labels    map[string]string `json:"labels,omitempty"` // a job's selector must be a subset
	LeaseTTL  Duration          `json:"lease_ttl,omitempty"`
	// Wait is how long a claim that finds nothing may wait for work
	// (long-poll). Zero returns at once.
	Wait Duration `json:"wait,omitempty"`
	// Trace asks for each claimed job's trace context (Job.Trace): a
	// processor that exports traces sets it.
	Trace bool `json:"trace,omitempty"`
}

// Heartbeat renews the lease on one held job and may carry progress.
type Heartbeat struct {
	ID       int64  `json:"id"`
	Epoch    int64  `json:"epoch"`
	Progress *int   `json:"progress,omitempty"`
	Message  string `json:"message,omitempty"`
	// LeaseTTL renews the lease by this much on a single progress call
	// (POST /v1/jobs/{id}/progress); batched heartbeats carry theirs in
	// the request. Zero: the default 30 s.
	LeaseTTL Duration `json:"lease_ttl,omitempty"`
}

// LeaseStatus is the server's answer to one heartbeat.
type LeaseStatus string

// Lease statuses: keep running, stop because cancel was asked, or drop the
// work because the lease is no longer this holder's.
const (
	LeaseOK       LeaseStatus = "ok"
	LeaseCanceled LeaseStatus = "canceled"
	LeaseLost     LeaseStatus = "lost"
)

// HeartbeatResult answers one Heartbeat.
type HeartbeatResult struct {
	ID         int64       `json:"id"`
	Status     LeaseStatus `json:"status"`
	LeaseUntil time.Time   `json:"lease_until,omitzero"`
}

// Completion reports a job's outcome under the epoch of the claim.
type Completion struct {
	ID     int64           `json:"-"`
	Epoch  int64           `json:"epoch"`
	Result json.RawMessage `json:"result,omitempty"`
	// Error set means failure. Permanent skips the remaining attempts.
	Error     string `json:"error,omitempty"`
	Permanent bool   `json:"permanent,omitempty"`
}

// TypeLimit is the cluster-wide policy for one job type, enforced at claim
// time across all processors.
type TypeLimit struct {
	Type string `json:"type"`
	// MaxRunning caps running jobs of the type in the whole cluster (0: none).
	MaxRunning int `json:"max_running,omitempty"`
	// Rate is claims per second allowed (0: unlimited), with Burst claims
	// allowed at once (default: max(1, Rate)).
	Rate  float64 `json:"rate,omitempty"`
	Burst int     `json:"burst,omitempty"`
}

// Processor is what the server knows of one job processor.
type Processor struct {
	ID     string            `json:"id"`
	Host   string            `json:"host,omitempty"`
	Labels map[string]string `json:"labels,omitempty"`
	Quota  map[string]int    `json:"quota,omitempty"`
	// ProcessorPresence is the rest of what the processor reports about
	// itself; its fields appear at the top level in JSON.
	ProcessorPresence
	// Running counts the jobs the core DB has running on this processor,
	// RunningByType the same per type (server-side, at the time of the
	// read).
	Running       int            `json:"running"`
	RunningByType map[string]int `json:"running_by_type,omitempty"`
	Draining      bool           `json:"draining,omitempty"`
	// Gone: the processor stopped announcing itself (no call for three of
	// its intervals); set by the server when it lists processors.
	Gone     bool      `json:"gone,omitempty"`
	LastSeen time.Time `json:"last_seen,omitzero"`
	Started  time.Time `json:"started_at,omitzero"`
}

// ProcessorPresence is what a processor reports about itself at each
// announcement besides its identity, labels and quota: engine data, kept
// apart from the labels (user data for selectors) in storage too.
type ProcessorPresence struct {
	// Unavailable lists the job types this processor has a handler for
	// but cannot run here, each with the reason (ffmpeg missing): it
	// claims none of them.
	Unavailable map[string]string `json:"unavailable,omitempty"`
	// Version is the dpe version the processor runs.
	Version string `json:"version,omitempty"`
	// Used is the processor's own count of the slots taken per type (at
	// its last announcement): jobs it runs or still reports. Its quota
	// minus Used is what it may claim.
	Used map[string]int `json:"used,omitempty"`
	// Every is how often the processor announces itself; the server
	// marks it Gone after three silent intervals.
	Every Duration `json:"every,omitzero"`
}

// DefaultPresenceEvery is how often a processor announces itself unless
// configured otherwise (and what the server assumes of one that does not
// say).
const DefaultPresenceEvery = 10 * time.Second

// MaxPresenceEvery is the longest announcement interval a processor may
// have: the server lists processors seen within the last minute, so one
// must count as gone (three intervals) before it drops off the list.
const MaxPresenceEvery = 20 * time.Second

// GoneAfter is how long a processor may be silent before it counts as
// gone: three of its announcement intervals.
func (p Processor) GoneAfter() time.Duration {
	every := time.Duration(p.Every)
	if every <= 0 {
		every = DefaultPresenceEvery
	}
	return 3 * every
}

// Lease is a named lease: leadership of a standby group, or ownership of a
// workflow instance. Epoch grows on every change of holder.
type Lease struct {
	Name   string    `json:"name"`
	Holder string    `json:"holder"`
	Epoch  int64     `json:"epoch"`
	Until  time.Time `json:"until"`
}
