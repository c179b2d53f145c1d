package handlers

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"

	"github.com/dpe-engine/dpe/internal/jobtype"
	"github.com/dpe-engine/dpe/internal/wav"
)

// matchTolerance is how close (LU) an existing copy must be to the wanted
// loudness for audio.normalize to leave it alone.
const matchTolerance = 0.1

// normalizeHandler runs audio.normalize.
type normalizeHandler struct {
	cfg  Config
	spec jobtype.Spec
}

type normalizeParams struct {
	Path            string   `json:"path"`
	TargetLUFS      *float64 `json:"target_lufs"`
	TruePeakMaxDBTP *float64 `json:"true_peak_max_dbtp"`
	Mode            string   `json:"mode"`
	To              string   `json:"to"`
	Limiter         bool     `json:"limiter"`
}

// normalizeResult is the result of audio.normalize. GainDB is what to
// apply (mode gain) or what was applied (mode write); ClippedByPeak tells
// that the true-peak ceiling, not the target, set it.
type normalizeResult struct {
	Path            string      `json:"path"`
	Mode            string      `json:"mode"`
	TargetLUFS      float64     `json:"target_lufs"`
	TruePeakMaxDBTP float64     `json:"true_peak_max_dbtp"`
	GainDB          float64     `json:"gain_db"`
	ExpectedLUFS    float64     `json:"expected_lufs"`
	ExpectedTPDBTP  *float64    `json:"expected_true_peak_dbtp"`
	ClippedByPeak   bool        `json:"clipped_by_peak"`
	Measured        measurement `json:"measured"`
	To              string      `json:"to,omitempty"`
	Written         bool        `json:"written"`
	// AlreadyMatched: mode write found a copy that already has the gain.
	AlreadyMatched bool `json:"already_matched,omitempty"`
}

