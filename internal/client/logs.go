package client

import (
	"context"
	"net/http"
	"net/url"
	"strconv"

	"github.com/dpe-engine/dpe/internal/wire"
)

// LogQuery pages a log: lines after the cursor After (a seq; 0: from the
// start), at most Limit (0: the server's cap).
type LogQuery struct {
	After int64
	Limit int
}

func (q LogQuery) encode() string {
	v := url.Values{}
	if q.After > 0 {
		v.Set("after", strconv.FormatInt(q.After, 10))
	}
	if q.Limit > 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	if len(v) == 0 {
		return ""
	}
	return "?" + v.Encode()
}

// JobLog returns a page of a job's log lines (GET /v1/jobs/{id}/logs).
func (c *Client) JobLog(ctx context.Context, id int64, q LogQuery, opts ...CallOption) (*wire.LogPage, error) {
	var p wire.LogPage
	if err := c.do(ctx, http.MethodGet, jobPath(id, "/logs")+q.encode(), nil, &p, opts...); err != nil {
		return nil, err
	}
	return &p, nil
}

// WorkflowLog returns a page of a workflow instance's log: its own lines
// and its jobs', in order (GET /v1/workflows/{id}/logs).
func (c *Client) WorkflowLog(ctx context.Context, id int64, q LogQuery, opts ...CallOption) (*wire.LogPage, error) {
	var p wire.LogPage
	if err := c.do(ctx, http.MethodGet, workflowPath(id, "/logs")+q.encode(), nil, &p, opts...); err != nil {
		return nil, err
	}
	return &p, nil
}

// AppendJobLog stores lines of a job's log (POST /v1/jobs/{id}/logs): what
// a processor sends for its handlers.
func (c *Client) AppendJobLog(ctx context.Context, id int64, req wire.LogAppend, opts ...CallOption) error {
	return c.do(ctx, http.MethodPost, jobPath(id, "/logs"), req, nil, opts...)
}
