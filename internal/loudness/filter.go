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

// truePeak is the 4x polyphase interpolator of one channel. Its history
// is written twice (at pos and pos+12) so that the last 12 samples are
// always contiguous.
type truePeak struct {
	hist [24]float64
	pos  int
	peak float64
}

// add runs channel c of the interleaved segment seg (nc channels) through
// the interpolator and keeps the largest absolute interpolated value.
func (t *truePeak) add(seg []float64, c, nc int) {
	peak, pos := t.peak, t.pos
	for i := c; i < len(seg); i += nc {
		pos++
		if pos == 12 {
			pos = 0
		}
		t.hist[pos], t.hist[pos+12] = seg[i], seg[i]
		w := (*[12]float64)(t.hist[pos+1 : pos+13])
		for p := range tpRev {
			h := &tpRev[p]
			y := h[0]*w[0] + h[1]*w[1] + h[2]*w[2] + h[3]*w[3] + h[4]*w[4] + h[5]*w[5] +
				h[6]*w[6] + h[7]*w[7] + h[8]*w[8] + h[9]*w[9] + h[10]*w[10] + h[11]*w[11]
			if y < 0 {
				y = -y
			}
			if y > peak {
				peak = y
			}
		}
	}
	t.peak, t.pos = peak, pos
}
