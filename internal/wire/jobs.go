package wire

import "github.com/dpe-engine/dpe/internal/model"

// The body of POST /v1/jobs is a model.JobSpec; its answer (and that of
// GET /v1/jobs/{id}, cancel, priority, complete, release) a model.Job. The
// body of POST /v1/claims is a model.ClaimRequest, of
// POST /v1/jobs/{id}/progress a model.Heartbeat (answered by a
// model.HeartbeatResult), of POST /v1/jobs/{id}/complete a
// model.Completion.

// JobBatch is the body of POST /v1/jobs/batch.
type JobBatch struct {
	Jobs []model.JobSpec `json:"jobs"`
}

// JobList is a list of jobs: the answer of a claim or a batch submit.
type JobList struct {
	Jobs []model.Job `json:"jobs"`
}

// HeartbeatRequest is the body of POST /v1/heartbeats: one call renews every
// lease a processor holds.
type HeartbeatRequest struct {
	Processor string            `json:"processor"`
	LeaseTTL  model.Duration    `json:"lease_ttl,omitempty"`
	Jobs      []model.Heartbeat `json:"jobs"`
}

// HeartbeatResponse answers a HeartbeatRequest, one result per job.
type HeartbeatResponse struct {
	Jobs []model.HeartbeatResult `json:"jobs"`
}

// ReleaseRequest is the body of POST /v1/jobs/{id}/release.
type ReleaseRequest struct {
	Epoch int64 `json:"epoch"`
}

// CompletionBatch is the body of POST /v1/completions: many outcomes in
// one call, applied in one transaction (group commit).
type CompletionBatch struct {
	Completions []BatchCompletion `json:"completions"`
}

// BatchCompletion is one outcome of a CompletionBatch.
type BatchCompletion struct {
	ID int64 `json:"id"`
	model.Completion
}

// CompletionResult is the outcome of one BatchCompletion: Status 200 with
// the job, or 409 (stale epoch: drop the work) or 404 with Error.
type CompletionResult struct {
	ID     int64      `json:"id"`
	Status int        `json:"status"`
	Job    *model.Job `json:"job,omitempty"`
	Error  string     `json:"error,omitempty"`
}

// CompletionResults answers a CompletionBatch, in order.
type CompletionResults struct {
	Results []CompletionResult `json:"results"`
}

// TypeSet is the body of PUT /v1/types/{name}: the cluster-wide limits of
// one job type to change, answered by the type's model.TypeLimit. Only the
// fields given change; an absent one keeps its value (0 means no limit).
// A type that is neither built in nor registered (by a processor's quota
// or an earlier set with Create) is refused unless Create is true.
type TypeSet struct {
	Type       string   `json:"type"`
	MaxRunning *int     `json:"max_running,omitempty"`
	Rate       *float64 `json:"rate,omitempty"`
	Burst      *int     `json:"burst,omitempty"`
	Create     bool     `json:"create,omitempty"`
}
