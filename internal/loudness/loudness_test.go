package loudness

import (
	"math"
	"strconv"
	"testing"
)

// segment is a stretch of 1 kHz sine (or another frequency) with a peak
// level per channel in dBFS; -Inf is silence.
type segment struct {
	seconds float64
	dbfs    []float64
}

// stereo is a segment at the same level in both channels.
func stereo(seconds, dbfs float64) segment { return segment{seconds, []float64{dbfs, dbfs}} }

// measure feeds the segments to a meter, 100 ms at a time, as a
// continuous sine of freq Hz, and returns the result.
func measure(t *testing.T, rate int, weights []float64, tp bool, freq float64, segs ...segment) Result {
	t.Helper()
	m, err := New(rate, weights, Options{TruePeak: tp})
	if err != nil {
		t.Fatal(err)
	}
	nc := len(weights)
	buf := make([]float64, 0, rate/10*nc)
	var n int64
	for _, s := range segs {
		amp := make([]float64, nc)
		for c := range amp {
			amp[c] = math.Pow(10, s.dbfs[c]/20)
		}
		frames := int64(math.Round(s.seconds * float64(rate)))
		for f := int64(0); f < frames; f++ {
			v := math.Sin(2 * math.Pi * freq * float64(n) / float64(rate))
			n++
			for c := range nc {
				buf = append(buf, amp[c]*v)
			}
			if len(buf) == cap(buf) {
				if err := m.Add(buf); err != nil {
					t.Fatal(err)
				}
				buf = buf[:0]
			}
		}
	}
	if err := m.Add(buf); err != nil {
		t.Fatal(err)
	}
	return m.Result()
}

var rates = []int{44100, 48000, 96000}

func near(t *testing.T, what string, got, want, tol float64) {
	t.Helper()
	if math.IsNaN(got) || math.Abs(got-want) > tol {
		t.Errorf("%s = %.3f, want %.3f ±%.2f", what, got, want, tol)
	}
}

func TestKWeighting48kMatchesTable(t *testing.T) {
	k := kWeighting(48000)
	want := []float64{1.53512485958697, -2.69169618940638, 1.19839281085285, -1.69065929318241, 0.73248077421585,
		1, -2, 1, -1.99004745483398, 0.99007225036621}
	got := []float64{k.b0, k.b1, k.b2, k.a1, k.a2, k.d0, k.d1, k.d2, k.c1, k.c2}
	for i := range want {
		if math.Abs(got[i]-want[i]) > 1e-8 {
			t.Errorf("coefficient %d = %.14f, want %.14f", i, got[i], want[i])
		}
	}
}

// TestTech3341 runs the EBU Tech 3341 minimum-requirement cases that are
// made of sine tones, at every sample rate.
func TestTech3341(t *testing.T) {
	inf := math.Inf(-1)
	tests := []struct {
		name    string
		weights []float64
		segs    []segment
		want    float64
	}{
		{"case 1: -23 dBFS stereo", Weights(2, 0), []segment{stereo(20, -23)}, -23},
		{"case 2: -33 dBFS stereo", Weights(2, 0), []segment{stereo(20, -33)}, -33},
		{"case 3: relative gate", Weights(2, 0), []segment{stereo(10, -36), stereo(60, -23), stereo(10, -36)}, -23},
		{"case 4: absolute gate", Weights(2, 0),
			[]segment{stereo(10, -72), stereo(10, -36), stereo(60, -23), stereo(10, -36), stereo(10, -72)}, -23},
		{"case 5: levels", Weights(2, 0), []segment{stereo(20, -26), stereo(20.1, -20), stereo(20, -26)}, -23},
		{"case 6: 5.0", Weights(5, 0), []segment{{20, []float64{-28, -28, -24, -30, -30}}}, -23},
		{"5.1 LFE excluded", Weights(6, 0), []segment{{20, []float64{-28, -28, -24, 0, -30, -30}}}, -23},
		{"5.1 left only", Weights(6, 0), []segment{{10, []float64{-23, inf, inf, inf, inf, inf}}}, -26.01},
		{"5.1 left surround +1.5 dB", Weights(6, 0), []segment{{10, []float64{inf, inf, inf, inf, -23, inf}}}, -26.01 + 1.49},
		{"mono", Weights(1, 0), []segment{{10, []float64{-23}}}, -26.01},
	}
	for _, rate := range rates {
		for _, tt := range tests {
			r := measure(t, rate, tt.weights, false, 1000, tt.segs...)
			near(t, tt.name+" @"+strconv.Itoa(rate)+" integrated", r.Integrated, tt.want, 0.1)
		}
	}
}

func TestLFEOnlyIsSilent(t *testing.T) {
	inf := math.Inf(-1)
	r := measure(t, 48000, Weights(6, 0), false, 60, segment{5, []float64{inf, inf, inf, 0, inf, inf}})
	if !math.IsInf(r.Integrated, -1) || r.SamplePeak < -0.01 {
		t.Errorf("LFE only: integrated %.2f, sample peak %.2f; want -Inf and 0 dBFS", r.Integrated, r.SamplePeak)
	}
}

