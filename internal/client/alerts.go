package client

import (
	"context"
	"net/http"

	"github.com/dpe-engine/dpe/internal/wire"
)

// ListAlerts returns the open alerts and those changed in the last day,
// with the configured rules and receivers (GET /v1/alerts).
func (c *Client) ListAlerts(ctx context.Context, opts ...CallOption) (wire.AlertList, error) {
	var out wire.AlertList
	err := c.do(ctx, http.MethodGet, "/v1/alerts", nil, &out, opts...)
	return out, err
}

// TestAlerts sends a test notification to every configured receiver and
// returns each outcome (POST /v1/alerts/test, admin or operator). No
// receiver configured matches model.ErrInvalid.
func (c *Client) TestAlerts(ctx context.Context, opts ...CallOption) (wire.AlertTestResults, error) {
	var out wire.AlertTestResults
	err := c.do(ctx, http.MethodPost, "/v1/alerts/test", nil, &out, opts...)
	return out, err
}
