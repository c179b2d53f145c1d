package loudness

import "math"

// kCoef holds the two biquads of the K-weighting filter: the high-shelf
// pre-filter (b, a) and the RLB high-pass (d, c); a0 = c0 = 1.
type kCoef struct {
	b0, b1, b2, a1, a2 float64
	d0, d1, d2, c1, c2 float64
}

// kFilter is the K-weighting filter state of one channel.
type kFilter struct {
	c                      kCoef
	x1, x2, y1, y2, z1, z2 float64
}

// kWeighting derives the K-weighting coefficients for sample rate fs from
// the analogue prototype behind the 48 kHz table of BS.1770-4 (shelf centre
// frequency, gain and Q; high-pass corner and Q), by the bilinear transform
// with the frequencies pre-warped, as libebur128 does. At 48 kHz it
// reproduces the standard's table.
func kWeighting(fs float64) kCoef {
	const (
		shelfF0 = 1681.974450955533
		shelfG  = 3.999843853973347 // dB
		shelfQ  = 0.7071752369554196
		hpF0    = 38.13547087602444
		hpQ     = 0.5003270373238773
	)
	var k kCoef
	K := math.Tan(math.Pi * shelfF0 / fs)
	vh := math.Pow(10, shelfG/20)
	vb := math.Pow(vh, 0.4996667741545416)
	a0 := 1 + K/shelfQ + K*K
	k.b0 = (vh + vb*K/shelfQ + K*K) / a0
	k.b1 = 2 * (K*K - vh) / a0
	k.b2 = (vh - vb*K/shelfQ + K*K) / a0
	k.a1 = 2 * (K*K - 1) / a0
	k.a2 = (1 - K/shelfQ + K*K) / a0

	K = math.Tan(math.Pi * hpF0 / fs)
	c0 := 1 + K/hpQ + K*K
	k.d0, k.d1, k.d2 = 1, -2, 1
	k.c1 = 2 * (K*K - 1) / c0
	k.c2 = (1 - K/hpQ + K*K) / c0
	return k
}

// tpTaps is the 48-tap, 4-phase interpolation filter of BS.1770-4 Annex 2
// (Table 1), phase by phase, 12 taps each.
var tpTaps = [4][12]float64{
	{0.0017089843750, 0.0109863281250, -0.0196533203125, 0.0332031250000, -0.0594482421875, 0.1373291015625,
		0.9721679687500, -0.1022949218750, 0.0476074218750, -0.0266113281250, 0.0148925781250, -0.0083007812500},
	{-0.0291748046875, 0.0292968750000, -0.0517578125000, 0.0891113281250, -0.1665039062500, 0.4650878906250,
		0.7797851562500, -0.2003173828125, 0.1015625000000, -0.0582275390625, 0.0330810546875, -0.0189208984375},
	{-0.0189208984375, 0.0330810546875, -0.0582275390625, 0.1015625000000, -0.2003173828125, 0.7797851562500,
		0.4650878906250, -0.1665039062500, 0.0891113281250, -0.0517578125000, 0.0292968750000, -0.0291748046875},
	{-0.0083007812500, 0.0148925781250, -0.0266113281250, 0.0476074218750, -0.1022949218750, 0.9721679687500,
		0.1373291015625, -0.0594482421875, 0.0332031250000, -0.0196533203125, 0.0109863281250, 0.0017089843750},
}

// tpRev holds tpTaps reversed, so that a window ordered oldest to newest
// is a plain dot product.
var tpRev = func() (r [4][12]float64) {
	for p := range tpTaps {
		for j := range 12 {
			r[p][j] = tpTaps[p][11-j]
		}
	}
	return r
}()

// truePeak is the 4x polyphase interpolator of one channel: it keeps the
// last 11 samples and, per segment, runs the filter over them followed by
// the segment's samples in one contiguous scratch slice.
type truePeak struct {
	x    []float64 // scratch: 11 samples of history, then the segment
	peak float64
}

// add runs channel c of the interleaved segment seg (nc channels) through
// the interpolator and keeps the largest absolute interpolated value.
func (t *truePeak) add(seg []float64, c, nc int) {
	if t.x == nil {
		t.x = make([]float64, 11, 11+len(seg)/nc)
	}
	x := t.x[:11]
	for i := c; i < len(seg); i += nc {
		x = append(x, seg[i])
	}
	peak := t.peak
	h0, h1, h2, h3 := &tpRev[0], &tpRev[1], &tpRev[2], &tpRev[3]
	for i := 0; i+12 <= len(x); i++ {
		w := (*[12]float64)(x[i : i+12])
		y0 := h0[0]*w[0] + h0[1]*w[1] + h0[2]*w[2] + h0[3]*w[3] + h0[4]*w[4] + h0[5]*w[5] +
			h0[6]*w[6] + h0[7]*w[7] + h0[8]*w[8] + h0[9]*w[9] + h0[10]*w[10] + h0[11]*w[11]
		y1 := h1[0]*w[0] + h1[1]*w[1] + h1[2]*w[2] + h1[3]*w[3] + h1[4]*w[4] + h1[5]*w[5] +
			h1[6]*w[6] + h1[7]*w[7] + h1[8]*w[8] + h1[9]*w[9] + h1[10]*w[10] + h1[11]*w[11]
		y2 := h2[0]*w[0] + h2[1]*w[1] + h2[2]*w[2] + h2[3]*w[3] + h2[4]*w[4] + h2[5]*w[5] +
			h2[6]*w[6] + h2[7]*w[7] + h2[8]*w[8] + h2[9]*w[9] + h2[10]*w[10] + h2[11]*w[11]
		y3 := h3[0]*w[0] + h3[1]*w[1] + h3[2]*w[2] + h3[3]*w[3] + h3[4]*w[4] + h3[5]*w[5] +
			h3[6]*w[6] + h3[7]*w[7] + h3[8]*w[8] + h3[9]*w[9] + h3[10]*w[10] + h3[11]*w[11]
		// Plain comparisons: the builtin max spends time on NaN and -0.
		m := math.Abs(y0)
		if a := math.Abs(y1); a > m {
			m = a
		}
		if a := math.Abs(y2); a > m {
			m = a
		}
		if a := math.Abs(y3); a > m {
			m = a
		}
		if m > peak {
			peak = m
		}
	}
	copy(x, x[len(x)-11:])
	t.x, t.peak = x[:11], peak
}