func TestWeightsFromMask(t *testing.T) {
	// 5.1 with side surrounds: FL FR FC LFE SL SR.
	got := Weights(6, 0x1|0x2|0x4|0x8|0x200|0x400)
	want := []float64{1, 1, 1, 0, 1.41, 1.41}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("Weights = %v, want %v", got, want)
		}
	}
}

// TestMaxMomentaryShortTerm: one second of -20 LUFS tone in silence gives
// a momentary maximum of -20 and a short-term one of -20 - 10·log10(3);
// Tech 3341 case 9 keeps the short-term loudness at -23.
func TestMaxMomentaryShortTerm(t *testing.T) {
	inf := math.Inf(-1)
	for _, rate := range rates {
		r := measure(t, rate, Weights(2, 0), false, 1000, stereo(5, inf), stereo(1, -20), stereo(5, inf))
		near(t, "burst max momentary", r.MaxMomentary, -20, 0.1)
		near(t, "burst max short-term", r.MaxShortTerm, -20-10*math.Log10(3), 0.1)
		var segs []segment
		for range 20 {
			segs = append(segs, stereo(1.34, -20), stereo(1.66, -30))
		}
		r = measure(t, rate, Weights(2, 0), false, 1000, segs...)
		near(t, "case 9 max short-term", r.MaxShortTerm, -23, 0.1)
	}
}

// TestTech3342 runs the loudness range cases of EBU Tech 3342 that are made
// of sine tones.
func TestTech3342(t *testing.T) {
	tests := []struct {
		name string
		segs []segment
		want float64
	}{
		{"case 1", []segment{stereo(20, -20), stereo(20, -30)}, 10},
		{"case 2", []segment{stereo(20, -20), stereo(20, -15)}, 5},
		{"case 3", []segment{stereo(20, -40), stereo(20, -20)}, 20},
		{"case 4", []segment{stereo(20, -50), stereo(20, -35), stereo(20, -20), stereo(20, -35), stereo(20, -50)}, 15},
	}
	for _, rate := range rates {
		for _, tt := range tests {
			r := measure(t, rate, Weights(2, 0), false, 1000, tt.segs...)
			near(t, tt.name+" @"+strconv.Itoa(rate)+" LRA", r.Range, tt.want, 1)
		}
	}
}

// TestTruePeak: a sine at fs/4 sampled 45° off its crest shows a sample
// peak 3 dB under its real peak; the true peak finds it.
func TestTruePeak(t *testing.T) {
	for _, rate := range rates {
		for _, phase := range []float64{0, math.Pi / 8, math.Pi / 4, 3 * math.Pi / 8} {
			m, err := New(rate, Weights(2, 0), Options{TruePeak: true})
			if err != nil {
				t.Fatal(err)
			}
			const amp = 0.5 // -6.02 dBFS
			buf := make([]float64, 0, 2*rate)
			for n := range rate {
				v := amp * math.Sin(math.Pi/2*float64(n)+phase)
				buf = append(buf, v, v)
			}
			if err := m.Add(buf); err != nil {
				t.Fatal(err)
			}
			r := m.Result()
			real := 20 * math.Log10(amp)
			wantSP := 20 * math.Log10(amp*math.Max(math.Abs(math.Sin(phase)), math.Abs(math.Cos(phase))))
			near(t, "sample peak", r.SamplePeak, wantSP, 0.01)
			if r.TruePeak < real-0.4 || r.TruePeak > real+0.2 {
				t.Errorf("rate %d phase %.3f: true peak %.3f dBTP, real peak %.3f (sample peak %.3f)", rate, phase, r.TruePeak, real, r.SamplePeak)
			}
		}
	}
}

func TestAddRefusesPartialFrames(t *testing.T) {
	m, err := New(48000, Weights(2, 0), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Add([]float64{0, 0, 0}); err == nil {
		t.Error("Add of 3 stereo samples: no error")
	}
	if err := m.AddChannels(-1, func([]float64, int, int) {}); err == nil {
		t.Error("AddChannels of -1 frames: no error")
	}
}

// TestConstantMemory: once warmed up, measuring allocates nothing, so a
// programme of any length is measured in the memory of the first block.
func TestConstantMemory(t *testing.T) {
	m, err := New(48000, Weights(6, 0), Options{TruePeak: true})
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]float64, 4800*6)
	for i := range buf {
		buf[i] = 0.5 * math.Sin(float64(i)*0.01)
	}
	if err := m.Add(buf); err != nil {
		t.Fatal(err)
	}
	allocs := testing.AllocsPerRun(20, func() {
		if err := m.Add(buf); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("Add allocates %.1f times per call, want 0", allocs)
	}
}

// TestInterpolateFolding: the folded interpolation equals the three plain
// dot products of the phases it stands for.
func TestInterpolateFolding(t *testing.T) {
	var w [tpTaps]float64
	for j := range w {
		w[j] = math.Sin(float64(j)*1.7) + 0.3*math.Cos(float64(j)*0.2)
	}
	y1, y2, y3 := interpolate(&w)
	for p, got := range []float64{y1, y2, y3} {
		var want float64
		for j := range w {
			want += tpPhase[p][j] * w[j]
		}
		if math.Abs(got-want) > 1e-12 {
			t.Errorf("phase %d = %.15f, want %.15f", p+1, got, want)
		}
	}
}

