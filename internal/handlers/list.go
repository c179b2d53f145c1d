package handlers

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"

	"github.com/dpe-engine/dpe/internal/jobtype"
)

// listHandler runs util.list.
type listHandler struct {
	cfg  Config
	spec jobtype.Spec
}

type listParams struct {
	Path      string   `json:"path"`
	Include   []string `json:"include"`
	Recursive bool     `json:"recursive"`
	Limit     int      `json:"limit"`
}

// defaultListLimit is the spec's default of params.limit.
const defaultListLimit = 10000

// listResult is the result of util.list.
type listResult struct {
	Path  string   `json:"path"`
	Files []string `json:"files"` // absolute, sorted
	Count int      `json:"count"`
}

// Run lists the regular files of the directory through the guard, so a
// link cannot lead the listing out of the processor's roots. Links are
// not followed; subdirectories only with recursive.
func (h *listHandler) Run(ctx context.Context, t Task) (any, error) {
	var p listParams
	if err := decode(h.spec, t.Params, &p); err != nil {
		return nil, err
	}
	if p.Limit <= 0 {
		p.Limit = defaultListLimit
	}
	for i, g := range p.Include {
		if _, err := filepath.Match(g, ""); err != nil {
			return nil, Permanent(fmt.Errorf("params.include[%d]: bad pattern %q", i, g))
		}
	}
	dir, err := h.cfg.resolve("path", p.Path)
	if err != nil {
		return nil, err
	}
	res := listResult{Path: dir, Files: []string{}}
	if err := h.walk(ctx, dir, p, &res); err != nil {
		return nil, err
	}
	slices.Sort(res.Files)
	res.Count = len(res.Files)
	return res, nil
}

// walk adds the matching files of dir (and, recursive, of its
// subdirectories) to res.
func (h *listHandler) walk(ctx context.Context, dir string, p listParams, res *listResult) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	f, err := h.cfg.Guard.Open(dir)
	if err != nil {
		return Permanent(fmt.Errorf("util.list: %w", fsErr(err)))
	}
	defer f.Close()
	for {
		entries, err := f.ReadDir(256)
		for _, e := range entries {
			full := filepath.Join(dir, e.Name())
			switch {
			case e.IsDir() && p.Recursive:
				if err := h.walk(ctx, full, p, res); err != nil {
					return err
				}
			case e.Type().IsRegular() && matchAny(p.Include, e.Name()):
				if len(res.Files) >= p.Limit {
					return Permanent(fmt.Errorf("util.list: %s holds more than %d matching files (params.limit)", res.Path, p.Limit))
				}
				res.Files = append(res.Files, full)
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return Permanent(fmt.Errorf("util.list: %s: %w", dir, fsErr(err)))
		}
	}
}

// matchAny reports whether name matches one of the globs, ignoring case;
// no globs match every name.
func matchAny(globs []string, name string) bool {
	if len(globs) == 0 {
		return true
	}
	lower := strings.ToLower(name)
	for _, g := range globs {
		if ok, _ := filepath.Match(strings.ToLower(g), lower); ok {
			return true
		}
	}
	return false
}
