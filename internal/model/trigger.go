package model

import (
	"encoding/json"
	"time"
)

// Trigger kinds.
const (
	TriggerSchedule = "schedule"
	TriggerFolder   = "folder"
	TriggerTable    = "table"
)

// Trigger is what the core DB holds of one trigger (schedule, folder
// watcher, table watcher): its state lives here, never in the trigger's
// process, so any copy continues where another stopped.
type Trigger struct {
	Name        string          `json:"name"`
	Kind        string          `json:"kind"`
	State       json.RawMessage `json:"state,omitempty"` // kind-specific: last fire time, table cursor, ...
	Mirrored    int             `json:"mirrored"`        // entries in the mirror (watchers)
	LastEventAt *time.Time      `json:"last_event_at,omitempty"`
	LastError   string          `json:"last_error,omitempty"`
	ErrorAt     *time.Time      `json:"error_at,omitempty"`
	UpdatedAt   time.Time       `json:"updated_at"`
	// Active is the holder of the trigger's standby lease, if any.
	Active string `json:"active,omitempty"`
	// Mode is how the copies seen run it: TriggerStandby (Active is the
	// one acting) or TriggerConcurrent (every copy acts); empty when no
	// copy holds a live lease of the trigger.
	Mode string `json:"mode,omitempty"`
	// Paused: an operator paused the trigger; while paused it starts
	// nothing (every event is recorded as skipped and consumed).
	Paused   bool       `json:"paused,omitempty"`
	PausedAt *time.Time `json:"paused_at,omitempty"`
	// Schedule is what a schedule's scheduler reported of its config
	// (nil until it has, and for watchers); Next its next fire times from
	// now, computed by the server from it.
	Schedule *ScheduleSpec `json:"schedule,omitempty"`
	Next     []time.Time   `json:"next,omitempty"`
}

// ScheduleSpec is what a scheduler reports of a schedule's config, kept
// in the trigger's state under "spec": enough for the server to tell the
// next fire times and to fire it now on an operator's request.
type ScheduleSpec struct {
	Cron     string         `json:"cron"`
	Timezone string         `json:"timezone,omitempty"`
	Template string         `json:"template"`
	Args     map[string]any `json:"args,omitempty"`
	Priority int            `json:"priority,omitempty"`
	Disabled bool           `json:"disabled,omitempty"`
}

// Trigger run modes, as Trigger.Mode reports them.
const (
	TriggerStandby    = "standby"
	TriggerConcurrent = "concurrent"
)

// TriggerConcurrentLease prefixes the lease that concurrent copies of a
// trigger keep ("trigger-concurrent/<name>") so that the server can tell a
// trigger is running: one copy holds it at a time, but all of them act.
const TriggerConcurrentLease = "trigger-concurrent/"

// Trigger record actions: what became of one event.
const (
	RecordStarted   = "started"   // an instance was created
	RecordExisting  = "existing"  // its instance existed already (another copy fired it)
	RecordSkipped   = "skipped"   // not started: misfire policy, approval said no, filter, dry run
	RecordOverlap   = "overlap"   // not started: the previous instance still runs (overlap: skip)
	RecordThrottled = "throttled" // not started: too many running instances of this trigger
	RecordBaseline  = "baseline"  // remembered at first start without starting anything
	RecordFailed    = "failed"    // could not start: bad template or arguments
)

// TriggerRecord is the visible trace of one trigger event.
type TriggerRecord struct {
	Trigger    string    `json:"trigger"`
	Key        string    `json:"key"` // fire time, path@fingerprint, row key
	Event      string    `json:"event,omitempty"`
	Action     string    `json:"action"`
	InstanceID int64     `json:"instance_id,omitempty"`
	Instance   string    `json:"instance,omitempty"` // the deterministic instance name
	Reason     string    `json:"reason,omitempty"`
	At         time.Time `json:"at"`
}

// Start asks for one instance for one trigger event. The server creates it
// (idempotently, by Instance.Name) and records the outcome.
type Start struct {
	Key      string       `json:"key"`
	Event    string       `json:"event,omitempty"`
	Instance InstanceSpec `json:"instance"`
	// Skip records the event as skipped with Reason instead of starting.
	Skip   bool   `json:"skip,omitempty"`
	Reason string `json:"reason,omitempty"`
	// Data is what ${{ }} expressions in Instance.Args see besides the
	// usual names, e.g. {"fire_time": "2026-11-25T02:00:00Z"}.
	Data map[string]any `json:"data,omitempty"`
}