// programmeLike returns stereo frames of a tone whose level steps between
// loud and quiet, with noise and sparse near-full-scale bursts: material
// on which the true-peak skip both skips and interpolates.
func programmeLike(rate, frames int) []float64 {
	s := make([]float64, 0, 2*frames)
	seed := uint32(7)
	for n := range frames {
		seed = seed*1664525 + 1013904223
		noise := float64(seed)/(1<<32) - 0.5
		level := 0.05
		if (n/(rate/3))%3 == 0 {
			level = 0.4
		}
		v := level*math.Sin(2*math.Pi*997*float64(n)/float64(rate)) + 0.02*noise
		if n%rate < rate/500 {
			v += 0.9 * noise
		}
		s = append(s, v, -0.7*v)
	}
	return s
}

// TestTruePeakSkipIsExact: the meter, which interpolates only the windows
// that can raise the peak, finds exactly the peak of interpolating every
// window.
func TestTruePeakSkipIsExact(t *testing.T) {
	const rate = 48000
	samples := programmeLike(rate, 5*rate)
	m, err := New(rate, Weights(2, 0), Options{TruePeak: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Add(samples); err != nil {
		t.Fatal(err)
	}
	var want float64
	for c := range 2 {
		x := make([]float64, tpHist, tpHist+len(samples)/2)
		for i := c; i < len(samples); i += 2 {
			x = append(x, samples[i])
			want = max(want, math.Abs(samples[i]))
		}
		for i := 0; i+tpTaps <= len(x); i++ {
			y1, y2, y3 := interpolate((*[tpTaps]float64)(x[i : i+tpTaps]))
			want = max(want, math.Abs(y1), math.Abs(y2), math.Abs(y3))
		}
	}
	if got := m.Result().TruePeak; got != 20*math.Log10(want) {
		t.Errorf("true peak %.12f dBTP, interpolating every window gives %.12f", got, 20*math.Log10(want))
	}
}

// TestChunkingAndSharing: the result does not depend on how the samples
// are cut into calls, nor on whether Add shares the channels with a
// second goroutine, nor on whether they come interleaved (Add) or one
// channel at a time (AddChannels): peaks and frames exactly, loudness up
// to the rounding of energies summed in another order.
func TestChunkingAndSharing(t *testing.T) {
	const rate = 48000
	samples := programmeLike(rate, 7*rate)
	planar := [2][]float64{}
	for i, v := range samples {
		planar[i%2] = append(planar[i%2], v)
	}
	var want Result
	for i, tc := range []struct {
		chunk    int // frames per call
		shared   bool
		channels bool // AddChannels
	}{
		{rate * 7, false, false}, {rate * 7, true, false}, {16384, true, false}, {4800, false, false},
		{1000, true, false}, {333, false, false}, {rate * 7, true, true}, {32768, true, true}, {333, false, true},
	} {
		m, err := New(rate, Weights(2, 0), Options{TruePeak: true})
		if err != nil {
			t.Fatal(err)
		}
		if !tc.shared {
			m.split = 0
		} else if m.split == 0 {
			t.Skip("one CPU: Add never shares")
		}
		for off := 0; off < len(samples)/2; off += tc.chunk {
			n := min(len(samples)/2-off, tc.chunk)
			if tc.channels {
				err = m.AddChannels(n, func(dst []float64, ch, from int) {
					copy(dst, planar[ch][off+from:off+n])
				})
			} else {
				err = m.Add(samples[2*off : 2*(off+n)])
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		got := m.Result()
		if i == 0 {
			want = got
			continue
		}
		same := got.SamplePeak == want.SamplePeak && got.TruePeak == want.TruePeak && got.Frames == want.Frames
		for _, d := range []float64{got.Integrated - want.Integrated, got.Range - want.Range,
			got.MaxMomentary - want.MaxMomentary, got.MaxShortTerm - want.MaxShortTerm} {
			same = same && math.Abs(d) < 1e-9
		}
		if !same {
			t.Errorf("chunk %d shared %v channels %v: %+v, want %+v", tc.chunk, tc.shared, tc.channels, got, want)
		}
	}
}

// TestInterpolateMax: the unrolled loop finds the largest of the three
// in-between points of every window.
func TestInterpolateMax(t *testing.T) {
	x := make([]float64, 200)
	for j := range x {
		x[j] = math.Sin(float64(j)*1.7) + 0.3*math.Cos(float64(j)*0.2)
	}
	var want float64
	for i := 0; i+tpTaps <= len(x); i++ {
		y1, y2, y3 := interpolate((*[tpTaps]float64)(x[i : i+tpTaps]))
		want = max(want, math.Abs(y1), math.Abs(y2), math.Abs(y3))
	}
	if got := interpolateMax(x, 0, len(x)-tpTaps+1, 0); math.Abs(got-want) > 1e-15 {
		t.Errorf("interpolateMax = %.17f, want %.17f", got, want)
	}
}