// Run measures the source, computes the gain and, in mode write, writes
// the gained copy unless one is already there.
func (h *normalizeHandler) Run(ctx context.Context, t Task) (any, error) {
	name := jobtype.AudioNormalize
	var p normalizeParams
	if err := decode(h.spec, t.Params, &p); err != nil {
		return nil, err
	}
	if p.Limiter {
		return nil, Permanent(fmt.Errorf("%s: params.limiter: the true-peak limiter is not implemented; "+
			"without it the gain is lowered to keep the true peak under true_peak_max_dbtp", name))
	}
	if p.Mode == "" {
		p.Mode = "gain"
	}
	res := normalizeResult{Mode: p.Mode, TargetLUFS: -23, TruePeakMaxDBTP: -1}
	if p.TargetLUFS != nil {
		res.TargetLUFS = *p.TargetLUFS
	}
	if p.TruePeakMaxDBTP != nil {
		res.TruePeakMaxDBTP = *p.TruePeakMaxDBTP
	}
	if res.TargetLUFS < -70 || res.TargetLUFS > 0 || res.TruePeakMaxDBTP > 0 || res.TruePeakMaxDBTP < -70 {
		return nil, Permanent(fmt.Errorf("%s: target_lufs %.2f or true_peak_max_dbtp %.2f out of range (-70..0)",
			name, res.TargetLUFS, res.TruePeakMaxDBTP))
	}
	path, err := h.cfg.resolve("path", p.Path)
	if err != nil {
		return nil, err
	}
	res.Path = path
	var to string
	if p.Mode == "write" {
		if p.To == "" {
			return nil, Permanent(fmt.Errorf("%s: params.to: required in mode write", name))
		}
		if to, err = h.cfg.resolveTarget("to", p.To); err != nil {
			return nil, err
		}
		if to == path {
			return nil, Permanent(fmt.Errorf("%s: params.to: is the source itself", name))
		}
		res.To = to
	}
	// One report for both passes: measuring, then writing.
	prog := newMeter(t, h.cfg.Clock, "processed", 0)
	src, err := measureFile(ctx, path, nil, true, func(done, total int64) {
		prog.total = total
		if p.Mode == "write" {
			prog.total *= 2
		}
		prog.update(done)
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	res.Measured = src
	integrated, tp := src.raw.Integrated, src.raw.TruePeak
	if math.IsInf(integrated, -1) {
		return nil, Permanent(fmt.Errorf("%s: %s: nothing above the -70 LUFS gate (silence): no gain reaches a loudness target", name, path))
	}
	gain := res.TargetLUFS - integrated
	if !math.IsInf(tp, -1) && tp+gain > res.TruePeakMaxDBTP {
		gain, res.ClippedByPeak = res.TruePeakMaxDBTP-tp, true
	}
	res.GainDB = round2(gain)
	res.ExpectedLUFS = round2(integrated + gain)
	res.ExpectedTPDBTP = finite(tp + gain)
	if p.Mode != "write" {
		return res, nil
	}
	// A copy with the source's format and length that measures the
	// source's loudness plus this gain is the copy this job would write.
	if have, err := measureFile(ctx, to, nil, false, nil); err == nil {
		if have.IntegratedLUFS != nil && have.frames == src.frames && string(have.fmt.Raw) == string(src.fmt.Raw) &&
			math.Abs(have.raw.Integrated-(integrated+gain)) <= matchTolerance {
			res.AlreadyMatched = true
			prog.update(prog.total)
			return res, nil
		}
	} else if ctx.Err() != nil {
		return nil, ctxErr(ctx)
	}
	if err := writeGained(ctx, h.cfg, path, to, gain, prog); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	res.Written = true
	return res, nil
}

// writeGained writes the samples of the WAV file from, multiplied by
// gain dB, to a temporary file next to to in the same format with the same
// bext chunk, then renames it over to. prog, set up for two passes over
// the data, is past the first.
func writeGained(ctx context.Context, cfg Config, from, to string, gainDB float64, prog *meter) (err error) {
	in, err := os.Open(from)
	if err != nil {
		return fsErr(err)
	}
	defer in.Close()
	r, err := wav.Open(ctx, in, nil)
	if err != nil {
		return wavErr(ctx, from, err)
	}
	dir := filepath.Dir(to)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fsErr(err)
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(to)+".dpe-tmp-*")
	if err != nil {
		return fsErr(err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			if rerr := os.Remove(tmp.Name()); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
				cfg.Log.Warn("cannot remove temporary file", "path", tmp.Name(), "err", rerr)
			}
		}
	}()
	if fi, err := in.Stat(); err == nil {
		if err := tmp.Chmod(fi.Mode().Perm()); err != nil {
			return fsErr(err)
		}
	}
	var bext []byte
	if b := r.Bext(); b != nil {
		bext = b.Raw
	}
	f := r.Format()
	w, err := wav.Create(tmp, f, bext)
	if err != nil {
		return err
	}
	k := math.Pow(10, gainDB/20)
	buf := make([]float64, 16384*f.Channels)
	for {
		n, rerr := r.Read(ctx, buf)
		if n > 0 {
			s := buf[:n]
			for i := range s {
				s[i] *= k
			}
			if err := w.Write(s); err != nil {
				return fmt.Errorf("write %s: %w", tmp.Name(), fsErr(err))
			}
			prog.update(r.DataSize() + r.BytesRead())
		}
		if errors.Is(rerr, io.EOF) {
			break
		}
		if rerr != nil {
			return wavErr(ctx, from, rerr)
		}
	}
	if w.Clipped > 0 {
		cfg.Log.Warn("normalised copy clipped", "path", to, "samples", w.Clipped)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("write %s: %w", tmp.Name(), fsErr(err))
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("close %s: %w", tmp.Name(), err)
	}
	if err := os.Rename(tmp.Name(), to); err != nil {
		return fsErr(err)
	}
	syncDir(cfg, dir)
	return nil
}
