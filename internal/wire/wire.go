// Package wire is the /v1 contract of dpe's HTTP API: every request and
// response body as a Go type, and the limits a request must respect. It is
// what an SDK in another language implements; the server (internal/api)
// and the Go client (internal/client) both speak through it, so a change
// of a body is a change here that the compiler carries to every caller.
//
// Domain entities (model.Job, model.Instance, model.Trigger, model.Lease,
// ...) live in internal/model; the bodies here refer to them. Bodies that
// are also the input of a server service (model.JobSpec, model.ClaimRequest,
// model.InstanceClaimRequest, model.InstanceLeases, model.Advance,
// model.FireRequest, model.Observation) stay in model with them.
//
// The package is a leaf: it imports internal/model and the standard
// library only, so a remote role can depend on it without pulling in any
// server-side code. JSON shapes here are the wire format: renaming a field
// or a tag breaks every deployed client.
package wire

import (
	"time"

	"github.com/dpe-engine/dpe/internal/model"
)

// Body size limits of a request.
const (
	MaxBody      = 1 << 20  // one object
	MaxBatchBody = 32 << 20 // a batch (jobs, starts, advances, completions, fires, observations)
)

// Limits of what one request may ask; the server refuses (422) or caps
// beyond them.
const (
	// MaxWait is the longest long-poll wait (claims) the server honours.
	MaxWait = 60 * time.Second
	// MaxJobBatch caps the jobs of POST /v1/jobs/batch.
	MaxJobBatch = 10000
	// MaxCompletions caps the outcomes of POST /v1/completions.
	MaxCompletions = 1000
	// MaxListLimit caps one page of GET /v1/jobs.
	MaxListLimit = 1000
	// MaxClaim caps the instances of one POST /v1/worker/claims.
	MaxClaim = 500
	// MaxExclude caps InstanceClaimRequest.Exclude: the ids a worker claim
	// may exclude (its batches in flight).
	MaxExclude = 10000
	// MaxAdvances caps the advances of POST /v1/worker/advances.
	MaxAdvances = 500
	// MaxStarts caps the starts of POST /v1/workflows/batch.
	MaxStarts = 500
	// MaxFires caps the fires of POST /v1/triggers/{name}/fire.
	MaxFires = 1000
	// MaxItems caps the items of POST /v1/triggers/{name}/observe.
	MaxItems = 5000
	// MaxLabels caps the labels of a job's selector and of a processor's
	// claim: the claim matches one against the other for every job.
	MaxLabels = 64
	// MaxNameLen caps every name a request gives (CheckName): template,
	// trigger, lease and token names, job types, label keys and values,
	// processor and worker ids, the {name} of a path. A name's own rules
	// may be stricter (a token name or a job type has at most 64
	// characters); none is looser but an instance name.
	MaxNameLen = 200
	// MaxInstanceNameLen caps a workflow instance's name: triggers build
	// them from file paths and row keys.
	MaxInstanceNameLen = 1024
	// MaxIDDigits caps the digits of an {id} in a path (an int64).
	MaxIDDigits = 19
	// MaxIDLen caps the processor and worker ids a request names.
	MaxIDLen = MaxNameLen
	// MinLeaseTTL and MaxLeaseTTL bound the TTL of a named lease
	// (POST /v1/leases/acquire).
	MinLeaseTTL = time.Second
	MaxLeaseTTL = 10 * time.Minute
)

// Problem is an RFC 9457 problem+json error body: every non-2xx answer.
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

// Items wraps a list without paging (types, processors, templates,
// triggers, trigger records, leases). Paged lists (GET /v1/jobs,
// GET /v1/workflows) answer a model.Page: {"items", "total", "next"}.
type Items[T any] struct {
	Items []T `json:"items"`
}

// PriorityRequest is the body of POST /v1/jobs/{id}/priority and
// POST /v1/workflows/{id}/priority.
type PriorityRequest struct {
	Priority *int `json:"priority"`
}

// Status is the answer of GET /v1/status.
type Status struct {
	Server     ServerInfo             `json:"server"`
	Processors []model.Processor      `json:"processors"`
	Types      []model.TypeLimit      `json:"types"`
	Jobs       map[model.JobState]int `json:"jobs"` // count per state, up to model.CountCap
	// JobsCapped names the states with more than model.CountCap jobs
	// ("10,000+").
	JobsCapped []model.JobState `json:"jobs_capped,omitempty"`
	Triggers   []model.Trigger  `json:"triggers"`
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
