package loudness_test

import (
	"context"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/dpe-engine/dpe/internal/loudness"
	"github.com/dpe-engine/dpe/internal/wav"
)

// benchFile writes a minute of stereo 48 kHz 24-bit programme-like sound
// (a tone with a slow envelope and a little noise).
func benchFile(b *testing.B) (string, int64) {
	b.Helper()
	const seconds = 60
	path := filepath.Join(b.TempDir(), "bench.wav")
	writeProgramme(b, path, seconds, func(n int, noise float64) float64 {
		return 0.3*math.Sin(2*math.Pi*440*float64(n)/programmeRate)*(0.6+0.4*math.Sin(float64(n)/programmeRate)) + 0.05*noise
	})
	return path, int64(seconds * programmeRate * 2)
}

// programmeRate is the sample rate of writeProgramme's files.
const programmeRate = 48000

// writeProgramme writes seconds of stereo 48 kHz 24-bit sound to path, a
// second at a time (constant memory whatever the length): the left
// channel is sample(n, noise) for frame n, the right 0.8 of it; noise is
// a deterministic value in [-0.5, 0.5), the same in every run.
func writeProgramme(tb testing.TB, path string, seconds int, sample func(n int, noise float64) float64) {
	tb.Helper()
	f, err := wav.NewFormat(wav.FormatPCM, 2, programmeRate, 24, false, 0)
	if err != nil {
		tb.Fatal(err)
	}
	fh, err := os.Create(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer fh.Close()
	w, err := wav.Create(fh, f, nil)
	if err != nil {
		tb.Fatal(err)
	}
	buf := make([]float64, 2*programmeRate)
	seed := uint32(1)
	for s := range seconds {
		for i := range programmeRate {
			seed = seed*1664525 + 1013904223
			v := sample(s*programmeRate+i, float64(seed)/(1<<32)-0.5)
			buf[2*i], buf[2*i+1] = v, 0.8*v
		}
		if err := w.Write(buf); err != nil {
			tb.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		tb.Fatal(err)
	}
	if err := fh.Close(); err != nil {
		tb.Fatal(err)
	}
}

// BenchmarkMeter measures stereo 48 kHz 24-bit throughput in samples per
// second: decoding alone (the baseline), decoding and measuring loudness,
// and decoding and measuring loudness and true peak.
func BenchmarkMeter(b *testing.B) {
	path, samples := benchFile(b)
	for _, bc := range []struct {
		name         string
		meter, peaks bool
	}{{"decode", false, false}, {"decode+loudness", true, false}, {"decode+loudness+truepeak", true, true}} {
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				run(b, path, bc.meter, bc.peaks)
			}
			b.ReportMetric(float64(samples)*float64(b.N)/b.Elapsed().Seconds(), "samples/s")
			b.ReportMetric(float64(samples)*3*float64(b.N)/b.Elapsed().Seconds()/1e6, "MB/s")
		})
	}
}

func run(b *testing.B, path string, measure, truePeak bool) {
	ctx := context.Background()
	fh, err := os.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer fh.Close()
	r, err := wav.Open(ctx, fh, nil)
	if err != nil {
		b.Fatal(err)
	}
	m, err := loudness.New(48000, loudness.Weights(2, 0), loudness.Options{TruePeak: truePeak})
	if err != nil {
		b.Fatal(err)
	}
	buf := make([]float64, 16384*2)
	for {
		n, err := r.Read(ctx, buf)
		if measure && n > 0 {
			if err := m.Add(buf[:n]); err != nil {
				b.Fatal(err)
			}
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			b.Fatal(err)
		}
	}
	if measure && math.IsInf(m.Result().Integrated, -1) {
		b.Fatal("no loudness measured")
	}
}
