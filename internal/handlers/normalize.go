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
	"github.com/dpe-engine/dpe/internal/loudness"
	"github.com/dpe-engine/dpe/internal/wav"
)

// matchTolerance is how close (LU) an existing copy must be to the wanted
// loudness for audio.normalize to leave it alone.
const matchTolerance = 0.1

// limitedTolerance is how close (LU) a limited copy must come to the
// target: limiting takes loudness off the peaks, which one correction
// pass adds back to the gain, and an existing copy this close to the
// target and under the ceiling is left alone.
const limitedTolerance = 0.5

// limiterPasses is the most dry passes through the limiter that audio.normalize
// makes to find the gain that reaches the target; limiterMaxExtraDB is the
// most they add to the gain the source's loudness asks for.
const (
	limiterPasses     = 3
	limiterMaxExtraDB = 12
)

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
	// Limited: params.limiter was set and the full gain would have put the
	// true peak over the ceiling, so the copy went through the true-peak
	// limiter; ExpectedLUFS and ExpectedTPDBTP are then measured on the
	// limiter's output (or on the copy found in place).
	Limited bool `json:"limited,omitempty"`
	// LimiterMaxReductionDB is the deepest gain reduction of the limiter.
	LimiterMaxReductionDB float64 `json:"limiter_max_reduction_db,omitempty"`
}

