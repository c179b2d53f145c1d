package handlers

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/dpe-engine/dpe/internal/jobtype"
	"github.com/dpe-engine/dpe/internal/model"
	"github.com/dpe-engine/dpe/internal/wav"
	"github.com/dpe-engine/dpe/internal/waveform"
)

// waveformHandler runs audio.waveform.
type waveformHandler struct {
	cfg  Config
	spec jobtype.Spec
	wait waitHook
}

// waveformParams are audio.waveform's params, normalised by check.
type waveformParams struct {
	Path   string `json:"path"`
	Peaks  string `json:"peaks"`
	PNG    string `json:"png"`
	Block  int    `json:"block"`
	Width  int    `json:"width"`
	Height int    `json:"height"`
}

// check fills in the defaults and refuses values out of range.
func (p *waveformParams) check() error {
	if p.Block == 0 {
		p.Block = 256
	}
	if p.Width == 0 {
		p.Width = 1024
	}
	if p.Height == 0 {
		p.Height = 256
	}
	switch {
	case p.Block < 64 || p.Block > 65536 || p.Block&(p.Block-1) != 0:
		return model.Invalid("params.block", "%d: want a power of two from 64 to 65536", p.Block)
	case p.Width < 16 || p.Width > 8192:
		return model.Invalid("params.width", "%d: want 16 to 8192", p.Width)
	case p.Height < 16 || p.Height > 4096:
		return model.Invalid("params.height", "%d: want 16 to 4096", p.Height)
	}
	return nil
}

// waveformResult is the result of audio.waveform.
type waveformResult struct {
	Path        string           `json:"path"`
	Peaks       string           `json:"peaks"`
	PNG         string           `json:"png,omitempty"`
	Header      *waveform.Header `json:"header,omitempty"`
	DurationS   float64          `json:"duration_s"`
	AlreadyDone bool             `json:"already_done"`
	// Overview is a coarse waveform inline, so that the monitor can draw
	// it without reaching the processor's files.
	Overview *waveform.Overview `json:"overview,omitempty"`
}

// overviewColumns is how many columns the inline overview has (fewer for
// short files or many channels, see waveform.ReadOverview).
const overviewColumns = 512

// addOverview puts the overview of the peak file at path into res; one
// that cannot be read is left out (the peak file and the picture are the
// job's output, the overview a convenience).
func (res *waveformResult) addOverview(path string) {
	f, err := os.Open(path)
	if err != nil {
		return
	}
	defer f.Close()
	hd, err := waveform.ReadHeader(f)
	if err != nil {
		return
	}
	res.Header = &hd
	res.DurationS = round3(float64(hd.Frames) / float64(hd.SampleRate))
	if ov, err := waveform.ReadOverview(f, hd, overviewColumns); err == nil {
		res.Overview = &ov
	}
}

