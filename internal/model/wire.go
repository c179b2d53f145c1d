package model

import "time"

// Wire types of the HTTP API (/v1) that have no other home. The API
// reference lives in README; the client and the server share these.

// Problem is an RFC 9457 problem+json error body.
type Problem struct {
	Type   string `json:"type,omitempty"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail,omitempty"`
	// Field names the input at fault, e.g. "params.path" or "jobs[2].type".
	Field string `json:"field,omitempty"`
	// Errors lists every fault when there are several (template import).
	Errors []Issue `json:"errors,omitempty"`
}

// Issue is one fault of a document: where it is and why it is refused.
type Issue struct {
	Line   int    `json:"line,omitempty"`
	Step   string `json:"step,omitempty"`
	Field  string `json:"field,omitempty"`
	Reason string `json:"reason"`
}

// JobBatch is the body of POST /v1/jobs/batch.
type JobBatch struct {
	Jobs []JobSpec `json:"jobs"`
}

// JobList is a list of jobs: the answer of a claim or a batch submit.
type JobList struct {
	Jobs []Job `json:"jobs"`
}

// HeartbeatRequest is the body of POST /v1/heartbeats: one call renews every
// lease a processor holds.
type HeartbeatRequest struct {
	Processor string      `json:"processor"`
	LeaseTTL  Duration    `json:"lease_ttl,omitempty"`
	Jobs      []Heartbeat `json:"jobs"`
}

// HeartbeatResponse answers a HeartbeatRequest, one result per job.
type HeartbeatResponse struct {
	Jobs []HeartbeatResult `json:"jobs"`
}

// PriorityRequest is the body of POST /v1/jobs/{id}/priority.
type PriorityRequest struct {
	Priority *int `json:"priority"`
}

// ReleaseRequest is the body of POST /v1/jobs/{id}/release.
type ReleaseRequest struct {
	Epoch int64 `json:"epoch"`
}

// Items wraps a list without paging (types, processors).
type Items[T any] struct {
	Items []T `json:"items"`
}

// Status is the answer of GET /v1/status.
type Status struct {
	Server     ServerInfo       `json:"server"`
	Processors []Processor      `json:"processors"`
	Types      []TypeLimit      `json:"types"`
	Jobs       map[JobState]int `json:"jobs"` // count per state
	Triggers   []Trigger        `json:"triggers"`
}

// ServerInfo describes the answering server.
type ServerInfo struct {
	ID      string    `json:"id"`
	Version string    `json:"version"`
	DB      string    `json:"db"` // engine: postgres or sqlite
	Ready   bool      `json:"ready"`
	DBError string    `json:"db_error,omitempty"`
	Started time.Time `json:"started_at"`
	Now     time.Time `json:"now"`
}

// CompletionBatch is the body of POST /v1/completions: many outcomes in
// one call, applied in one transaction (group commit).
type CompletionBatch struct {
	Completions []BatchCompletion `json:"completions"`
}

// BatchCompletion is one outcome of a CompletionBatch.
type BatchCompletion struct {
	ID int64 `json:"id"`
	Completion
}

// CompletionResult is the outcome of one BatchCompletion: Status 200 with
// the job, or 409 (stale epoch: drop the work) or 404 with Error.
type CompletionResult struct {
	ID     int64  `json:"id"`
	Status int    `json:"status"`
	Job    *Job   `json:"job,omitempty"`
	Error  string `json:"error,omitempty"`
}

// CompletionResults answers a CompletionBatch, in order.
type CompletionResults struct {
	Results []CompletionResult `json:"results"`
}
