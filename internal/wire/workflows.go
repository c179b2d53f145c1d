package wire

import "github.com/dpe-engine/dpe/internal/model"

// The body of POST /v1/workflows is a model.InstanceSpec, answered by a
// model.Instance; GET /v1/workflows/{id} and GET /v1/worker/instances/{id}
// answer a model.InstanceDetail. The worker routes take a
// model.InstanceClaimRequest (claims, answered by a
// model.InstanceClaimAnswer), a model.Advance (one advance, answered by
// the model.Instance) and a model.InstanceLeases (heartbeats, releases).

// TemplateImported answers POST /v1/templates: 201 with Created when the
// source made a new version, 200 when it equals the latest.
type TemplateImported struct {
	Template model.Template `json:"template"`
	Created  bool           `json:"created"`
}

// StartBatch is the body of POST /v1/workflows/batch: many starts in one
// call, committed together.
type StartBatch struct {
	Workflows []model.InstanceSpec `json:"workflows"`
}

// StartResult is the outcome of one start of a StartBatch: Status 201
// (started), 200 (the name existed) with the instance, or 409 (its
// concurrency key is busy, policy skip) or 422 with Error.
type StartResult struct {
	Status   int             `json:"status"`
	Instance *model.Instance `json:"instance,omitempty"`
	Error    string          `json:"error,omitempty"`
}

// StartResults answers a StartBatch, in order.
type StartResults struct {
	Results []StartResult `json:"results"`
}

// AdvanceBatch is the body of POST /v1/worker/advances: many decisions in
// one call, applied in one transaction (group commit).
type AdvanceBatch struct {
	Advances []model.Advance `json:"advances"`
}

// AdvanceResult is the outcome of one Advance of an AdvanceBatch: Status
// 200 with the instance as it now is, or 409 (the lease is lost: drop the
// instance), 404 or 422 with Error.
type AdvanceResult struct {
	InstanceID int64           `json:"instance_id"`
	Status     int             `json:"status"`
	Instance   *model.Instance `json:"instance,omitempty"`
	Error      string          `json:"error,omitempty"`
}

// AdvanceResults answers an AdvanceBatch, in order.
type AdvanceResults struct {
	Results []AdvanceResult `json:"results"`
}

// LostLeases answers POST /v1/worker/heartbeats: the instances whose
// lease the worker no longer holds.
type LostLeases struct {
	Lost []int64 `json:"lost"`
}
