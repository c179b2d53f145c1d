package handlers

import (
	"context"
	"fmt"
	"image/png"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/dpe-engine/dpe/internal/jobtype"
	"github.com/dpe-engine/dpe/internal/wav"
	"github.com/dpe-engine/dpe/internal/waveform"
)

func TestWaveform(t *testing.T) {
	b := setup(t)
	src := filepath.Join(b.root, "take.wav")
	writeTone(t, src, tone{code: wav.FormatPCM, bits: 24, rate: 48000, dbfs: []float64{-6, -20}, seconds: 2})
	peaks := filepath.Join(b.root, "wf", "take.peaks")
	pic := filepath.Join(b.root, "wf", "take.png")
	params := map[string]any{"path": src, "peaks": peaks, "png": pic, "block": 512, "width": 200, "height": 100}
	pr := &progress{}
	res, err := b.h[jobtype.AudioWaveform].Run(context.Background(), task(t, jobtype.AudioWaveform, params, pr))
	if err != nil {
		t.Fatal(err)
	}
	r := res.(waveformResult)
	if r.AlreadyDone || r.DurationS != 2 || r.Header == nil || r.Header.Channels != 2 || r.Header.Frames != 96000 {
		t.Fatalf("result = %+v", r)
	}
	// The inline overview: 96000 frames in 188 peaks of 512 at level 0,
	// so all of them; -6 and -20 dBFS tones per channel.
	if ov := r.Overview; ov == nil || ov.Columns != 188 || ov.FramesPerColumn != 512 || len(ov.Max) != 2 ||
		ov.Max[0][100] < 0.49 || ov.Max[0][100] > 0.51 || ov.Min[1][100] > -0.09 || ov.Min[1][100] < -0.11 {
		t.Errorf("overview = %+v", r.Overview)
	}
	if got := pr.reports(); len(got) == 0 || got[len(got)-1] != 100 {
		t.Errorf("progress = %v", got)
	}
	f, err := os.Open(peaks)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h, err := waveform.ReadHeader(f)
	if err != nil {
		t.Fatal(err)
	}
	if l := h.Levels[0]; l.Block != 512 || l.Peaks != (96000+511)/512 || h.Levels[len(h.Levels)-1].Peaks != 1 {
		t.Errorf("levels = %+v", h.Levels)
	}
	top, err := h.ReadLevel(f, len(h.Levels)-1)
	if err != nil {
		t.Fatal(err)
	}
	// -6 dBFS peak is 0.501 of full scale, -20 dBFS 0.1.
	near := func(v int16, want float64) bool { return float64(v)/32767 > want-0.01 && float64(v)/32767 < want+0.01 }
	if !near(top[1], 0.501) || !near(top[0], -0.501) || !near(top[3], 0.1) || !near(top[2], -0.1) {
		t.Errorf("whole-file peaks = %v, want ±0.501 and ±0.1", top)
	}
	pf, err := os.Open(pic)
	if err != nil {
		t.Fatal(err)
	}
	defer pf.Close()
	img, err := png.Decode(pf)
	if err != nil {
		t.Fatal(err)
	}
	if bd := img.Bounds(); bd.Dx() != 200 || bd.Dy() != 100 {
		t.Errorf("png %v, want 200x100", bd)
	}
	if names := listDir(t, filepath.Dir(peaks)); !slices.Equal(names, []string{".take.peaks.dpe-media.json", ".take.png.dpe-media.json", "take.peaks", "take.png"}) {
		t.Errorf("target dir = %v", names)
	}

	// Again: already made. Without the picture it is made again.
	res, err = b.run(t, jobtype.AudioWaveform, params)
	if err != nil || !res.(waveformResult).AlreadyDone || res.(waveformResult).Header.Frames != 96000 || res.(waveformResult).Overview.Columns != 188 {
		t.Errorf("second run = %+v, %v; want already done", res, err)
	}
	if err := os.Remove(pic); err != nil {
		t.Fatal(err)
	}
	if res, err = b.run(t, jobtype.AudioWaveform, params); err != nil || res.(waveformResult).AlreadyDone {
		t.Errorf("run without the picture = %+v, %v; want it made", res, err)
	}
	if _, err := os.Stat(pic); err != nil {
		t.Error(err)
	}

	for _, bad := range []map[string]any{
		{"path": src, "peaks": peaks, "block": 100},
		{"path": src, "peaks": peaks, "png": pic, "width": 8},
		{"path": src, "peaks": filepath.Join(b.outside, "x.peaks")},
		{"path": src, "peaks": src},
		{"path": filepath.Join(b.root, "missing.wav"), "peaks": peaks},
	} {
		if _, err := b.run(t, jobtype.AudioWaveform, bad); !IsPermanent(err) {
			t.Errorf("params %v: err = %v, want permanent", bad, err)
		}
	}
	notWAV := filepath.Join(b.root, "notes.txt")
	writeFile(t, notWAV, "not audio at all, but long enough to be read as a header")
	if _, err := b.run(t, jobtype.AudioWaveform, map[string]any{"path": notWAV, "peaks": peaks}); !IsPermanent(err) {
		t.Errorf("not a WAV: err = %v, want permanent", err)
	}
}

// BenchmarkWaveform measures audio.waveform (peaks and PNG) on a minute
// of 48 kHz stereo 24-bit audio, in MB/s of WAV read.
func BenchmarkWaveform(b *testing.B) {
	dir := b.TempDir()
	src := filepath.Join(dir, "min.wav")
	tn := tone{code: wav.FormatPCM, bits: 24, rate: 48000, dbfs: []float64{-20, -20}, seconds: 60}
	f, err := wav.NewFormat(tn.code, 2, tn.rate, tn.bits, false, 0)
	if err != nil {
		b.Fatal(err)
	}
	fh, err := os.Create(src)
	if err != nil {
		b.Fatal(err)
	}
	w, err := wav.Create(fh, f, nil)
	if err != nil {
		b.Fatal(err)
	}
	for s := 0; s < 60; s++ {
		if err := w.Write(toneSamples(tn, s*48000, (s+1)*48000)); err != nil {
			b.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		b.Fatal(err)
	}
	fh.Close()
	fi, _ := os.Stat(src)
	h := Builtins(Config{})[jobtype.AudioWaveform]
	b.SetBytes(fi.Size())
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		// New targets each time: an unchanged target would be skipped.
		params := fmt.Sprintf(`{"path":%q,"peaks":%q,"png":%q}`, src,
			filepath.Join(dir, fmt.Sprint(i), "p.peaks"), filepath.Join(dir, fmt.Sprint(i), "p.png"))
		if _, err := h.Run(context.Background(), Task{Type: jobtype.AudioWaveform, Params: []byte(params)}); err != nil {
			b.Fatal(err)
		}
	}
}
