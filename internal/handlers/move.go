package handlers

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"syscall"

	"github.com/dpe-engine/dpe/internal/jobtype"
)

// moveHandler runs util.move.
type moveHandler struct {
	cfg    Config
	spec   jobtype.Spec
	rename func(from, to string) error // Guard.Rename; replaced in tests
}

// moveResult is the result of util.move.
type moveResult struct {
	From string `json:"from"`
	To   string `json:"to"`
	// Method: "rename", "copy" (across file systems: copy, verify,
	// delete) or "none" (an earlier attempt already moved it).
	Method string `json:"method"`
	Size   int64  `json:"size,omitempty"`
	SHA256 string `json:"sha256,omitempty"` // when copied or compared
}

// Run moves from to to. A missing source with the target present counts as
// done, so a move that ran before (and whose processor died before it could
// report) succeeds again.
func (h *moveHandler) Run(ctx context.Context, t Task) (any, error) {
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
	res := moveResult{From: from, To: to}
	src, err := h.cfg.Guard.Lstat(from)
	if errors.Is(err, fs.ErrNotExist) {
		if _, terr := h.cfg.Guard.Lstat(to); terr == nil {
			res.Method = "none"
			return res, nil
		}
		return nil, Permanent(fmt.Errorf("util.move: neither the source nor the target exists: %w", err))
	}
	if err != nil {
		return nil, fmt.Errorf("util.move: source: %w", fsErr(err))
	}
	if from == to {
		res.Method = "none"
		return res, nil
	}
	dst, err := h.cfg.Guard.Lstat(to)
	targetExists := err == nil
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("util.move: target: %w", fsErr(err))
	}
	// Only a plain file can be compared: a link as target could point at
	// the source itself, which must not then be removed.
	plain := src.Mode().IsRegular() && (!targetExists || dst.Mode().IsRegular())
	if plain {
		res.Size = src.Size()
		// An earlier attempt may have copied across file systems and died
		// before deleting the source; a hard link to the source also
		// counts as moved (rename would then do nothing at all).
		skip, sum, err := sameContent(ctx, h.cfg, t, from, to, src, p.Overwrite)
		if err != nil {
			return nil, fmt.Errorf("util.move: %w", err)
		}
		if skip {
			if err := h.cfg.Guard.Remove(from); err != nil {
				return nil, fmt.Errorf("util.move: remove moved source: %w", fsErr(err))
			}
			res.Method, res.SHA256 = "none", sum
			return res, nil
		}
	} else if targetExists && !p.Overwrite {
		return nil, Permanent(fmt.Errorf("util.move: target %s exists", to))
	}
	if err := h.cfg.Guard.MkdirAll(filepath.Dir(to), 0o755); err != nil {
		return nil, fmt.Errorf("util.move: %w", fsErr(err))
	}
	err = h.rename(from, to)
	if err == nil {
		syncDir(h.cfg, filepath.Dir(to))
		syncDir(h.cfg, filepath.Dir(from))
		res.Method = "rename"
		return res, nil
	}
	if !errors.Is(err, syscall.EXDEV) {
		return nil, fmt.Errorf("util.move: %w", fsErr(err))
	}
	if !src.Mode().IsRegular() {
		return nil, Permanent(fmt.Errorf("util.move: cannot move %s (%s) across file systems", from, src.Mode().Type()))
	}
	sum, err := h.copyVerify(ctx, t, from, to, src)
	if err != nil {
		return nil, fmt.Errorf("util.move: %w", err)
	}
	if err := h.cfg.Guard.Remove(from); err != nil {
		return nil, fmt.Errorf("util.move: remove copied source: %w", fsErr(err))
	}
	syncDir(h.cfg, filepath.Dir(from))
	res.Method, res.SHA256 = "copy", sum
	return res, nil
}

// copyVerify copies from to to, then reads the target back and compares
// checksums before the caller deletes the source.
func (h *moveHandler) copyVerify(ctx context.Context, t Task, from, to string, src fs.FileInfo) (string, error) {
	m := newMeter(t, h.cfg.Clock, "moved", 2*src.Size())
	sum, err := copyFile(ctx, h.cfg, from, to, src, m.update)
	if err != nil {
		return "", err
	}
	got, _, err := sha256File(ctx, h.cfg.Guard, to, func(n int64) { m.update(src.Size() + n) })
	if err != nil {
		return "", fmt.Errorf("verify: %w", err)
	}
	if got != sum {
		return "", fmt.Errorf("verify %s: sha256 %s, want %s", to, got, sum)
	}
	return sum, nil
}
