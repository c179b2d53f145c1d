package wire

import "github.com/dpe-engine/dpe/internal/model"

// LeaseRequest is the body of POST /v1/leases/acquire and
// POST /v1/leases/release (where TTL is not used). Acquire answers the
// model.Lease, or 409 when another holder has it; GET /v1/leases answers
// Items of model.Lease.
type LeaseRequest struct {
	Name   string         `json:"name"`
	Holder string         `json:"holder"`
	TTL    model.Duration `json:"ttl,omitempty"`
}
