package client

import (
	"context"
	"fmt"
	"iter"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/dpe-engine/dpe/internal/model"
	"github.com/dpe-engine/dpe/internal/wire"
)

// SubmitJob creates one job (POST /v1/jobs). A spec whose Key names an
// existing job returns that job; WithStatus tells 201 (created) from 200
// (existed).
func (c *Client) SubmitJob(ctx context.Context, spec model.JobSpec, opts ...CallOption) (*model.Job, error) {
	var j model.Job
	if err := c.do(ctx, http.MethodPost, "/v1/jobs", spec, &j, opts...); err != nil {
		return nil, err
	}
	return &j, nil
}

// SubmitJobs creates jobs in one transaction (POST /v1/jobs/batch) and
// returns them in order.
func (c *Client) SubmitJobs(ctx context.Context, specs []model.JobSpec, opts ...CallOption) ([]model.Job, error) {
	var l wire.JobList
	if err := c.do(ctx, http.MethodPost, "/v1/jobs/batch", wire.JobBatch{Jobs: specs}, &l, opts...); err != nil {
		return nil, err
	}
	return l.Jobs, nil
}

// GetJob returns one job (GET /v1/jobs/{id}).
func (c *Client) GetJob(ctx context.Context, id int64, opts ...CallOption) (*model.Job, error) {
	var j model.Job
	if err := c.do(ctx, http.MethodGet, jobPath(id, ""), nil, &j, opts...); err != nil {
		return nil, err
	}
	return &j, nil
}

// JobQuery selects jobs for ListJobs. Zero fields do not filter.
type JobQuery struct {
	States        []model.JobState
	Types         []string
	Workflow      int64 // owning workflow instance id
	CreatedAfter  time.Time
	CreatedBefore time.Time
	Limit         int
	// After is the cursor of the page to fetch: the Next of the previous
	// page; empty for the first page.
	After string
}

// Encode returns q as the query string of GET /v1/jobs (without "?").
func (q JobQuery) Encode() string {
	v := url.Values{}
	if len(q.States) > 0 {
		s := make([]string, len(q.States))
		for i, st := range q.States {
			s[i] = string(st)
		}
		v.Set("state", strings.Join(s, ","))
	}
	if len(q.Types) > 0 {
		v.Set("type", strings.Join(q.Types, ","))
	}
	if q.Workflow != 0 {
		v.Set("workflow", strconv.FormatInt(q.Workflow, 10))
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

// ListJobs returns one page of jobs, newest first (GET /v1/jobs).
func (c *Client) ListJobs(ctx context.Context, q JobQuery, opts ...CallOption) (*model.Page[model.Job], error) {
	path := "/v1/jobs"
	if qs := q.Encode(); qs != "" {
		path += "?" + qs
	}
	var p model.Page[model.Job]
	if err := c.do(ctx, http.MethodGet, path, nil, &p, opts...); err != nil {
		return nil, err
	}
	return &p, nil
}

// AllJobs walks every page of q, starting at q.After. It stops at the
// first error, which it yields with a zero job.
func (c *Client) AllJobs(ctx context.Context, q JobQuery) iter.Seq2[model.Job, error] {
	return func(yield func(model.Job, error) bool) {
		for {
			p, err := c.ListJobs(ctx, q)
			if err != nil {
				yield(model.Job{}, err)
				return
			}
			for _, j := range p.Items {
				if !yield(j, nil) {
					return
				}
			}
			if p.Next == "" || len(p.Items) == 0 {
				return
			}
			q.After = p.Next
		}
	}
}

// CancelJob asks for a job to stop (POST /v1/jobs/{id}/cancel): a queued
// job is canceled at once, a running one on its processor's next
// heartbeat.
func (c *Client) CancelJob(ctx context.Context, id int64, opts ...CallOption) (*model.Job, error) {
	var j model.Job
	if err := c.do(ctx, http.MethodPost, jobPath(id, "/cancel"), nil, &j, opts...); err != nil {
		return nil, err
	}
	return &j, nil
}

// RetryJob starts a new series of attempts of a failed or canceled job
// (POST /v1/jobs/{id}/retry): queued again at once, attempts counted from
// zero. A job in another state, or one of a workflow instance (retry the
// instance), is refused with 409.
func (c *Client) RetryJob(ctx context.Context, id int64, opts ...CallOption) (*model.Job, error) {
	var j model.Job
	if err := c.do(ctx, http.MethodPost, jobPath(id, "/retry"), nil, &j, opts...); err != nil {
		return nil, err
	}
	return &j, nil
}

// SetJobPriority changes a job's priority (POST /v1/jobs/{id}/priority).
func (c *Client) SetJobPriority(ctx context.Context, id int64, priority int, opts ...CallOption) (*model.Job, error) {
	var j model.Job
	body := wire.PriorityRequest{Priority: &priority}
	if err := c.do(ctx, http.MethodPost, jobPath(id, "/priority"), body, &j, opts...); err != nil {
		return nil, err
	}
	return &j, nil
}

func jobPath(id int64, suffix string) string {
	return fmt.Sprintf("/v1/jobs/%d%s", id, suffix)
}
