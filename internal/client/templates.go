package client

import (
	"context"
	"net/http"
	"net/url"
	"strconv"

	"github.com/dpe-engine/dpe/internal/model"
	"github.com/dpe-engine/dpe/internal/wire"
)

// ImportTemplate stores a workflow template from its source
// (POST /v1/templates): src in contentType, "application/yaml" or
// "application/json" (empty: YAML). The answer says whether a new version
// was made (Created) or the source equals the latest one.
func (c *Client) ImportTemplate(ctx context.Context, src []byte, contentType string, opts ...CallOption) (*wire.TemplateImported, error) {
	if contentType == "" {
		contentType = "application/yaml"
	}
	var out wire.TemplateImported
	opts = append([]CallOption{WithBody(contentType, src)}, opts...)
	if err := c.do(ctx, http.MethodPost, "/v1/templates", nil, &out, opts...); err != nil {
		return nil, err
	}
	return &out, nil
}

// ListTemplates returns the latest version of every template
// (GET /v1/templates).
func (c *Client) ListTemplates(ctx context.Context, opts ...CallOption) ([]model.Template, error) {
	var l wire.Items[model.Template]
	if err := c.do(ctx, http.MethodGet, "/v1/templates", nil, &l, opts...); err != nil {
		return nil, err
	}
	return l.Items, nil
}

// GetTemplate returns one version of a template, the latest when version
// is 0 (GET /v1/templates/{name}?version=N).
func (c *Client) GetTemplate(ctx context.Context, name string, version int, opts ...CallOption) (*model.Template, error) {
	path := "/v1/templates/" + url.PathEscape(name)
	if version > 0 {
		path += "?version=" + strconv.Itoa(version)
	}
	var t model.Template
	if err := c.do(ctx, http.MethodGet, path, nil, &t, opts...); err != nil {
		return nil, err
	}
	return &t, nil
}

// DeleteTemplate deletes every version of a template
// (DELETE /v1/templates/{name}).
func (c *Client) DeleteTemplate(ctx context.Context, name string, opts ...CallOption) error {
	return c.do(ctx, http.MethodDelete, "/v1/templates/"+url.PathEscape(name), nil, nil, opts...)
}
