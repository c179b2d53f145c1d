package handlers

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"

	"github.com/dpe-engine/dpe/internal/jobtype"
)

// deleteHandler runs util.delete.
type deleteHandler struct {
	cfg  Config
	spec jobtype.Spec
}

type deleteParams struct {
	Path      string `json:"path"`
	MissingOK *bool  `json:"missing_ok"` // nil: true
}

// deleteResult is the result of util.delete.
type deleteResult struct {
	Path    string `json:"path"`
	Deleted bool   `json:"deleted"` // false: it was already gone
}

// Run deletes a file, a symbolic link (not its target) or an empty
// directory. A path already gone succeeds unless missing_ok is false.
func (h *deleteHandler) Run(ctx context.Context, t Task) (any, error) {
	var p deleteParams
	if err := decode(h.spec, t.Params, &p); err != nil {
		return nil, err
	}
	path, err := h.cfg.resolve("path", p.Path)
	if err != nil {
		return nil, err
	}
	if h.cfg.Guard.IsRoot(path) {
		return nil, Permanent(fmt.Errorf("util.delete: %s is an allowed root", path))
	}
	err = h.cfg.Guard.Remove(path)
	switch {
	case err == nil:
		syncDir(h.cfg, filepath.Dir(path))
		return deleteResult{Path: path, Deleted: true}, nil
	case errors.Is(err, fs.ErrNotExist) && (p.MissingOK == nil || *p.MissingOK):
		return deleteResult{Path: path}, nil
	}
	if fi, serr := h.cfg.Guard.Lstat(path); serr == nil && fi.IsDir() {
		return nil, Permanent(fmt.Errorf("util.delete: %w (only empty directories are deleted)", err))
	}
	return nil, fmt.Errorf("util.delete: %w", fsErr(err))
}
