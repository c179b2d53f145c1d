package client

import (
	"context"
	"net/http"
	"net/url"

	"github.com/dpe-engine/dpe/internal/model"
	"github.com/dpe-engine/dpe/internal/wire"
)

// PutProcessor announces a processor and its state (PUT
// /v1/processors/{id}); processors call it at start and every ~10 s.
func (c *Client) PutProcessor(ctx context.Context, p model.Processor, opts ...CallOption) error {
	return c.do(ctx, http.MethodPut, "/v1/processors/"+url.PathEscape(p.ID), p, nil, opts...)
}

// ListProcessors returns the processors the server knows
// (GET /v1/processors).
func (c *Client) ListProcessors(ctx context.Context, opts ...CallOption) ([]model.Processor, error) {
	var l wire.Items[model.Processor]
	if err := c.do(ctx, http.MethodGet, "/v1/processors", nil, &l, opts...); err != nil {
		return nil, err
	}
	return l.Items, nil
}

// ListTypes returns the cluster-wide job type limits (GET /v1/types).
func (c *Client) ListTypes(ctx context.Context, opts ...CallOption) ([]model.TypeLimit, error) {
	var l wire.Items[model.TypeLimit]
	if err := c.do(ctx, http.MethodGet, "/v1/types", nil, &l, opts...); err != nil {
		return nil, err
	}
	return l.Items, nil
}

// PutType changes the cluster-wide limits of one job type: only the
// fields set in t (PUT /v1/types/{name}). It answers the type's limits.
func (c *Client) PutType(ctx context.Context, t wire.TypeSet, opts ...CallOption) (*model.TypeLimit, error) {
	var out model.TypeLimit
	if err := c.do(ctx, http.MethodPut, "/v1/types/"+url.PathEscape(t.Type), t, &out, opts...); err != nil {
		return nil, err
	}
	return &out, nil
}

// Status returns the answering server's view of the cluster
// (GET /v1/status).
func (c *Client) Status(ctx context.Context, opts ...CallOption) (*wire.Status, error) {
	var s wire.Status
	if err := c.do(ctx, http.MethodGet, "/v1/status", nil, &s, opts...); err != nil {
		return nil, err
	}
	return &s, nil
}

// Ready asks each URL once, without back-off, whether its server can reach
// the core database (GET /readyz); nil as soon as one says so.
func (c *Client) Ready(ctx context.Context) error {
	return c.do(ctx, http.MethodGet, "/readyz", nil, nil, WithMaxAttempts(len(c.urls)))
}

// Health asks each URL once, without back-off, whether its server process
// lives (GET /healthz); nil as soon as one answers 200.
func (c *Client) Health(ctx context.Context) error {
	return c.do(ctx, http.MethodGet, "/healthz", nil, nil, WithMaxAttempts(len(c.urls)))
}
