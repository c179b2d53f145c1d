package handlers

import (
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dpe-engine/dpe/internal/clock"
	"github.com/dpe-engine/dpe/internal/jobtype"
	"github.com/dpe-engine/dpe/internal/paths"
	"github.com/dpe-engine/dpe/internal/wav"
)

// tone describes a test file: a 1 kHz sine at a peak level per channel
// (dBFS; -Inf is silence).
type tone struct {
	code, bits, rate int
	ext              bool
	dbfs             []float64
	seconds          float64
	bext             *wav.Bext
}

// writeTone writes the tone as a WAV file at path.
func writeTone(t *testing.T, path string, tn tone) {
	t.Helper()
	f, err := wav.NewFormat(tn.code, len(tn.dbfs), tn.rate, tn.bits, tn.ext, 0)
	if err != nil {
		t.Fatal(err)
	}
	fh, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	var bext []byte
	if tn.bext != nil {
		bext = tn.bext.Marshal()
	}
	w, err := wav.Create(fh, f, bext)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write(toneSamples(tn, 0, int(tn.seconds*float64(tn.rate)))); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

// toneSamples returns frames [from, to) of the tone, interleaved.
func toneSamples(tn tone, from, to int) []float64 {
	s := make([]float64, 0, (to-from)*len(tn.dbfs))
	for n := from; n < to; n++ {
		v := math.Sin(2 * math.Pi * 1000 * float64(n) / float64(tn.rate))
		for _, l := range tn.dbfs {
			s = append(s, math.Pow(10, l/20)*v)
		}
	}
	return s
}

func stereoAt(l float64) []float64 { return []float64{l, l} }

func TestAudioLoudness(t *testing.T) {
	b := setup(t)
	inf := math.Inf(-1)
	tests := []struct {
		name string
		tn   tone
		want float64
	}{
		{"pcm16 48k stereo", tone{code: wav.FormatPCM, bits: 16, rate: 48000, dbfs: stereoAt(-23)}, -23},
		{"pcm24 44.1k stereo", tone{code: wav.FormatPCM, bits: 24, rate: 44100, dbfs: stereoAt(-23)}, -23},
		{"pcm32 96k stereo", tone{code: wav.FormatPCM, bits: 32, rate: 96000, dbfs: stereoAt(-33)}, -33},
		{"float32 48k mono", tone{code: wav.FormatFloat, bits: 32, rate: 48000, dbfs: []float64{-23}}, -26.01},
		{"float64 ext 44.1k", tone{code: wav.FormatFloat, bits: 64, rate: 44100, ext: true, dbfs: stereoAt(-23)}, -23},
		{"pcm24 ext 5.1", tone{code: wav.FormatPCM, bits: 24, rate: 48000, ext: true,
			dbfs: []float64{-28, -28, -24, 0, -30, -30}}, -23},
		{"pcm24 5.1 surround only", tone{code: wav.FormatPCM, bits: 24, rate: 48000,
			dbfs: []float64{inf, inf, inf, inf, -23, inf}}, -26.01 + 1.49},
	}
	for _, tt := range tests {
		tt.tn.seconds = 4
		path := filepath.Join(b.root, strings.ReplaceAll(tt.name, " ", "_")+".wav")
		writeTone(t, path, tt.tn)
		var pr progress
		res, err := b.h[jobtype.AudioLoudness].Run(context.Background(), task(t, jobtype.AudioLoudness, map[string]any{"path": path}, &pr))
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		r := res.(loudnessResult)
		if r.IntegratedLUFS == nil || math.Abs(*r.IntegratedLUFS-tt.want) > 0.1 {
			t.Errorf("%s: integrated %v, want %.2f", tt.name, r.IntegratedLUFS, tt.want)
		}
		if r.TruePeakDBTP == nil || r.SamplePeakDBFS == nil || *r.TruePeakDBTP < *r.SamplePeakDBFS {
			t.Errorf("%s: true peak %v under sample peak %v", tt.name, r.TruePeakDBTP, r.SamplePeakDBFS)
		}
		if r.SampleRate != tt.tn.rate || r.Channels != len(tt.tn.dbfs) || r.Bits != tt.tn.bits || r.DurationS != 4 || r.Path != path {
			t.Errorf("%s: result %+v", tt.name, r)
		}
		if p := pr.reports(); len(p) == 0 || p[len(p)-1] != 100 {
			t.Errorf("%s: progress %v, want it to end at 100", tt.name, p)
		}
	}
}

func TestAudioLoudnessBextAndNoTruePeak(t *testing.T) {
	b := setup(t)
	path := filepath.Join(b.root, "news.wav")
	bx := &wav.Bext{Description: "Morning news", Originator: "studio 3", OriginationDate: "2026-12-06",
		OriginationTime: "06:00:00", TimeReference: 48000 * 6 * 3600}
	writeTone(t, path, tone{code: wav.FormatPCM, bits: 24, rate: 48000, dbfs: stereoAt(-20), seconds: 1, bext: bx})
	res, err := b.run(t, jobtype.AudioLoudness, map[string]any{"path": path, "true_peak": false})
	if err != nil {
		t.Fatal(err)
	}
	r := res.(loudnessResult)
	if r.Bext == nil || r.Bext.Description != bx.Description || r.Bext.Originator != bx.Originator ||
		r.Bext.TimeReference != bx.TimeReference || r.Bext.OriginationDate != bx.OriginationDate {
		t.Errorf("bext = %+v", r.Bext)
	}
	if r.TruePeakDBTP != nil {
		t.Errorf("true peak %v measured with true_peak false", *r.TruePeakDBTP)
	}
	if r.MaxShortTermLUFS != nil {
		t.Errorf("max short-term %v of a 1 s file, want null", *r.MaxShortTermLUFS)
	}
}

func TestAudioLoudnessBadFiles(t *testing.T) {
	b := setup(t)
	good := filepath.Join(b.root, "good.wav")
	writeTone(t, good, tone{code: wav.FormatPCM, bits: 16, rate: 48000, dbfs: stereoAt(-20), seconds: 1})
	data := []byte(readFile(t, good))
	adpcm := append([]byte(nil), data...)
	adpcm[12+8+28+8] = 2 // format code of the fmt chunk after RIFF and JUNK
	writeFile(t, filepath.Join(b.root, "adpcm.wav"), string(adpcm))
	writeFile(t, filepath.Join(b.root, "cut.wav"), string(data[:len(data)-100]))
	writeFile(t, filepath.Join(b.root, "text.wav"), "just some text, not audio")
	writeFile(t, filepath.Join(b.outside, "out.wav"), string(data))
	tests := []struct {
		path, want string
	}{
		{filepath.Join(b.root, "adpcm.wav"), "unsupported WAV format: format code 2"},
		{filepath.Join(b.root, "cut.wav"), "truncated WAV file"},
		{filepath.Join(b.root, "text.wav"), "not a WAV file"},
		{filepath.Join(b.root, "missing.wav"), "no such file"},
		{filepath.Join(b.outside, "out.wav"), "params.path"},
		{b.root, "not a regular file"},
	}
	for _, tt := range tests {
		_, err := b.run(t, jobtype.AudioLoudness, map[string]any{"path": tt.path})
		if !IsPermanent(err) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: err = %v, want a permanent error with %q", filepath.Base(tt.path), err, tt.want)
		}
	}
}

