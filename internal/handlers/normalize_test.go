package handlers

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dpe-engine/dpe/internal/jobtype"
	"github.com/dpe-engine/dpe/internal/wav"
)

// writeTransients writes seconds of stereo 48 kHz 24-bit sound: a 1 kHz
// sine at -28 dBFS with, every second, a 2 ms burst of noise and a sine at
// a quarter of the rate phased so its peaks fall between samples. At
// -23 LUFS plain gain would put its true peak far over -1 dBTP.
func writeTransients(t *testing.T, path string, seconds int) {
	t.Helper()
	const rate = 48000
	f, err := wav.NewFormat(wav.FormatPCM, 2, rate, 24, false, 0)
	if err != nil {
		t.Fatal(err)
	}
	fh, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	w, err := wav.Create(fh, f, nil)
	if err != nil {
		t.Fatal(err)
	}
	seed := uint32(7)
	buf := make([]float64, 0, 2*rate)
	for i := range seconds * rate {
		v := math.Pow(10, -28.0/20) * math.Sin(2*math.Pi*1000*float64(i)/rate)
		l, r := v, v
		if i%rate < rate/500 {
			seed = seed*1664525 + 1013904223
			noise := 0.6 * (float64(seed)/(1<<32)*2 - 1)
			isp := 0.35 * math.Sin(2*math.Pi*float64(i)/4+math.Pi/4)
			l, r = l+noise+isp, r-noise+isp
		}
		buf = append(buf, l, r)
		if len(buf) == cap(buf) {
			if err := w.Write(buf); err != nil {
				t.Fatal(err)
			}
			buf = buf[:0]
		}
	}
	if err := w.Write(buf); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestAudioNormalizeLimiter(t *testing.T) {
	b := setup(t)
	src := filepath.Join(b.root, "loud.wav")
	writeTransients(t, src, 10)
	dst := filepath.Join(b.root, "out", "limited.wav")
	params := map[string]any{"path": src, "mode": "write", "to": dst, "limiter": true}

	// Without the limiter the ceiling sets the gain, far under the target.
	res, err := b.run(t, jobtype.AudioNormalize, map[string]any{"path": src})
	if err != nil {
		t.Fatal(err)
	}
	plain := res.(normalizeResult)
	if !plain.ClippedByPeak || plain.ExpectedLUFS > -26 {
		t.Fatalf("the test signal does not need the limiter: %+v", plain)
	}

	res, err = b.run(t, jobtype.AudioNormalize, params)
	if err != nil {
		t.Fatal(err)
	}
	r := res.(normalizeResult)
	if !r.Written || !r.Limited || r.ClippedByPeak || r.LimiterMaxReductionDB < 3 {
		t.Errorf("limited write: %+v", r)
	}
	res, err = b.run(t, jobtype.AudioLoudness, map[string]any{"path": dst})
	if err != nil {
		t.Fatal(err)
	}
	m := res.(loudnessResult)
	t.Logf("plain gain: %.2f dB to %.2f LUFS; limited: gain %.2f dB, reduction up to %.2f dB, copy %v LUFS, %v dBTP",
		plain.GainDB, plain.ExpectedLUFS, r.GainDB, r.LimiterMaxReductionDB, fmtPtr(m.IntegratedLUFS), fmtPtr(m.TruePeakDBTP))
	if m.TruePeakDBTP == nil || *m.TruePeakDBTP > -1.0 {
		t.Errorf("limited copy true peak %v dBTP, want <= -1.0", fmtPtr(m.TruePeakDBTP))
	}
	if m.IntegratedLUFS == nil || math.Abs(*m.IntegratedLUFS+23) > 0.5 {
		t.Errorf("limited copy integrated %v LUFS, want -23 ±0.5", fmtPtr(m.IntegratedLUFS))
	}
	if m.Bits != 24 || m.Channels != 2 || m.DurationS != 10 {
		t.Errorf("limited copy format: %+v", m)
	}
	if math.Abs(r.ExpectedLUFS-*m.IntegratedLUFS) > 0.05 || r.ExpectedTPDBTP == nil || math.Abs(*r.ExpectedTPDBTP-*m.TruePeakDBTP) > 0.05 {
		t.Errorf("result expects %.2f LUFS, %v dBTP; the copy measures %.2f, %.2f",
			r.ExpectedLUFS, fmtPtr(r.ExpectedTPDBTP), *m.IntegratedLUFS, *m.TruePeakDBTP)
	}

	// Idempotent: a second run finds the copy and leaves it alone.
	before, err := os.Stat(dst)
	if err != nil {
		t.Fatal(err)
	}
	res, err = b.run(t, jobtype.AudioNormalize, params)
	if err != nil {
		t.Fatal(err)
	}
	if r = res.(normalizeResult); r.Written || !r.AlreadyMatched || !r.Limited {
		t.Errorf("second limited write: %+v", r)
	}
	after, err := os.Stat(dst)
	if err != nil {
		t.Fatal(err)
	}
	if !after.ModTime().Equal(before.ModTime()) {
		t.Error("the matching limited copy was rewritten")
	}
	if names := listDir(t, filepath.Dir(dst)); len(names) != 1 {
		t.Errorf("target directory holds %v, want only the copy", names)
	}
}

// A source the full gain keeps under the ceiling is not limited: the copy
// is the plain-gain copy, byte for byte.
func TestAudioNormalizeLimiterNotNeeded(t *testing.T) {
	b := setup(t)
	src := filepath.Join(b.root, "quiet.wav")
	writeTone(t, src, tone{code: wav.FormatPCM, bits: 24, rate: 48000, dbfs: stereoAt(-30), seconds: 2})
	var copies [][]byte
	for _, limiter := range []bool{false, true} {
		dst := filepath.Join(b.root, "out", map[bool]string{false: "plain.wav", true: "limited.wav"}[limiter])
		res, err := b.run(t, jobtype.AudioNormalize, map[string]any{"path": src, "mode": "write", "to": dst, "limiter": limiter})
		if err != nil {
			t.Fatal(err)
		}
		if r := res.(normalizeResult); !r.Written || r.Limited || r.ClippedByPeak {
			t.Errorf("limiter %v: %+v", limiter, r)
		}
		data, err := os.ReadFile(dst)
		if err != nil {
			t.Fatal(err)
		}
		copies = append(copies, data)
	}
	if !bytes.Equal(copies[0], copies[1]) {
		t.Error("the copy written with the limiter on differs from the plain-gain copy")
	}
}

func TestAudioNormalizeLimiterNeedsWrite(t *testing.T) {
	b := setup(t)
	src := filepath.Join(b.root, "in.wav")
	writeTone(t, src, tone{code: wav.FormatPCM, bits: 16, rate: 48000, dbfs: stereoAt(-30), seconds: 1})
	_, err := b.run(t, jobtype.AudioNormalize, map[string]any{"path": src, "limiter": true})
	if !IsPermanent(err) || !strings.Contains(err.Error(), "needs mode write") {
		t.Errorf("limiter in mode gain: err = %v, want a permanent refusal", err)
	}
}

func fmtPtr(p *float64) any {
	if p == nil {
		return "none"
	}
	return *p
}