// Run writes the peak file and the picture unless both are already made
// from this source with these params.
func (h *waveformHandler) Run(ctx context.Context, t Task) (any, error) {
	name := jobtype.AudioWaveform
	var p waveformParams
	if err := decode(h.spec, t.Params, &p); err != nil {
		return nil, err
	}
	path, err := h.cfg.resolve("path", p.Path)
	if err != nil {
		return nil, err
	}
	if p.Peaks, err = h.cfg.resolveTarget("peaks", p.Peaks); err != nil {
		return nil, err
	}
	if p.PNG != "" {
		if p.PNG, err = h.cfg.resolveTarget("png", p.PNG); err != nil {
			return nil, err
		}
	}
	if p.Peaks == path || p.PNG == path || p.PNG == p.Peaks {
		return nil, Permanent(fmt.Errorf("%s: path, peaks and png must be three different files", name))
	}
	p.Path = path
	if err := p.check(); err != nil {
		return nil, Permanent(fmt.Errorf("%s: %w", name, err))
	}
	follow, err := h.cfg.follow(h.spec, t.Params, h.wait)
	if err != nil {
		return nil, err
	}
	res := waveformResult{Path: path, Peaks: p.Peaks, PNG: p.PNG}
	key, err := mediaKey(name, p, path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if alreadyMade(p.Peaks, key) && (p.PNG == "" || alreadyMade(p.PNG, key)) {
		res.AlreadyDone = true
		res.addOverview(p.Peaks)
		return res, nil
	}
	hd, err := h.write(ctx, t, p, key, follow)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	res.Header = &hd
	res.DurationS = round3(float64(hd.Frames) / float64(hd.SampleRate))
	res.addOverview(p.Peaks)
	return res, nil
}

// write streams the WAV file once into the peak file, following it while
// it grows when follow is set, then draws the picture from the peak file
// (whose length is only known at the end of a growing file); each is
// written to a temporary file and renamed.
func (h *waveformHandler) write(ctx context.Context, t Task, p waveformParams, key string, follow *wav.Follow) (waveform.Header, error) {
	in, err := os.Open(p.Path)
	if err != nil {
		return waveform.Header{}, fsErr(err)
	}
	defer in.Close()
	r, err := wav.Open(ctx, in, follow)
	if err != nil {
		return waveform.Header{}, wavErr(ctx, p.Path, err)
	}
	wf := r.Format()
	for _, target := range []string{p.Peaks, p.PNG} {
		if target != "" {
			if err := os.Remove(sidecarPath(target)); err != nil && !os.IsNotExist(err) {
				return waveform.Header{}, fsErr(err)
			}
		}
	}
	peaksTmp, err := newTempTarget(h.cfg, p.Peaks)
	if err != nil {
		return waveform.Header{}, err
	}
	defer peaksTmp.abort()
	pf, err := os.OpenFile(peaksTmp.path, os.O_RDWR, 0)
	if err != nil {
		return waveform.Header{}, fsErr(err)
	}
	defer pf.Close()
	pw, err := waveform.NewWriter(pf, wf.Channels, wf.SampleRate, p.Block)
	if err != nil {
		return waveform.Header{}, Permanent(err)
	}
	if p.PNG != "" && p.Height < wf.Channels {
		return waveform.Header{}, Permanent(fmt.Errorf("params.height: %d pixels cannot hold a lane for each of %d channels", p.Height, wf.Channels))
	}
	prog := newMeter(t, h.cfg.Clock, "read", r.DataSize())
	buf := make([]float64, 16384*wf.Channels)
	for {
		n, rerr := r.Read(ctx, buf)
		if n > 0 {
			if err := pw.Add(buf[:n]); err != nil {
				return waveform.Header{}, fmt.Errorf("write %s: %w", peaksTmp.path, fsErr(err))
			}
			prog.total = r.DataSize() // grows with a growing file
			prog.update(r.BytesRead())
		}
		if errors.Is(rerr, io.EOF) {
			break
		}
		if rerr != nil {
			return waveform.Header{}, wavErr(ctx, p.Path, rerr)
		}
	}
	if err := pw.Close(); err != nil {
		return waveform.Header{}, fmt.Errorf("write %s: %w", peaksTmp.path, fsErr(err))
	}
	if follow != nil {
		// The targets are made from the file as it ended up.
		if key, err = mediaKey(jobtype.AudioWaveform, p, p.Path); err != nil {
			return waveform.Header{}, err
		}
	}
	if p.PNG != "" {
		img, err := waveform.ImageFromPeaks(pf, pw.Header(), p.Width, p.Height)
		if err != nil {
			return waveform.Header{}, fmt.Errorf("read %s: %w", peaksTmp.path, err)
		}
		pngTmp, err := newTempTarget(h.cfg, p.PNG)
		if err != nil {
			return waveform.Header{}, err
		}
		defer pngTmp.abort()
		if err := writePNG(pngTmp.path, img); err != nil {
			return waveform.Header{}, err
		}
		if err := pngTmp.commit(); err != nil {
			return waveform.Header{}, err
		}
		writeSidecar(h.cfg, p.PNG, key)
	}
	if err := pf.Close(); err != nil {
		return waveform.Header{}, fsErr(err)
	}
	if err := peaksTmp.commit(); err != nil {
		return waveform.Header{}, err
	}
	writeSidecar(h.cfg, p.Peaks, key)
	prog.update(prog.total)
	return pw.Header(), nil
}

// writePNG encodes img into the file at path.
func writePNG(path string, img *waveform.Image) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		return fsErr(err)
	}
	if err := img.WritePNG(f); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, fsErr(err))
	}
	return fsErr(f.Close())
}
