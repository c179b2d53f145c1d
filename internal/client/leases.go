package client

import (
	"context"
	"net/http"
	"net/url"
	"time"

	"github.com/dpe-engine/dpe/internal/model"
	"github.com/dpe-engine/dpe/internal/wire"
)

// LeaseAcquire takes or renews the named lease for holder for ttl
// (POST /v1/leases/acquire). A lease held by another holder is an error
// matching model.ErrConflict. With these two methods a *Client is a
// lease.Acquirer, for the elector of a remote role.
//
// The call keeps the client's deadline and retries: the elector bounds ctx
// by the lease's end, since retrying past it would be pointless.
func (c *Client) LeaseAcquire(ctx context.Context, name, holder string, ttl time.Duration) (model.Lease, error) {
	var l model.Lease
	err := c.do(ctx, http.MethodPost, "/v1/leases/acquire", wire.LeaseRequest{Name: name, Holder: holder, TTL: model.Duration(ttl)}, &l)
	return l, err
}

// LeaseRelease frees the named lease if holder holds it
// (POST /v1/leases/release).
func (c *Client) LeaseRelease(ctx context.Context, name, holder string) error {
	return c.do(ctx, http.MethodPost, "/v1/leases/release", wire.LeaseRequest{Name: name, Holder: holder}, nil)
}

// ListLeases returns the named leases whose name starts with prefix (all
// when empty), live or expired (GET /v1/leases).
func (c *Client) ListLeases(ctx context.Context, prefix string, opts ...CallOption) ([]model.Lease, error) {
	path := "/v1/leases"
	if prefix != "" {
		path += "?" + url.Values{"prefix": {prefix}}.Encode()
	}
	var l wire.Items[model.Lease]
	if err := c.do(ctx, http.MethodGet, path, nil, &l, opts...); err != nil {
		return nil, err
	}
	return l.Items, nil
}
