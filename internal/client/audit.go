package client

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/dpe-engine/dpe/internal/wire"
)

// AuditQuery selects audit entries for ListAudit. Zero fields do not
// filter.
type AuditQuery struct {
	Since time.Time // at or after
	Until time.Time // before
	// Principal is a token name ("anonymous": calls without a valid
	// token; "-": calls while the server required none).
	Principal string
	// Route is a route pattern, exactly: "POST /v1/jobs".
	Route string
	Limit int // page size (0: the server's default)
	// Cursor is the Next of the previous page; empty for the first page.
	Cursor string
}

// Encode returns q as the query string of GET /v1/audit (without "?").
func (q AuditQuery) Encode() string {
	v := url.Values{}
	if !q.Since.IsZero() {
		v.Set("since", q.Since.UTC().Format(time.RFC3339Nano))
	}
	if !q.Until.IsZero() {
		v.Set("until", q.Until.UTC().Format(time.RFC3339Nano))
	}
	if q.Principal != "" {
		v.Set("principal", q.Principal)
	}
	if q.Route != "" {
		v.Set("route", q.Route)
	}
	if q.Limit > 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	if q.Cursor != "" {
		v.Set("cursor", q.Cursor)
	}
	return v.Encode()
}

// ListAudit returns one page of the audit trail, newest first (GET
// /v1/audit, admin only).
func (c *Client) ListAudit(ctx context.Context, q AuditQuery, opts ...CallOption) (*wire.AuditPage, error) {
	path := "/v1/audit"
	if qs := q.Encode(); qs != "" {
		path += "?" + qs
	}
	var p wire.AuditPage
	if err := c.do(ctx, http.MethodGet, path, nil, &p, opts...); err != nil {
		return nil, err
	}
	return &p, nil
}
