package client

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/dpe-engine/dpe/internal/model"
	"github.com/dpe-engine/dpe/internal/wire"
)

// StartWorkflow starts one workflow instance (POST /v1/workflows). A spec
// whose Name exists returns that instance; WithStatus tells 201 (started)
// from 200 (existed).
func (c *Client) StartWorkflow(ctx context.Context, spec model.InstanceSpec, opts ...CallOption) (*model.Instance, error) {
	var inst model.Instance
	if err := c.do(ctx, http.MethodPost, "/v1/workflows", spec, &inst, opts...); err != nil {
		return nil, err
	}
	return &inst, nil
}

// StartWorkflows starts many instances with one commit
// (POST /v1/workflows/batch, at most wire.MaxStarts). Each start has its
// own result, in order: Status 201 or 200 with the instance, or 409/422
// with Error.
func (c *Client) StartWorkflows(ctx context.Context, specs []model.InstanceSpec, opts ...CallOption) ([]wire.StartResult, error) {
	var out wire.StartResults
	if err := c.do(ctx, http.MethodPost, "/v1/workflows/batch", wire.StartBatch{Workflows: specs}, &out, opts...); err != nil {
		return nil, err
	}
	if len(out.Results) != len(specs) {
		return nil, fmt.Errorf("POST /v1/workflows/batch: %d results for %d starts", len(out.Results), len(specs))
	}
	return out.Results, nil
}

// WorkflowQuery selects instances for ListWorkflows. Zero fields do not
// filter.
type WorkflowQuery struct {
	// Name selects the one instance of that name (a page of 0 or 1); the
	// other fields are then ignored.
	Name      string
	States    []model.InstanceState
	Templates []string
	Parent    int64 // parent instance id
	// Trigger selects the instances a trigger started.
	Trigger string
	// CreatedAfter and CreatedBefore are exclusive bounds of the
	// creation time.
	CreatedAfter  time.Time
	CreatedBefore time.Time
	Limit         int
	// After is the cursor of the page to fetch: the Next of the previous
	// page; empty for the first page.
	After string
}

// Encode returns q as the query string of GET /v1/workflows (without "?").
func (q WorkflowQuery) Encode() string {
	v := url.Values{}
	if q.Name != "" {
		v.Set("name", q.Name)
		return v.Encode()
	}
	if len(q.States) > 0 {
		s := make([]string, len(q.States))
		for i, st := range q.States {
			s[i] = string(st)
		}
		v.Set("state", strings.Join(s, ","))
	}
	if len(q.Templates) > 0 {
		v.Set("template", strings.Join(q.Templates, ","))
	}
	if q.Parent != 0 {
		v.Set("parent", strconv.FormatInt(q.Parent, 10))
	}
	if q.Trigger != "" {
		v.Set("trigger", q.Trigger)
	}
	if !q.CreatedAfter.IsZero() {
		v.Set("created_after", q.CreatedAfter.UTC().Format(time.RFC3339Nano))
	}
	if !q.CreatedBefore.IsZero() {
		v.Set("created_before", q.CreatedBefore.UTC().Format(time.RFC3339Nano))
	}
	if q.Limit > 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	if q.After != "" {
		v.Set("after", q.After)
	}
	return v.Encode()
}

// ListWorkflows returns one page of instances (GET /v1/workflows).
func (c *Client) ListWorkflows(ctx context.Context, q WorkflowQuery, opts ...CallOption) (*model.Page[model.Instance], error) {
	path := "/v1/workflows"
	if qs := q.Encode(); qs != "" {
		path += "?" + qs
	}
	var p model.Page[model.Instance]
	if err := c.do(ctx, http.MethodGet, path, nil, &p, opts...); err != nil {
		return nil, err
	}
	return &p, nil
}

// GetWorkflow returns an instance with its steps and the jobs and
// children its running steps wait for (GET /v1/workflows/{id}).
func (c *Client) GetWorkflow(ctx context.Context, id int64, opts ...CallOption) (*model.InstanceDetail, error) {
	var d model.InstanceDetail
	if err := c.do(ctx, http.MethodGet, workflowPath(id, ""), nil, &d, opts...); err != nil {
		return nil, err
	}
	return &d, nil
}

// CancelWorkflow asks an instance to stop (POST /v1/workflows/{id}/cancel):
// its running jobs and children are canceled too.
func (c *Client) CancelWorkflow(ctx context.Context, id int64, opts ...CallOption) (*model.Instance, error) {
	var inst model.Instance
	if err := c.do(ctx, http.MethodPost, workflowPath(id, "/cancel"), nil, &inst, opts...); err != nil {
		return nil, err
	}
	return &inst, nil
}

// RetryWorkflow resumes a failed or canceled instance from the steps that
// failed it, keeping the finished ones (POST /v1/workflows/{id}/retry).
// An instance in another state, or a sub-workflow (retry its parent), is
// refused with 409.
func (c *Client) RetryWorkflow(ctx context.Context, id int64, opts ...CallOption) (*model.Instance, error) {
	var inst model.Instance
	if err := c.do(ctx, http.MethodPost, workflowPath(id, "/retry"), nil, &inst, opts...); err != nil {
		return nil, err
	}
	return &inst, nil
}

// SetWorkflowPriority changes an instance's priority
// (POST /v1/workflows/{id}/priority).
func (c *Client) SetWorkflowPriority(ctx context.Context, id int64, priority int, opts ...CallOption) (*model.Instance, error) {
	var inst model.Instance
	if err := c.do(ctx, http.MethodPost, workflowPath(id, "/priority"), wire.PriorityRequest{Priority: &priority}, &inst, opts...); err != nil {
		return nil, err
	}
	return &inst, nil
}

func workflowPath(id int64, suffix string) string {
	return fmt.Sprintf("/v1/workflows/%d%s", id, suffix)
}
