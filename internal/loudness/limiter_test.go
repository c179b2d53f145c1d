package loudness

import (
	"math"
	"slices"
	"testing"
)

// transients returns seconds of stereo sound at rate Hz: a 1 kHz sine at
// -30 dBFS with, every half second, a 5 ms burst of noise and a sine at a
// quarter of the rate phased so its peaks fall between samples, both near
// full scale: a peak-to-loudness ratio far above what a -1 dBTP ceiling
// allows at -23 LUFS.
func transients(rate int, seconds float64) []float64 {
	n := int(seconds * float64(rate))
	out := make([]float64, 0, 2*n)
	seed := uint32(7)
	period, burst := rate, rate/500
	for i := range n {
		v := math.Pow(10, -28.0/20) * math.Sin(2*math.Pi*1000*float64(i)/float64(rate))
		l, r := v, v
		if p := i % period; p < burst {
			seed = seed*1664525 + 1013904223
			noise := 0.6 * (float64(seed)/(1<<32)*2 - 1)
			isp := 0.35 * math.Sin(2*math.Pi*float64(i)/4+math.Pi/4)
			l, r = l+noise+isp, r-noise+isp
		}
		out = append(out, l, r)
	}
	return out
}

// limit runs samples through a limiter in chunks of chunk frames.
func limit(t *testing.T, rate int, gainDB, ceiling float64, samples []float64, chunk int) ([]float64, *Limiter) {
	t.Helper()
	return limitN(t, rate, 2, gainDB, ceiling, samples, chunk)
}

// limitN is limit for nc channels.
func limitN(t *testing.T, rate, nc int, gainDB, ceiling float64, samples []float64, chunk int) ([]float64, *Limiter) {
	t.Helper()
	l, err := NewLimiter(rate, nc, gainDB, ceiling)
	if err != nil {
		t.Fatal(err)
	}
	var out []float64
	for len(samples) > 0 {
		n := min(len(samples), nc*chunk)
		if out, err = l.Process(out, samples[:n]); err != nil {
			t.Fatal(err)
		}
		samples = samples[n:]
	}
	return l.Flush(out), l
}

func meterOf(t *testing.T, rate int, samples []float64) Result {
	t.Helper()
	return meterOfN(t, rate, 2, samples)
}

