package client

import (
	"context"
	"fmt"
	"net/http"

	"github.com/dpe-engine/dpe/internal/model"
	"github.com/dpe-engine/dpe/internal/wire"
)

// Claim asks for jobs for a processor (POST /v1/claims) and returns those
// handed out, possibly none. With req.Wait set it is a long poll (see
// WithLongPoll).
//
// A retried claim re-sends the same Idempotency-Key, so a claim whose
// answer was lost in transit returns the same jobs instead of leaving them
// leased to nobody.
func (c *Client) Claim(ctx context.Context, req model.ClaimRequest, opts ...CallOption) ([]model.Job, error) {
	if req.Wait > 0 {
		opts = append([]CallOption{WithLongPoll(req.Wait.D())}, opts...)
	}
	var l wire.JobList
	if err := c.do(ctx, http.MethodPost, "/v1/claims", req, &l, opts...); err != nil {
		return nil, err
	}
	return l.Jobs, nil
}

// Heartbeat renews every lease a processor holds in one call
// (POST /v1/heartbeats) and returns one result per job.
func (c *Client) Heartbeat(ctx context.Context, req wire.HeartbeatRequest, opts ...CallOption) ([]model.HeartbeatResult, error) {
	var r wire.HeartbeatResponse
	if err := c.do(ctx, http.MethodPost, "/v1/heartbeats", req, &r, opts...); err != nil {
		return nil, err
	}
	return r.Jobs, nil
}

// Progress reports one job's progress and renews its lease
// (POST /v1/jobs/{id}/progress). A lost lease is an error matching
// model.ErrConflict.
func (c *Client) Progress(ctx context.Context, hb model.Heartbeat, opts ...CallOption) (*model.HeartbeatResult, error) {
	var r model.HeartbeatResult
	if err := c.do(ctx, http.MethodPost, jobPath(hb.ID, "/progress"), hb, &r, opts...); err != nil {
		return nil, err
	}
	return &r, nil
}

// Complete reports a job's outcome under the epoch of its claim
// (POST /v1/jobs/{id}/complete). A stale epoch is an error matching
// model.ErrConflict: the lease was lost and the result must be dropped.
func (c *Client) Complete(ctx context.Context, comp model.Completion, opts ...CallOption) (*model.Job, error) {
	var j model.Job
	if err := c.do(ctx, http.MethodPost, jobPath(comp.ID, "/complete"), comp, &j, opts...); err != nil {
		return nil, err
	}
	return &j, nil
}

// Release gives a running job back to the queue without counting the
// attempt (POST /v1/jobs/{id}/release), e.g. when a processor drains.
func (c *Client) Release(ctx context.Context, id, epoch int64, opts ...CallOption) (*model.Job, error) {
	var j model.Job
	body := wire.ReleaseRequest{Epoch: epoch}
	if err := c.do(ctx, http.MethodPost, jobPath(id, "/release"), body, &j, opts...); err != nil {
		return nil, err
	}
	return &j, nil
}

// CompleteMany reports many outcomes in one call (group commit). The
// answer has one result per completion, in order: Status 200 with the job,
// or 409 (the lease was lost: drop the work) or 404.
func (c *Client) CompleteMany(ctx context.Context, comps []model.Completion, opts ...CallOption) ([]wire.CompletionResult, error) {
	b := wire.CompletionBatch{Completions: make([]wire.BatchCompletion, len(comps))}
	for i, comp := range comps {
		b.Completions[i] = wire.BatchCompletion{ID: comp.ID, Completion: comp}
	}
	var out wire.CompletionResults
	if err := c.do(ctx, "POST", "/v1/completions", b, &out, opts...); err != nil {
		return nil, err
	}
	if len(out.Results) != len(comps) {
		return nil, fmt.Errorf("POST /v1/completions: %d results for %d completions", len(out.Results), len(comps))
	}
	return out.Results, nil
}
