// Package model holds dpe's domain types and sentinel errors: the vocabulary
// shared by the store, the services, the HTTP API and the client. It imports
// nothing from dpe, so every other package may import it.
package model

import (
	"encoding/json"
	"time"
)

// JobState is the lifecycle state of a job (DESIGN §3).
type JobState string

// Job states. A job waiting for its retry back-off is JobQueued with a
// RunAfter in the future.
const (
	JobQueued    JobState = "queued"
	JobRunning   JobState = "running"
	JobSucceeded JobState = "succeeded"
	JobFailed    JobState = "failed"
	JobCanceled  JobState = "canceled"
)

// Final reports whether no further transition can happen.
func (s JobState) Final() bool {
	return s == JobSucceeded || s == JobFailed || s == JobCanceled
}

// Valid reports whether s is one of the known states.
func (s JobState) Valid() bool {
	switch s {
	case JobQueued, JobRunning, JobSucceeded, JobFailed, JobCanceled:
		return true
	}
	return false
}

// Job is one unit of work for a processor.
type Job struct {
	ID          int64             `json:"id"`
	Type        string            `json:"type"`
	Params      json.RawMessage   `json:"params"`
	Priority    int               `json:"priority"`
	State       JobState          `json:"state"`
	Attempt     int               `json:"attempt"`      // claims so far
	MaxAttempts int               `json:"max_attempts"` // claims allowed
	Backoff     Duration          `json:"backoff"`      // first retry delay, doubled per attempt
	BackoffMax  Duration          `json:"backoff_max"`  // cap of the retry delay
	Timeout     Duration          `json:"timeout"`      // 0: none
	Selector    map[string]string `json:"selector,omitempty"`
	InstanceID  int64             `json:"instance_id,omitempty"` // owning workflow instance
	Step        string            `json:"step,omitempty"`        // step id within the instance
	Key         string            `json:"key,omitempty"`         // idempotency key it was submitted with

	Epoch       int64           `json:"epoch"` // grows on every claim; fences processor calls
	Processor   string          `json:"processor,omitempty"`
	LeaseUntil  *time.Time      `json:"lease_until,omitempty"`
	RunAfter    time.Time       `json:"run_after"`
	Progress    int             `json:"progress"`
	Message     string          `json:"message,omitempty"`
	Result      json.RawMessage `json:"result,omitempty"`
	Error       string          `json:"error,omitempty"`
	CancelAsked bool            `json:"cancel_requested,omitempty"`
	// Trace is the W3C traceparent the job's work goes under (its step's
	// span in its instance's trace). Not stored: a claim's answer carries
	// it when the claim asks (ClaimRequest.Trace).
	Trace string `json:"trace,omitempty"`

	CreatedAt  time.Time  `json:"created_at"`
	StartedAt  *time.Time `json:"started_at,omitempty"`
	FinishedAt *time.Time `json:"finished_at,omitempty"`
	UpdatedAt  time.Time  `json:"updated_at"`
}

// JobSpec is what a submitter gives for a new job. Zero values take the
// defaults of Defaults.
type JobSpec struct {
	Type        string            `json:"type"`
	Params      json.RawMessage   `json:"params,omitempty"`
	Priority    int               `json:"priority,omitempty"`
	MaxAttempts int               `json:"max_attempts,omitempty"`
	Backoff     Duration          `json:"backoff,omitempty"`
	BackoffMax  Duration          `json:"backoff_max,omitempty"`
	Timeout     Duration          `json:"timeout,omitempty"`
	Selector    map[string]string `json:"selector,omitempty"`
	InstanceID  int64             `json:"instance_id,omitempty"`
	Step        string            `json:"step,omitempty"`
	// Key makes the submit idempotent: a second submit with the same key
	// returns the first job instead of creating another.
	Key string `json:"key,omitempty"`
	// RunAfter delays the first claim (zero: now).
	RunAfter time.Time `json:"run_after,omitzero"`
}

// Default job settings applied when a JobSpec leaves them zero.
const (
	DefaultMaxAttempts = 3
	DefaultBackoff     = 2 * time.Second
	DefaultBackoffMax  = 5 * time.Minute
	MaxPriority        = 1000
)

// WithDefaults returns s with zero settings replaced by the defaults.
func (s JobSpec) WithDefaults() JobSpec {
	if s.MaxAttempts == 0 {
		s.MaxAttempts = DefaultMaxAttempts
	}
	if s.Backoff == 0 {
		s.Backoff = Duration(DefaultBackoff)
	}
	if s.BackoffMax == 0 {
		s.BackoffMax = Duration(DefaultBackoffMax)
	}
	if len(s.Params) == 0 {
		s.Params = json.RawMessage(`{}`)
	}
	return s
}

// RetryDelay is the back-off before the next attempt after attempt number
// attempt (1-based) failed: Backoff doubled per attempt, capped at BackoffMax.
func RetryDelay(backoff, backoffMax time.Duration, attempt int) time.Duration {
	d := backoff
	for i := 1; i < attempt && d < backoffMax; i++ {
		d *= 2
	}
	if backoffMax > 0 && d > backoffMax {
		d = backoffMax
	}
	return d
}

// JobFilter selects jobs for listing. Zero fields do not filter.
type JobFilter struct {
	States        []JobState
	Types         []string
	InstanceID    int64
	CreatedAfter  time.Time
	CreatedBefore time.Time
	// After is the paging cursor: only jobs with a smaller id (lists are
	// newest first).
	After int64
	Limit int
}

// CountCap bounds the counts of the lists (Page.Total) and of the
// monitor's jobs per state: counting stops after CountCap matches, so a
// count costs the same on a million rows as on ten thousand.
const CountCap = 10_000

// Page is one page of a list with the total count of matches.
type Page[T any] struct {
	Items []T `json:"items"`
	// Total counts the matches up to CountCap; TotalCapped says there are
	// more ("10,000+").
	Total       int    `json:"total"`
	TotalCapped bool   `json:"total_capped,omitempty"`
	Next        string `json:"next,omitempty"`
}

// CappedTotal turns a count of at most CountCap+1 matches into Total and
// TotalCapped.
func (p *Page[T]) CappedTotal(n int) {
	p.Total, p.TotalCapped = min(n, CountCap), n > CountCap
}
