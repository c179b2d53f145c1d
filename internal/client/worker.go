package client

import (
	"context"
	"fmt"
	"net/http"

	"github.com/dpe-engine/dpe/internal/model"
	"github.com/dpe-engine/dpe/internal/wire"
)

// The calls of a workflow worker (/v1/worker/...).

// ClaimInstances leases due instances to a worker (POST /v1/worker/claims)
// and returns them, with their details when req.Detail is set. With
// req.Wait set it is a long poll (see WithLongPoll). A repeated claim
// returns again the due instances the worker holds, so an answer lost in
// transit loses nothing.
func (c *Client) ClaimInstances(ctx context.Context, req model.InstanceClaimRequest, opts ...CallOption) (*model.InstanceClaimAnswer, error) {
	if req.Wait > 0 {
		opts = append([]CallOption{WithLongPoll(req.Wait.D())}, opts...)
	}
	var out model.InstanceClaimAnswer
	if err := c.do(ctx, http.MethodPost, "/v1/worker/claims", req, &out, opts...); err != nil {
		return nil, err
	}
	return &out, nil
}

// GetInstance returns what a worker needs to decide an instance
// (GET /v1/worker/instances/{id}).
func (c *Client) GetInstance(ctx context.Context, id int64, opts ...CallOption) (*model.InstanceDetail, error) {
	var d model.InstanceDetail
	if err := c.do(ctx, http.MethodGet, fmt.Sprintf("/v1/worker/instances/%d", id), nil, &d, opts...); err != nil {
		return nil, err
	}
	return &d, nil
}

// AdvanceInstance commits one decision under the epoch of the worker's
// lease (POST /v1/worker/instances/{id}/advance) and returns the instance
// as it now is. A lost lease is an error matching model.ErrConflict.
func (c *Client) AdvanceInstance(ctx context.Context, adv model.Advance, opts ...CallOption) (*model.Instance, error) {
	var inst model.Instance
	if err := c.do(ctx, http.MethodPost, fmt.Sprintf("/v1/worker/instances/%d/advance", adv.InstanceID), adv, &inst, opts...); err != nil {
		return nil, err
	}
	return &inst, nil
}

// AdvanceInstances commits many decisions with one commit
// (POST /v1/worker/advances, at most wire.MaxAdvances) and returns one
// result per advance, in order: Status 200 with the instance, or 409 (the
// lease is lost: drop the instance), 404 or 422 with Error.
func (c *Client) AdvanceInstances(ctx context.Context, advs []model.Advance, opts ...CallOption) ([]wire.AdvanceResult, error) {
	var out wire.AdvanceResults
	if err := c.do(ctx, http.MethodPost, "/v1/worker/advances", wire.AdvanceBatch{Advances: advs}, &out, opts...); err != nil {
		return nil, err
	}
	if len(out.Results) != len(advs) {
		return nil, fmt.Errorf("POST /v1/worker/advances: %d results for %d advances", len(out.Results), len(advs))
	}
	return out.Results, nil
}

// WorkerHeartbeat renews the worker's leases on req.IDs
// (POST /v1/worker/heartbeats) and returns the ids whose lease it lost.
func (c *Client) WorkerHeartbeat(ctx context.Context, req model.InstanceLeases, opts ...CallOption) ([]int64, error) {
	var out wire.LostLeases
	if err := c.do(ctx, http.MethodPost, "/v1/worker/heartbeats", req, &out, opts...); err != nil {
		return nil, err
	}
	return out.Lost, nil
}

// WorkerRelease gives the worker's leases on req.IDs back
// (POST /v1/worker/releases), e.g. when it stops.
func (c *Client) WorkerRelease(ctx context.Context, req model.InstanceLeases, opts ...CallOption) error {
	return c.do(ctx, http.MethodPost, "/v1/worker/releases", req, nil, opts...)
}