// FireRequest is the body of POST /v1/triggers/{name}/fire: a scheduler's
// due fire times, applied with its new state in one transaction.
type FireRequest struct {
	Kind  string          `json:"kind"`
	Fires []Start         `json:"fires"`
	State json.RawMessage `json:"state,omitempty"`
	// Overlap "skip" records a fire as overlap while an instance this
	// trigger started is not final; Throttle > 0 caps its non-final
	// instances (later fires are "throttled": not started, not consumed).
	Overlap  string `json:"overlap,omitempty"`
	Throttle int    `json:"throttle,omitempty"`
	// ThrottleMode "skip" consumes a throttled fire (recorded); "wait"
	// stops at it: neither it nor later fires are consumed and State is not
	// stored, so the scheduler offers them again later.
	ThrottleMode string `json:"throttle_mode,omitempty"`
	DryRun       bool   `json:"dry_run,omitempty"`
}

// Observation is the body of POST /v1/triggers/{name}/observe: one page of
// what a watcher sees (files or rows), compared with the mirror in the core
// DB; changes start instances in the same transaction.
type Observation struct {
	Kind string `json:"kind"`
	// Pass identifies one full scan; Complete marks its last page, after
	// which mirror entries not seen since the pass began are deleted.
	Pass     string         `json:"pass"`
	Complete bool           `json:"complete,omitempty"`
	Items    []ObservedItem `json:"items"`
	// Incremental pages (table watcher version polls) report changes only
	// and never count as a full pass.
	Incremental bool `json:"incremental,omitempty"`
	// On maps events (created, updated, deleted) to what to start; args
	// may hold ${{ }} expressions over event / row.
	On map[string]EventAction `json:"on"`
	// FirstStart: "baseline" remembers what exists without starting
	// anything when the mirror is empty; "fire" treats it as created.
	FirstStart string          `json:"first_start,omitempty"`
	DryRun     bool            `json:"dry_run,omitempty"`
	State      json.RawMessage `json:"state,omitempty"` // e.g. the table cursor, stored with the page
	// ReadAfter is the newest TriggerResult.Seq this copy had been given
	// before it read the source for this page. An item whose mirror entry
	// another observation changed after that may be older than what the
	// mirror holds (two copies of a concurrent watcher read the same row
	// at different times); it is not compared but deferred (returned in
	// Deferred) for a fresh read, and the page does not store State.
	// Absent: every item is compared (a watcher that does not send it, as
	// before).
	ReadAfter *int64 `json:"read_after,omitempty"`
}

// ObservedItem is one file or row as a watcher sees it.
type ObservedItem struct {
	Key         string         `json:"key"`
	Fingerprint string         `json:"fingerprint"`
	Data        map[string]any `json:"data,omitempty"` // event or row fields for args
	// Deleted reports that the watcher saw the item go (an incremental
	// delete, without waiting for a full pass).
	Deleted bool `json:"deleted,omitempty"`
	// Unstable: the item exists but is still changing (a file being
	// written). It counts as present (never deleted by a full pass) but
	// is neither compared nor stored until it is stable.
	Unstable bool `json:"unstable,omitempty"`
}

// EventAction is what one event starts.
type EventAction struct {
	Template string         `json:"template"`
	Args     map[string]any `json:"args,omitempty"`
	Priority int            `json:"priority,omitempty"`
}

// TriggerResult answers fire and observe requests.
type TriggerResult struct {
	Records []TriggerRecord `json:"records"`
	Trigger Trigger         `json:"trigger"`
	// Seq is the trigger's newest mirror change number once the request
	// was done; a watcher sends it back as Observation.ReadAfter with
	// pages it reads from now on.
	Seq int64 `json:"seq"`
	// Deferred lists the keys of items an observation neither compared nor
	// stored, because another copy changed them after ReadAfter: the
	// watcher reads them again.
	Deferred []string `json:"deferred,omitempty"`
}
