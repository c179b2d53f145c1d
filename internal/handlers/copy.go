package handlers

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/dpe-engine/dpe/internal/jobtype"
)

// copyHandler runs util.copy.
type copyHandler struct {
	cfg  Config
	spec jobtype.Spec
}

// transferParams are the params of util.copy and util.move.
type transferParams struct {
	From      string `json:"from"`
	To        string `json:"to"`
	Overwrite bool   `json:"overwrite"`
}

// copyResult is the result of util.copy.
type copyResult struct {
	From    string `json:"from"`
	To      string `json:"to"`
	Size    int64  `json:"size"`
	SHA256  string `json:"sha256"`
	Skipped bool   `json:"skipped"` // the target already had the content
}

// Run copies from to to, or does nothing when to already holds the same
// content (the job ran before), so running it again is harmless.
func (h *copyHandler) Run(ctx context.Context, t Task) (any, error) {
	var p transferParams
	if err := decode(h.spec, t.Params, &p); err != nil {
		return nil, err
	}
	from, err := h.cfg.resolve("from", p.From)
	if err != nil {
		return nil, err
	}
	to, err := h.cfg.resolveTarget("to", p.To)
	if err != nil {
		return nil, err
	}
	src, err := h.cfg.Guard.Stat(from)
	if err != nil {
		return nil, fmt.Errorf("util.copy: source: %w", fsErr(err))
	}
	if !src.Mode().IsRegular() {
		return nil, Permanent(fmt.Errorf("util.copy: source %s is not a regular file (%s)", from, src.Mode().Type()))
	}
	res := copyResult{From: from, To: to, Size: src.Size()}
	skip, sum, err := sameContent(ctx, h.cfg, t, from, to, src, p.Overwrite)
	if err != nil {
		return nil, fmt.Errorf("util.copy: %w", err)
	}
	if skip {
		res.SHA256, res.Skipped = sum, true
		return res, nil
	}
	m := newMeter(t, h.cfg.Clock, "copied", src.Size())
	res.SHA256, err = copyFile(ctx, h.cfg, from, to, src, m.update)
	if err != nil {
		return nil, fmt.Errorf("util.copy: %w", err)
	}
	return res, nil
}

// errTargetDiffers: the target exists with other content and the job does
// not allow replacing it.
var errTargetDiffers = errors.New("target exists with different content (set overwrite: true to replace it)")

// sameContent decides what to do with an existing target: skip (it is the
// source itself, or has its size and SHA-256, whose hex it returns), go on
// (missing, or different and overwrite is set), or refuse permanently.
func sameContent(ctx context.Context, cfg Config, t Task, from, to string, src fs.FileInfo, overwrite bool) (skip bool, sum string, err error) {
	dst, err := cfg.Guard.Stat(to)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return false, "", nil
	case err != nil:
		return false, "", fmt.Errorf("target: %w", fsErr(err))
	case !dst.Mode().IsRegular():
		return false, "", Permanent(fmt.Errorf("target %s exists and is not a regular file (%s)", to, dst.Mode().Type()))
	}
	same := os.SameFile(src, dst)
	if !same && dst.Size() != src.Size() {
		if overwrite {
			return false, "", nil
		}
		return false, "", Permanent(fmt.Errorf("%s: %w", to, errTargetDiffers))
	}
	// Both files are read in full: report them as one job.
	m := newMeter(t, cfg.Clock, "compared", 2*src.Size())
	sum, _, err = sha256File(ctx, cfg.Guard, from, m.update)
	if err != nil || same {
		return same && err == nil, sum, err
	}
	dstSum, _, err := sha256File(ctx, cfg.Guard, to, func(n int64) { m.update(src.Size() + n) })
	switch {
	case err != nil:
		return false, "", err
	case dstSum == sum:
		return true, sum, nil
	case overwrite:
		return false, "", nil
	}
	return false, "", Permanent(fmt.Errorf("%s: %w", to, errTargetDiffers))
}
