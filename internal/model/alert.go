package model

import "time"

// AlertKind is the condition an alert rule watches.
type AlertKind string

// The alert kinds: a workflow instance that failed (one alert per failure),
// a standby group whose lease no copy holds, a job type with queued jobs
// and no live processor serving it.
const (
	AlertWorkflowFailed AlertKind = "workflow_failed"
	AlertGroupInactive  AlertKind = "group_inactive"
	AlertNoProcessor    AlertKind = "no_processor"
)

// AlertState is where an alert stands.
type AlertState string

// Alert states: pending (the condition holds, its `for` has not passed),
// firing (notified, or being notified), resolved (the condition cleared).
const (
	AlertPending  AlertState = "pending"
	AlertFiring   AlertState = "firing"
	AlertResolved AlertState = "resolved"
)

// GroupLeasePrefixes are the lease name prefixes of standby groups: one
// active copy holds the lease, the others wait to take it over.
var GroupLeasePrefixes = []string{"worker/", "trigger/", "server/"}

// Alert is one alert and the delivery of its latest notification, kept in
// the core database so that the server evaluating alerts after a takeover
// neither forgets nor repeats one.
type Alert struct {
	// Key is unique: "<rule>/<subject>" for conditions that come and go
	// (groups, job types), "<rule>/<instance id>@<finished unix ms>" for a
	// failure, so a retried instance that fails again alerts again.
	Key     string     `json:"key"`
	Rule    string     `json:"rule"`
	Kind    AlertKind  `json:"kind"`
	Subject string     `json:"subject"` // instance name, group lease, job type
	State   AlertState `json:"state"`
	Summary string     `json:"summary"`
	// Since is when the condition was first seen (a failure: when the
	// instance finished).
	Since      time.Time  `json:"since"`
	FiredAt    *time.Time `json:"fired_at,omitempty"`
	ResolvedAt *time.Time `json:"resolved_at,omitempty"`
	// Notify is the notification still owed to receivers: "firing",
	// "resolved", or "" when every receiver has it (or gave up).
	Notify string `json:"notify,omitempty"`
	// Deliveries of the latest notification, one per receiver.
	Deliveries []AlertDelivery `json:"deliveries,omitempty"`
	UpdatedAt  time.Time       `json:"updated_at"`
}

// AlertDelivery is the state of one notification to one receiver.
type AlertDelivery struct {
	Receiver string `json:"receiver"`
	// Notification is what was (or is being) sent: "firing" or "resolved".
	Notification string `json:"notification"`
	Attempts     int    `json:"attempts"`
	// LastAt is when the latest attempt was made, and LastCall the id of
	// that call (one call may carry many alerts): what a server taking
	// over counts against the rate limit.
	LastAt   *time.Time `json:"last_at,omitempty"`
	LastCall string     `json:"last_call,omitempty"`
	SentAt   *time.Time `json:"sent_at,omitempty"`
	// NextAt is when the next attempt is due after a failure.
	NextAt    *time.Time `json:"next_at,omitempty"`
	LastError string     `json:"last_error,omitempty"`
	// GaveUp: attempts ran out; the notification is not sent.
	GaveUp bool `json:"gave_up,omitempty"`
	// Batch: the call that carried it summarised this many alerts.
	Batch int `json:"batch,omitempty"`
}

// AlertFilter selects alerts for AlertList.
type AlertFilter struct {
	// Open: only alerts pending or firing, or with a notification owed.
	Open bool
	// Rule: only this rule's alerts ("" for all).
	Rule string
	// UpdatedSince: only alerts changed at or after this time (zero: all).
	UpdatedSince time.Time
	Limit        int // default 100
}
