package handlers

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"

	"github.com/dpe-engine/dpe/internal/jobtype"
	"github.com/dpe-engine/dpe/internal/loudness"
	"github.com/dpe-engine/dpe/internal/wav"
)

// loudnessHandler runs audio.loudness.
type loudnessHandler struct {
	cfg  Config
	spec jobtype.Spec
	wait waitHook
}

type loudnessParams struct {
	Path     string `json:"path"`
	TruePeak *bool  `json:"true_peak"`
}

// measurement is what audio.loudness reports and audio.normalize starts
// from. Loudness values that no block reached (silence, a file shorter
// than the window) are null.
type measurement struct {
	IntegratedLUFS   *float64  `json:"integrated_lufs"`
	LRA              float64   `json:"lra_lu"`
	MaxMomentaryLUFS *float64  `json:"max_momentary_lufs"`
	MaxShortTermLUFS *float64  `json:"max_short_term_lufs"`
	SamplePeakDBFS   *float64  `json:"sample_peak_dbfs"`
	TruePeakDBTP     *float64  `json:"true_peak_dbtp,omitempty"`
	DurationS        float64   `json:"duration_s"`
	SampleRate       int       `json:"sample_rate"`
	Channels         int       `json:"channels"`
	Bits             int       `json:"bits"`
	Format           string    `json:"format"`    // "pcm" or "float"
	Container        string    `json:"container"` // "RIFF", "RF64" or "BW64"
	Bext             *wav.Bext `json:"bext,omitempty"`

	raw    loudness.Result // unrounded, for audio.normalize
	fmt    wav.Format
	frames int64
}

// loudnessResult is the result of audio.loudness.
type loudnessResult struct {
	Path string `json:"path"`
	measurement
}

// Run measures the file, following it while it grows when stable_for is
// set.
func (h *loudnessHandler) Run(ctx context.Context, t Task) (any, error) {
	var p loudnessParams
	if err := decode(h.spec, t.Params, &p); err != nil {
		return nil, err
	}
	path, err := h.cfg.resolve("path", p.Path)
	if err != nil {
		return nil, err
	}
	follow, err := h.cfg.follow(h.spec, t.Params, h.wait)
	if err != nil {
		return nil, err
	}
	prog := newMeter(t, h.cfg.Clock, "measured", 0)
	m, err := measureFile(ctx, path, follow, p.TruePeak == nil || *p.TruePeak, func(done, total int64) {
		prog.total = total // grows with a growing file
		prog.update(done)
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", jobtype.AudioLoudness, err)
	}
	return loudnessResult{Path: path, measurement: m}, nil
}

// streamFrames is the frames of a piece measureFile reads at a time: at
// 48 kHz stereo 24-bit, 192 KiB, which stay in the second-level cache
// between the read and the meter, and few enough handovers between
// goroutines that they cost nothing measurable.
const streamFrames = 32768

// measureFile measures the WAV file at path, calling progress (when not
// nil) with the bytes of samples read and the bytes known so far. Errors
// about the file's content are permanent and name the problem.
func measureFile(ctx context.Context, path string, follow *wav.Follow, truePeak bool, progress func(done, total int64)) (measurement, error) {
	f, err := os.Open(path)
	if err != nil {
		return measurement{}, fsErr(err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return measurement{}, fsErr(err)
	}
	if !fi.Mode().IsRegular() {
		return measurement{}, Permanent(fmt.Errorf("%s: not a regular file (%s)", path, fi.Mode().Type()))
	}
	r, err := wav.Open(ctx, f, follow)
	if err != nil {
		return measurement{}, wavErr(ctx, path, err)
	}
	wf := r.Format()
	meter, err := loudness.New(wf.SampleRate, loudness.Weights(wf.Channels, wf.ChannelMask), loudness.Options{TruePeak: truePeak})
	if err != nil {
		return measurement{}, Permanent(fmt.Errorf("%s: %w", path, err))
	}
	// The file is read on another goroutine while the meter measures; the
	// meter decodes each channel from the file's bytes as it measures it.
	var addErr error
	err = r.StreamRaw(ctx, streamFrames, func(b wav.RawBlock) error {
		if addErr = meter.AddChannels(b.Frames(), b.DecodeChannel); addErr != nil {
			return addErr
		}
		if progress != nil {
			progress(b.Read, b.Known)
		}
		return nil
	})
	switch {
	case addErr != nil:
		return measurement{}, addErr
	case err != nil:
		return measurement{}, wavErr(ctx, path, err)
	}
	res := meter.Result()
	m := measurement{
		IntegratedLUFS:   finite(res.Integrated),
		LRA:              round2(res.Range),
		MaxMomentaryLUFS: finite(res.MaxMomentary),
		MaxShortTermLUFS: finite(res.MaxShortTerm),
		SamplePeakDBFS:   finite(res.SamplePeak),
		DurationS:        round2(float64(res.Frames) / float64(wf.SampleRate)),
		SampleRate:       wf.SampleRate,
		Channels:         wf.Channels,
		Bits:             wf.Bits,
		Format:           "pcm",
		Container:        wf.Container,
		Bext:             r.Bext(),
		raw:              res,
		fmt:              wf,
		frames:           res.Frames,
	}
	if wf.Code == wav.FormatFloat {
		m.Format = "float"
	}
	if truePeak {
		m.TruePeakDBTP = finite(res.TruePeak) // nil for digital silence
	}
	return m, nil
}

// wavErr wraps an error of reading a WAV file: content errors are
// permanent, file system errors as fsErr decides, cancellation as ctxErr.
func wavErr(ctx context.Context, path string, err error) error {
	switch {
	case ctx.Err() != nil:
		return ctxErr(ctx)
	case errors.Is(err, wav.ErrNotWAV), errors.Is(err, wav.ErrUnsupported),
		errors.Is(err, wav.ErrMalformed), errors.Is(err, wav.ErrTruncated):
		return Permanent(fmt.Errorf("%s: %w", path, err))
	}
	return fmt.Errorf("read %s: %w", path, fsErr(err))
}

// finite returns v rounded to 0.01, or nil for an infinite value.
func finite(v float64) *float64 {
	if math.IsInf(v, 0) || math.IsNaN(v) {
		return nil
	}
	r := round2(v)
	return &r
}

func round2(v float64) float64 { return math.Round(v*100) / 100 }
