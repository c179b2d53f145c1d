package client

import (
	"context"
	"net/http"
	"net/url"

	"github.com/dpe-engine/dpe/internal/model"
	"github.com/dpe-engine/dpe/internal/wire"
)

// CreateToken makes a bearer token of the request's name and role (POST
// /v1/tokens, admin only). The answer holds the secret, which the server
// does not keep: show it once.
func (c *Client) CreateToken(ctx context.Context, req wire.TokenRequest, opts ...CallOption) (wire.TokenCreated, error) {
	var out wire.TokenCreated
	err := c.do(ctx, http.MethodPost, "/v1/tokens", req, &out, opts...)
	return out, err
}

// ListTokens returns every token, revoked ones included, without secrets
// (GET /v1/tokens, admin only).
func (c *Client) ListTokens(ctx context.Context, opts ...CallOption) ([]model.Token, error) {
	var l wire.Items[model.Token]
	if err := c.do(ctx, http.MethodGet, "/v1/tokens", nil, &l, opts...); err != nil {
		return nil, err
	}
	return l.Items, nil
}

// RevokeToken revokes the token name (DELETE /v1/tokens/{name}, admin
// only); an unknown or revoked name matches model.ErrNotFound.
func (c *Client) RevokeToken(ctx context.Context, name string, opts ...CallOption) error {
	return c.do(ctx, http.MethodDelete, "/v1/tokens/"+url.PathEscape(name), nil, nil, opts...)
}
