package client

import (
	"context"
	"net/http"
	"net/url"
	"strconv"

	"github.com/dpe-engine/dpe/internal/model"
	"github.com/dpe-engine/dpe/internal/wire"
)

// Fire hands a scheduler's due fire times to the server, which starts
// their instances and stores the trigger's new state in one transaction
// (POST /v1/triggers/{name}/fire).
func (c *Client) Fire(ctx context.Context, name string, req model.FireRequest, opts ...CallOption) (*model.TriggerResult, error) {
	var res model.TriggerResult
	if err := c.do(ctx, http.MethodPost, triggerPath(name, "/fire"), req, &res, opts...); err != nil {
		return nil, err
	}
	return &res, nil
}

// Observe hands one page of a watcher's observation to the server
// (POST /v1/triggers/{name}/observe).
func (c *Client) Observe(ctx context.Context, name string, o model.Observation, opts ...CallOption) (*model.TriggerResult, error) {
	var res model.TriggerResult
	if err := c.do(ctx, http.MethodPost, triggerPath(name, "/observe"), o, &res, opts...); err != nil {
		return nil, err
	}
	return &res, nil
}

// GetTrigger returns a trigger's state in the core DB
// (GET /v1/triggers/{name}); model.ErrNotFound before its first fire or
// observation.
func (c *Client) GetTrigger(ctx context.Context, name string, opts ...CallOption) (*model.Trigger, error) {
	var t model.Trigger
	if err := c.do(ctx, http.MethodGet, triggerPath(name, ""), nil, &t, opts...); err != nil {
		return nil, err
	}
	return &t, nil
}

// ListTriggers returns every trigger with the active copy of standby ones
// (GET /v1/triggers).
func (c *Client) ListTriggers(ctx context.Context, opts ...CallOption) ([]model.Trigger, error) {
	var l wire.Items[model.Trigger]
	if err := c.do(ctx, http.MethodGet, "/v1/triggers", nil, &l, opts...); err != nil {
		return nil, err
	}
	return l.Items, nil
}

// TriggerRecords returns a trigger's latest records, newest first, at
// most limit (0: the server's default) (GET /v1/triggers/{name}/records).
func (c *Client) TriggerRecords(ctx context.Context, name string, limit int, opts ...CallOption) ([]model.TriggerRecord, error) {
	path := triggerPath(name, "/records")
	if limit > 0 {
		path += "?limit=" + strconv.Itoa(limit)
	}
	var l wire.Items[model.TriggerRecord]
	if err := c.do(ctx, http.MethodGet, path, nil, &l, opts...); err != nil {
		return nil, err
	}
	return l.Items, nil
}

// ReportTriggerError records (msg set) or clears (msg empty) a trigger
// role's last failure of a kind (POST /v1/triggers/{name}/error).
func (c *Client) ReportTriggerError(ctx context.Context, name, kind, msg string, opts ...CallOption) error {
	return c.do(ctx, http.MethodPost, triggerPath(name, "/error"), wire.ErrorReport{Kind: kind, Error: msg}, nil, opts...)
}

// PauseTrigger pauses a trigger: until resumed, its events start nothing
// (each is recorded as skipped) (POST /v1/triggers/{name}/pause).
func (c *Client) PauseTrigger(ctx context.Context, name string, opts ...CallOption) (*model.Trigger, error) {
	var t model.Trigger
	if err := c.do(ctx, http.MethodPost, triggerPath(name, "/pause"), nil, &t, opts...); err != nil {
		return nil, err
	}
	return &t, nil
}

// ResumeTrigger resumes a paused trigger (POST /v1/triggers/{name}/resume).
func (c *Client) ResumeTrigger(ctx context.Context, name string, opts ...CallOption) (*model.Trigger, error) {
	var t model.Trigger
	if err := c.do(ctx, http.MethodPost, triggerPath(name, "/resume"), nil, &t, opts...); err != nil {
		return nil, err
	}
	return &t, nil
}

// FireScheduleNow starts one instance of a schedule now from the config
// its scheduler reported (POST /v1/triggers/{name}/fire-now).
func (c *Client) FireScheduleNow(ctx context.Context, name string, opts ...CallOption) (*model.TriggerResult, error) {
	var res model.TriggerResult
	if err := c.do(ctx, http.MethodPost, triggerPath(name, "/fire-now"), nil, &res, opts...); err != nil {
		return nil, err
	}
	return &res, nil
}

func triggerPath(name, suffix string) string {
	return "/v1/triggers/" + url.PathEscape(name) + suffix
}