// TestAudioLoudnessGrowingFile measures a file written while the job
// follows it, on a fake clock: the writer adds a second of tone at each
// wait, then stops; the job ends stable_for after the last write with the
// loudness of the whole file.
func TestAudioLoudnessGrowingFile(t *testing.T) {
	b := setup(t)
	path := filepath.Join(b.root, "rec.wav")
	tn := tone{code: wav.FormatPCM, bits: 24, rate: 48000, dbfs: stereoAt(-23)}
	f, err := wav.NewFormat(tn.code, 2, tn.rate, tn.bits, false, 0)
	if err != nil {
		t.Fatal(err)
	}
	fh, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fh.Close() })
	w, err := wav.Create(fh, f, nil)
	if err != nil {
		t.Fatal(err)
	}
	clk := clock.NewFake(time.Now())
	written := 0
	h := &loudnessHandler{cfg: Config{Guard: b.guard(t), Clock: clk}.withDefaults(), spec: jobtype.Builtins()[jobtype.AudioLoudness],
		wait: func(ctx context.Context) error {
			clk.Advance(time.Second)
			if written < 6 {
				written++
				return w.Write(toneSamples(tn, (written-1)*tn.rate, written*tn.rate))
			}
			return nil
		}}
	res, err := h.Run(context.Background(), task(t, jobtype.AudioLoudness, map[string]any{"path": path, "stable_for": "3s"}, nil))
	if err != nil {
		t.Fatal(err)
	}
	r := res.(loudnessResult)
	if r.DurationS != 6 || r.IntegratedLUFS == nil || math.Abs(*r.IntegratedLUFS+23) > 0.1 {
		t.Errorf("duration %v s, integrated %v; want 6 s at -23", r.DurationS, r.IntegratedLUFS)
	}
}

func TestAudioLoudnessCancel(t *testing.T) {
	b := setup(t)
	path := filepath.Join(b.root, "long.wav")
	writeTone(t, path, tone{code: wav.FormatPCM, bits: 16, rate: 48000, dbfs: stereoAt(-20), seconds: 10})
	ctx, cancel := context.WithCancel(context.Background())
	tk := task(t, jobtype.AudioLoudness, map[string]any{"path": path}, nil)
	tk.Progress = func(int, string) { cancel() }
	_, err := b.h[jobtype.AudioLoudness].Run(ctx, tk)
	if !errors.Is(err, context.Canceled) || IsPermanent(err) {
		t.Errorf("err = %v, want context.Canceled, not permanent", err)
	}
}

