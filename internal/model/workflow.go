package model

import (
	"encoding/json"
	"time"
)

// InstanceState is the lifecycle state of a workflow instance (DESIGN §4).
type InstanceState string

// Instance states.
const (
	InstancePending   InstanceState = "pending" // created, not yet started by a worker (or queued behind its concurrency key)
	InstanceRunning   InstanceState = "running"
	InstanceSucceeded InstanceState = "succeeded"
	InstanceFailed    InstanceState = "failed"
	InstanceCanceled  InstanceState = "canceled"
)

// Final reports whether no further transition can happen.
func (s InstanceState) Final() bool {
	return s == InstanceSucceeded || s == InstanceFailed || s == InstanceCanceled
}

// Valid reports whether s is one of the known states.
func (s InstanceState) Valid() bool {
	switch s {
	case InstancePending, InstanceRunning, InstanceSucceeded, InstanceFailed, InstanceCanceled:
		return true
	}
	return false
}

// Template is one stored version of a workflow template.
type Template struct {
	Name        string          `json:"name"`
	Version     int             `json:"version"`
	Description string          `json:"description,omitempty"`
	Source      string          `json:"source"`    // the document as imported (YAML or JSON)
	Canonical   json.RawMessage `json:"canonical"` // canonical JSON of the parsed template; equal bytes = identical template
	CreatedAt   time.Time       `json:"created_at"`
}

// Concurrency policies of a template's concurrency_key.
const (
	ConcurrencyAllow = "allow" // start regardless
	ConcurrencySkip  = "skip"  // do not start while one with the same key runs
	ConcurrencyQueue = "queue" // start when the running one with the same key ends
)

// InstanceSpec is what a starter gives for a new instance.
type InstanceSpec struct {
	Template string          `json:"template"`
	Version  int             `json:"version,omitempty"` // 0: the latest
	Name     string          `json:"name,omitempty"`    // unique; default template-random
	Args     json.RawMessage `json:"args,omitempty"`
	Priority int             `json:"priority,omitempty"`
	// Filled by the server from the template, not by callers.
	ConcurrencyKey    string `json:"-"`
	ConcurrencyPolicy string `json:"-"`
	Trigger           string `json:"-"` // the trigger that started it
	// Set by workers for sub-workflows (in an advance); the start API
	// refuses them.
	ParentID   int64  `json:"parent_id,omitempty"`
	ParentStep string `json:"parent_step,omitempty"`
}

// Instance is one run of a workflow template.
type Instance struct {
	ID                int64           `json:"id"`
	Name              string          `json:"name"`
	Template          string          `json:"template"`
	Version           int             `json:"version"`
	Args              json.RawMessage `json:"args"`
	Priority          int             `json:"priority"`
	State             InstanceState   `json:"state"`
	Progress          int             `json:"progress"`
	Current           []string        `json:"current,omitempty"` // paths of the activities in flight
	Vars              json.RawMessage `json:"vars,omitempty"`
	Output            json.RawMessage `json:"output,omitempty"`
	Error             string          `json:"error,omitempty"`
	CancelAsked       bool            `json:"cancel_requested,omitempty"`
	ConcurrencyKey    string          `json:"concurrency_key,omitempty"`
	ConcurrencyPolicy string          `json:"concurrency_policy,omitempty"`
	ParentID          int64           `json:"parent_id,omitempty"`
	ParentStep        string          `json:"parent_step,omitempty"`
	Trigger           string          `json:"trigger,omitempty"` // the trigger that started it

	Worker     string     `json:"worker,omitempty"` // holder of the lease
	Epoch      int64      `json:"epoch"`
	LeaseUntil *time.Time `json:"lease_until,omitempty"`
	WakeAt     *time.Time `json:"wake_at,omitempty"` // when a worker should look again; nil: only on an event
	// WakeSeq counts events (a job or child ending, a cancel). An advance
	// decided on an older count leaves the instance due, so an event that
	// arrives while a worker decides is never lost.
	WakeSeq int64 `json:"wake_seq"`

	CreatedAt  time.Time  `json:"created_at"`
	StartedAt  *time.Time `json:"started_at,omitempty"`
	FinishedAt *time.Time `json:"finished_at,omitempty"`
	UpdatedAt  time.Time  `json:"updated_at"`
}

// StepState is the state of one activity execution within an instance.
type StepState string

// Step states.
const (
	StepRunning   StepState = "running"
	StepSucceeded StepState = "succeeded"
	StepFailed    StepState = "failed"
	StepSkipped   StepState = "skipped"
	StepCanceled  StepState = "canceled"
)

// Step is the durable record of one activity execution, keyed by its path
// in the instance (e.g. "fan[2]/wait"): the interpreter's memory.
type Step struct {
	Path       string          `json:"path"`
	ID         string          `json:"id"`
	Kind       string          `json:"kind"`
	State      StepState       `json:"state"`
	Result     json.RawMessage `json:"result,omitempty"`
	Error      string          `json:"error,omitempty"`
	JobID      int64           `json:"job_id,omitempty"`
	ChildID    int64           `json:"child_id,omitempty"`
	WakeAt     *time.Time      `json:"wake_at,omitempty"` // delay steps: when they end
	StartedAt  time.Time       `json:"started_at"`
	FinishedAt *time.Time      `json:"finished_at,omitempty"`
}