// Run measures the source, computes the gain and, in mode write, writes
// the gained copy unless one is already there.
func (h *normalizeHandler) Run(ctx context.Context, t Task) (any, error) {
	name := jobtype.AudioNormalize
	var p normalizeParams
	if err := decode(h.spec, t.Params, &p); err != nil {
		return nil, err
	}
	if p.Mode == "" {
		p.Mode = "gain"
	}
	if p.Limiter && p.Mode != "write" {
		return nil, Permanent(fmt.Errorf("%s: params.limiter: needs mode write (a playout gain cannot limit peaks)", name))
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
		switch {
		case p.Limiter: // measure, up to limiterPasses dry passes, write
			prog.total *= 2 + limiterPasses
		case p.Mode == "write":
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
		if p.Limiter {
			res.Limited = true
		} else {
			gain, res.ClippedByPeak = res.TruePeakMaxDBTP-tp, true
		}
	}
	res.GainDB = round2(gain)
	res.ExpectedLUFS = round2(integrated + gain)
	res.ExpectedTPDBTP = finite(tp + gain)
	if p.Mode != "write" {
		return res, nil
	}
	if res.Limited {
		return h.writeLimited(ctx, res, src, gain, prog)
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
	if _, err := writeGained(ctx, h.cfg, path, to, gain, nil, prog, src.raw.Frames); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	res.Written = true
	return res, nil
}

// writeLimited is mode write when the limiter is needed: a copy in place
// that measures the target within limitedTolerance and stays under the
// ceiling is kept; otherwise dry passes through the limiter measure the
// loudness it takes off and raise the gain to make up for it, and the copy
// is written through the limiter at that gain.
func (h *normalizeHandler) writeLimited(ctx context.Context, res normalizeResult, src measurement, gain float64, prog *meter) (any, error) {
	name := jobtype.AudioNormalize
	ceiling := res.TruePeakMaxDBTP
	if have, err := measureFile(ctx, res.To, nil, true, nil); err == nil {
		if have.IntegratedLUFS != nil && have.frames == src.frames && string(have.fmt.Raw) == string(src.fmt.Raw) &&
			math.Abs(have.raw.Integrated-res.TargetLUFS) <= limitedTolerance && have.raw.TruePeak <= ceiling {
			res.AlreadyMatched = true
			res.ExpectedLUFS, res.ExpectedTPDBTP = round2(have.raw.Integrated), finite(have.raw.TruePeak)
			prog.update(prog.total)
			return res, nil
		}
	} else if ctx.Err() != nil {
		return nil, ctxErr(ctx)
	}
	// Each dry pass measures how far under the target the limiter leaves
	// the copy; the gain rises by that much times the slope the passes
	// show (loudness gained per dB, under 1 once the limiter works).
	var prevGain, prevLUFS float64
	g0 := gain
	for pass := range limiterPasses {
		dry, err := limitedPass(ctx, res.Path, gain, &ceiling, nil, prog, int64(1+pass)*src.raw.Frames)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		short := res.TargetLUFS - dry.out.Integrated
		if math.IsInf(short, 0) || math.Abs(short) <= matchTolerance/2 {
			break
		}
		step := short
		if pass > 0 && dry.out.Integrated != prevLUFS {
			step *= min(max((gain-prevGain)/(dry.out.Integrated-prevLUFS), 1), 4)
		}
		prevGain, prevLUFS = gain, dry.out.Integrated
		gain = min(gain+step, g0+limiterMaxExtraDB)
	}
	out, err := writeGained(ctx, h.cfg, res.Path, res.To, gain, &ceiling, prog, (1+limiterPasses)*src.raw.Frames)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	res.GainDB = round2(gain)
	res.ExpectedLUFS, res.ExpectedTPDBTP = round2(out.out.Integrated), finite(out.out.TruePeak)
	res.LimiterMaxReductionDB = round2(-out.minGainDB)
	if out.out.TruePeak > ceiling {
		h.cfg.Log.Warn("limited copy over the true-peak ceiling", "path", res.To, "true_peak_dbtp", out.out.TruePeak, "ceiling_dbtp", ceiling)
	}
	res.Written = true
	return res, nil
}

// limitedResult is the measurement of a pass's output.
type limitedResult struct {
	out       loudness.Result
	minGainDB float64
}

// limitedPass streams the samples of the WAV file from through gain dB and,
// when ceiling is not nil, the true-peak limiter, handing each chunk of
// output to sink (when not nil) and measuring it (with true peak when
// limiting). before is the frames of the passes before this one, for
// progress in frames of three passes.
func limitedPass(ctx context.Context, from string, gainDB float64, ceiling *float64, sink func([]float64) error,
	prog *meter, before int64) (limitedResult, error) {
	var lr limitedResult
	in, err := os.Open(from)
	if err != nil {
		return lr, fsErr(err)
	}
	defer in.Close()
	r, err := wav.Open(ctx, in, nil)
	if err != nil {
		return lr, wavErr(ctx, from, err)
	}
	f := r.Format()
	var lim *loudness.Limiter
	var m *loudness.Meter
	if ceiling != nil {
		if lim, err = loudness.NewLimiter(f.SampleRate, f.Channels, gainDB, *ceiling); err != nil {
			return lr, Permanent(fmt.Errorf("%s: %w", from, err))
		}
		if m, err = loudness.New(f.SampleRate, loudness.Weights(f.Channels, f.ChannelMask), loudness.Options{TruePeak: true}); err != nil {
			return lr, Permanent(fmt.Errorf("%s: %w", from, err))
		}
	}
	k := math.Pow(10, gainDB/20)
	buf := make([]float64, 16384*f.Channels)
	var out []float64
	emit := func(s []float64) error {
		if m != nil {
			if err := m.Add(s); err != nil {
				return err
			}
		}
		if sink != nil {
			return sink(s)
		}
		return nil
	}
	frameBytes := int64(f.BlockAlign)
	for {
		n, rerr := r.Read(ctx, buf)
		if n > 0 {
			s := buf[:n]
			if lim != nil {
				if out, err = lim.Process(out[:0], s); err != nil {
					return lr, err
				}
				s = out
			} else {
				for i := range s {
					s[i] *= k
				}
			}
			if err := emit(s); err != nil {
				return lr, err
			}
			prog.update((before + r.Frames()) * frameBytes)
		}
		if errors.Is(rerr, io.EOF) {
			break
		}
		if rerr != nil {
			return lr, wavErr(ctx, from, rerr)
		}
	}
	if lim != nil {
		if err := emit(lim.Flush(out[:0])); err != nil {
			return lr, err
		}
		lr.out, lr.minGainDB = m.Result(), lim.MinGainDB()
	}
	return lr, nil
}

// writeGained writes the samples of the WAV file from, multiplied by
// gain dB and, when ceiling is not nil, limited to it, to a temporary file
// next to to in the same format with the same bext chunk, then renames it
// over to. before is the frames of the passes before this one, for
// progress.
func writeGained(ctx context.Context, cfg Config, from, to string, gainDB float64, ceiling *float64, prog *meter, before int64) (lr limitedResult, err error) {
	in, err := os.Open(from)
	if err != nil {
		return lr, fsErr(err)
	}
	r, err := wav.Open(ctx, in, nil)
	in.Close()
	if err != nil {
		return lr, wavErr(ctx, from, err)
	}
	dir := filepath.Dir(to)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return lr, fsErr(err)
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(to)+".dpe-tmp-*")
	if err != nil {
		return lr, fsErr(err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			if rerr := os.Remove(tmp.Name()); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
				cfg.Log.Warn("cannot remove temporary file", "path", tmp.Name(), "err", rerr)
			}
		}
	}()
	if fi, err := os.Stat(from); err == nil {
		if err := tmp.Chmod(fi.Mode().Perm()); err != nil {
			return lr, fsErr(err)
		}
	}
	var bext []byte
	if b := r.Bext(); b != nil {
		bext = b.Raw
	}
	w, err := wav.Create(tmp, r.Format(), bext)
	if err != nil {
		return lr, err
	}
	lr, err = limitedPass(ctx, from, gainDB, ceiling, func(s []float64) error {
		if err := w.Write(s); err != nil {
			return fmt.Errorf("write %s: %w", tmp.Name(), fsErr(err))
		}
		return nil
	}, prog, before)
	if err != nil {
		return lr, err
	}
	if w.Clipped > 0 {
		cfg.Log.Warn("normalised copy clipped", "path", to, "samples", w.Clipped)
	}
	if err := w.Close(); err != nil {
		return lr, fmt.Errorf("write %s: %w", tmp.Name(), fsErr(err))
	}
	if err := tmp.Sync(); err != nil {
		return lr, fmt.Errorf("sync %s: %w", tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return lr, fmt.Errorf("close %s: %w", tmp.Name(), err)
	}
	if err := os.Rename(tmp.Name(), to); err != nil {
		return lr, fsErr(err)
	}
	syncDir(cfg, dir)
	return lr, nil
}