func TestAudioNormalize(t *testing.T) {
	b := setup(t)
	src := filepath.Join(b.root, "in.wav")
	bx := &wav.Bext{Description: "to normalise", Originator: "dpe"}
	writeTone(t, src, tone{code: wav.FormatPCM, bits: 24, rate: 48000, dbfs: stereoAt(-30), seconds: 4, bext: bx})

	// Gain only: -30 → -23 is +7 dB, and the peak (-30 + 7 dBFS) stays under -1.
	res, err := b.run(t, jobtype.AudioNormalize, map[string]any{"path": src})
	if err != nil {
		t.Fatal(err)
	}
	r := res.(normalizeResult)
	if math.Abs(r.GainDB-7) > 0.1 || r.ClippedByPeak || r.Written {
		t.Errorf("gain mode: %+v", r)
	}
	// The peak of a stereo sine is at its loudness: a -16 LUFS target
	// would put it at -16 dBTP, so a ceiling of -20 dBTP sets the gain.
	res, err = b.run(t, jobtype.AudioNormalize, map[string]any{"path": src, "target_lufs": -16, "true_peak_max_dbtp": -20})
	if err != nil {
		t.Fatal(err)
	}
	r = res.(normalizeResult)
	if !r.ClippedByPeak || r.ExpectedTPDBTP == nil || math.Abs(*r.ExpectedTPDBTP+20) > 0.01 || math.Abs(r.GainDB-10) > 0.1 {
		t.Errorf("peak-limited gain: %+v", r)
	}

	// Write: the copy measures -23, keeps the format and bext; a second
	// run finds it and does not rewrite it.
	dst := filepath.Join(b.root, "out", "norm.wav")
	params := map[string]any{"path": src, "mode": "write", "to": dst, "target_lufs": -23.5}
	res, err = b.run(t, jobtype.AudioNormalize, params)
	if err != nil {
		t.Fatal(err)
	}
	if r = res.(normalizeResult); !r.Written {
		t.Fatalf("write: %+v", r)
	}
	res, err = b.run(t, jobtype.AudioLoudness, map[string]any{"path": dst})
	if err != nil {
		t.Fatal(err)
	}
	m := res.(loudnessResult)
	if m.IntegratedLUFS == nil || math.Abs(*m.IntegratedLUFS+23.5) > 0.05 || m.Bits != 24 || m.Bext == nil || m.Bext.Description != bx.Description {
		t.Errorf("written copy: %+v", m)
	}
	before, err := os.Stat(dst)
	if err != nil {
		t.Fatal(err)
	}
	res, err = b.run(t, jobtype.AudioNormalize, params)
	if err != nil {
		t.Fatal(err)
	}
	if r = res.(normalizeResult); r.Written || !r.AlreadyMatched {
		t.Errorf("second write: %+v", r)
	}
	after, err := os.Stat(dst)
	if err != nil {
		t.Fatal(err)
	}
	if !after.ModTime().Equal(before.ModTime()) {
		t.Error("the matching copy was rewritten")
	}
	// Another target: the copy no longer matches and is rewritten.
	params["target_lufs"] = -26
	res, err = b.run(t, jobtype.AudioNormalize, params)
	if err != nil || !res.(normalizeResult).Written {
		t.Errorf("new target: %+v, %v", res, err)
	}
	if names := listDir(t, filepath.Dir(dst)); len(names) != 1 {
		t.Errorf("target directory holds %v, want only the copy", names)
	}
}

func TestAudioNormalizeRefusals(t *testing.T) {
	b := setup(t)
	src := filepath.Join(b.root, "in.wav")
	writeTone(t, src, tone{code: wav.FormatPCM, bits: 16, rate: 48000, dbfs: stereoAt(-30), seconds: 1})
	silent := filepath.Join(b.root, "silent.wav")
	writeTone(t, silent, tone{code: wav.FormatPCM, bits: 16, rate: 48000, dbfs: stereoAt(math.Inf(-1)), seconds: 1})
	tests := []struct {
		name   string
		params map[string]any
		want   string
	}{
		{"limiter without write", map[string]any{"path": src, "limiter": true}, "params.limiter"},
		{"write without to", map[string]any{"path": src, "mode": "write"}, "params.to"},
		{"to outside", map[string]any{"path": src, "mode": "write", "to": filepath.Join(b.outside, "x.wav")}, "params.to"},
		{"bad mode", map[string]any{"path": src, "mode": "louder"}, "params.mode"},
		{"target not a number", map[string]any{"path": src, "target_lufs": "-23"}, "params.target_lufs"},
		{"silence", map[string]any{"path": silent}, "silence"},
	}
	for _, tt := range tests {
		_, err := b.run(t, jobtype.AudioNormalize, tt.params)
		if !IsPermanent(err) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: err = %v, want a permanent error with %q", tt.name, err, tt.want)
		}
	}
}

// guard returns a guard confining paths to the bundle's root.
func (b bundle) guard(t *testing.T) *paths.Guard {
	t.Helper()
	g, err := paths.NewGuard([]string{b.root})
	if err != nil {
		t.Fatal(err)
	}
	return g
}
