package handlers

import (
	"context"
	"fmt"

	"github.com/dpe-engine/dpe/internal/jobtype"
)

// mkdirHandler runs util.mkdir.
type mkdirHandler struct {
	cfg  Config
	spec jobtype.Spec
}

type mkdirParams struct {
	Path string `json:"path"`
}

// mkdirResult is the result of util.mkdir.
type mkdirResult struct {
	Path    string `json:"path"`
	Created bool   `json:"created"` // false: it existed already
}

// Run creates the directory and its missing parents; an existing directory
// is success.
func (h *mkdirHandler) Run(ctx context.Context, t Task) (any, error) {
	var p mkdirParams
	if err := decode(h.spec, t.Params, &p); err != nil {
		return nil, err
	}
	path, err := h.cfg.resolveTarget("path", p.Path)
	if err != nil {
		return nil, err
	}
	if fi, err := h.cfg.Guard.Stat(path); err == nil {
		if !fi.IsDir() {
			return nil, Permanent(fmt.Errorf("util.mkdir: %s exists and is not a directory", path))
		}
		return mkdirResult{Path: path}, nil
	}
	if err := h.cfg.Guard.MkdirAll(path, 0o755); err != nil {
		return nil, fmt.Errorf("util.mkdir: %w", fsErr(err))
	}
	return mkdirResult{Path: path, Created: true}, nil
}