// InstanceFilter selects instances for listing. Zero fields do not filter.
type InstanceFilter struct {
	States    []InstanceState
	Templates []string
	ParentID  int64
	// Trigger selects the instances a trigger started.
	Trigger string
	// CreatedAfter and CreatedBefore are exclusive bounds of CreatedAt.
	CreatedAfter  time.Time
	CreatedBefore time.Time
	After         int64 // cursor: ids below it (lists are newest first)
	Limit         int
}

// Advance is what a worker commits for an instance in one transaction,
// under the epoch of its lease (see workflow.Decide).
type Advance struct {
	InstanceID int64  `json:"instance_id"`
	Worker     string `json:"worker"`
	Epoch      int64  `json:"epoch"`
	// WakeSeq is the instance's WakeSeq the decision was based on.
	WakeSeq int64 `json:"wake_seq"`
	// Steps are upserted by path. A step whose path equals the Step of a
	// submitted job gets that job's id; likewise ParentStep for children.
	Steps []Step `json:"steps,omitempty"`
	// Jobs to submit (idempotent by Key, so a repeat finds the first job).
	Jobs []JobSpec `json:"jobs,omitempty"`
	// Children to create (idempotent by Name).
	Children []InstanceSpec `json:"children,omitempty"`
	// CancelJobs and CancelChildren are asked to stop.
	CancelJobs     []int64         `json:"cancel_jobs,omitempty"`
	CancelChildren []int64         `json:"cancel_children,omitempty"`
	State          InstanceState   `json:"state"`
	Progress       int             `json:"progress"`
	Current        []string        `json:"current,omitempty"`
	Vars           json.RawMessage `json:"vars,omitempty"`
	Output         json.RawMessage `json:"output,omitempty"`
	Error          string          `json:"error,omitempty"`
	// WakeAt: when to look again without an event (delays); nil: only on
	// an event (a job or child ending, a cancel).
	WakeAt *time.Time `json:"wake_at,omitempty"`
	// Release drops the lease after applying (a worker stopping).
	Release bool `json:"release,omitempty"`
}

// InstanceClaimRequest is the body of POST /v1/worker/claims.
type InstanceClaimRequest struct {
	Worker    string         `json:"worker"`
	Templates []string       `json:"templates,omitempty"` // serve only these (empty: all)
	Slots     map[string]int `json:"slots,omitempty"`     // free capacity per template
	Default   int            `json:"default,omitempty"`   // free capacity for other templates
	Limit     int            `json:"limit,omitempty"`
	LeaseTTL  Duration       `json:"lease_ttl,omitempty"`
	Wait      Duration       `json:"wait,omitempty"`
	// Exclude names instances the worker is deciding right now: not
	// returned, even when due (a worker with decisions in flight claims
	// the next batch meanwhile).
	Exclude []int64 `json:"exclude,omitempty"`
	// Detail asks for each claimed instance's InstanceDetail in the
	// answer (InstanceClaimAnswer.Details), saving a call per instance.
	Detail bool `json:"detail,omitempty"`
}

// InstanceClaimAnswer answers POST /v1/worker/claims: the claimed
// instances and, when the request asked for Detail, their details in the
// same order.
type InstanceClaimAnswer struct {
	Items   []Instance       `json:"items"`
	Details []InstanceDetail `json:"details,omitempty"`
}

// StartBatch is the body of POST /v1/workflows/batch: many starts in one
// call, committed together.
type StartBatch struct {
	Workflows []InstanceSpec `json:"workflows"`
}

// StartResult is the outcome of one start of a StartBatch: Status 201
// (started), 200 (the name existed) with the instance, or 409 (its
// concurrency key is busy, policy skip) or 422 with Error.
type StartResult struct {
	Status   int       `json:"status"`
	Instance *Instance `json:"instance,omitempty"`
	Error    string    `json:"error,omitempty"`
}

// StartResults answers a StartBatch, in order.
type StartResults struct {
	Results []StartResult `json:"results"`
}

// AdvanceBatch is the body of POST /v1/worker/advances: many decisions in
// one call, applied in one transaction (group commit).
type AdvanceBatch struct {
	Advances []Advance `json:"advances"`
}

// AdvanceResult is the outcome of one Advance of an AdvanceBatch: Status
// 200 with the instance as it now is, or 409 (the lease is lost: drop the
// instance), 404 or 422 with Error.
type AdvanceResult struct {
	InstanceID int64     `json:"instance_id"`
	Status     int       `json:"status"`
	Instance   *Instance `json:"instance,omitempty"`
	Error      string    `json:"error,omitempty"`
}

// AdvanceResults answers an AdvanceBatch, in order.
type AdvanceResults struct {
	Results []AdvanceResult `json:"results"`
}

// InstanceDetail is an instance with what a worker needs to decide: its
// step records and the jobs and children its running steps wait for.
type InstanceDetail struct {
	Instance Instance   `json:"instance"`
	Steps    []Step     `json:"steps"`
	Jobs     []Job      `json:"jobs,omitempty"`
	Children []Instance `json:"children,omitempty"`
}

// InstanceLeases is the body of worker heartbeats and releases.
type InstanceLeases struct {
	Worker   string   `json:"worker"`
	IDs      []int64  `json:"ids"`
	LeaseTTL Duration `json:"lease_ttl,omitempty"`
}

// LostLeases answers a worker heartbeat.
type LostLeases struct {
	Lost []int64 `json:"lost"`
}