func meterOfN(t *testing.T, rate, nc int, samples []float64) Result {
	t.Helper()
	m, err := New(rate, Weights(nc, 0), Options{TruePeak: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Add(samples); err != nil {
		t.Fatal(err)
	}
	return m.Result()
}

func TestLimiterReachesTargetUnderCeiling(t *testing.T) {
	const target, ceiling = -23.0, -1.0
	for _, rate := range rates {
		in := transients(rate, 10)
		src := meterOf(t, rate, in)
		gain := target - src.Integrated
		if src.TruePeak+gain <= ceiling+3 {
			t.Fatalf("%d Hz: the test signal needs no limiting: %+v, gain %.2f", rate, src, gain)
		}
		// Limiting takes loudness off the peaks: a second pass adds it
		// back to the gain, as audio.normalize does.
		out, _ := limit(t, rate, gain, ceiling, in, 1000)
		first := meterOf(t, rate, out)
		out, l := limit(t, rate, gain+target-first.Integrated, ceiling, in, 1000)
		if len(out) != len(in) {
			t.Fatalf("%d Hz: %d samples out of %d in", rate, len(out), len(in))
		}
		got := meterOf(t, rate, out)
		if got.TruePeak > ceiling {
			t.Errorf("%d Hz: true peak %.3f dBTP over the %.1f ceiling (plain gain: %.2f)", rate, got.TruePeak, ceiling, src.TruePeak+gain)
		}
		if math.Abs(got.Integrated-target) > 0.5 {
			t.Errorf("%d Hz: integrated %.3f LUFS (first pass %.3f), want %.1f ±0.5", rate, got.Integrated, first.Integrated, target)
		}
		if l.Reduced == 0 || l.MinGainDB() >= -3 {
			t.Errorf("%d Hz: limiter reduced %d frames, at most %.2f dB", rate, l.Reduced, l.MinGainDB())
		}
	}
}

// Every channel is watched, the LFE too, though it does not count for
// loudness.
func TestLimiterLayouts(t *testing.T) {
	const rate, target, ceiling = 48000, -23.0, -1.0
	st := transients(rate, 5)
	tests := []struct {
		name  string
		nc    int
		frame func(l, r float64) []float64
	}{
		{"mono", 1, func(l, _ float64) []float64 { return []float64{l} }},
		{"5.1", 6, func(l, r float64) []float64 { return []float64{l, r, 0.7 * l, 1.2 * r, 0.5 * l, 0.5 * r} }},
	}
	for _, tt := range tests {
		in := make([]float64, 0, len(st)/2*tt.nc)
		for i := 0; i < len(st); i += 2 {
			in = append(in, tt.frame(st[i], st[i+1])...)
		}
		src := meterOfN(t, rate, tt.nc, in)
		gain := target - src.Integrated
		out, l := limitN(t, rate, tt.nc, gain, ceiling, in, 999)
		got := meterOfN(t, rate, tt.nc, out)
		if len(out) != len(in) || l.Reduced == 0 || src.TruePeak+gain <= ceiling {
			t.Errorf("%s: %d samples of %d, %d frames reduced, plain gain peak %.2f", tt.name, len(out), len(in), l.Reduced, src.TruePeak+gain)
		}
		if got.TruePeak > ceiling {
			t.Errorf("%s: true peak %.3f dBTP over the %.1f ceiling", tt.name, got.TruePeak, ceiling)
		}
	}
}

func TestLimiterLeavesQuietSignalAsPlainGain(t *testing.T) {
	const rate, gainDB = 48000, 7.0
	in := make([]float64, 0, 2*rate)
	for i := range rate {
		v := math.Pow(10, -30.0/20) * math.Sin(2*math.Pi*1000*float64(i)/rate)
		in = append(in, v, 0.5*v)
	}
	out, l := limit(t, rate, gainDB, -1, in, 777)
	k := math.Pow(10, gainDB/20)
	if len(out) != len(in) {
		t.Fatalf("%d samples out of %d in", len(out), len(in))
	}
	for i := range in {
		if out[i] != in[i]*k {
			t.Fatalf("sample %d: %v, plain gain gives %v", i, out[i], in[i]*k)
		}
	}
	if l.Reduced != 0 {
		t.Errorf("reduced %d frames of a signal under the ceiling", l.Reduced)
	}
}

func TestLimiterDeterministicAcrossChunking(t *testing.T) {
	const rate = 44100
	in := transients(rate, 2)
	a, _ := limit(t, rate, 12, -1, in, 1)
	b, _ := limit(t, rate, 12, -1, in, 4096)
	if !slices.Equal(a, b) {
		t.Error("the output depends on how the input is chunked")
	}
}

func TestLimiterShortInput(t *testing.T) {
	tests := []struct {
		name   string
		frames int
	}{{"empty", 0}, {"one frame", 1}, {"shorter than the latency", 50}}
	for _, tt := range tests {
		in := make([]float64, 2*tt.frames)
		for i := range in {
			in[i] = 0.9
		}
		out, _ := limit(t, 48000, 6, -1, in, 16)
		if len(out) != len(in) {
			t.Errorf("%s: %d samples out of %d", tt.name, len(out), len(in))
		}
		for i, v := range out {
			if math.Abs(v) > math.Pow(10, -1.0/20) {
				t.Errorf("%s: sample %d is %v, over the ceiling", tt.name, i, v)
				break
			}
		}
	}
}

func TestNewLimiterRefuses(t *testing.T) {
	tests := []struct {
		name                string
		rate, ch            int
		gainDB, ceilingDBTP float64
	}{
		{"rate", 100, 2, 0, -1},
		{"channels", 48000, 0, 0, -1},
		{"gain", 48000, 2, math.Inf(1), -1},
		{"ceiling", 48000, 2, 0, 1},
	}
	for _, tt := range tests {
		if _, err := NewLimiter(tt.rate, tt.ch, tt.gainDB, tt.ceilingDBTP); err == nil {
			t.Errorf("%s: no error", tt.name)
		}
	}
	l, err := NewLimiter(48000, 2, 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Process(nil, []float64{1}); err == nil {
		t.Error("a partial frame was taken")
	}
}
