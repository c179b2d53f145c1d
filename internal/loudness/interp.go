package loudness

import "math"

// interpolateMax returns the largest absolute in-between point of the
// windows x[i : i+tpTaps] for i in [start, end), or peak when none is
// larger. It is interpolate, unrolled, for the Meter's hot loop: the taps
// are constants of the loop and the window one array pointer (one bounds
// check per window, none per tap), and the six running sums stay in
// registers. Against a call of interpolate per window it takes about a
// third less time.
func interpolateMax(x []float64, start, end int, peak float64) float64 {
	s, d, m := &tpSum, &tpDiff, &tpMid
	for i := start; i < end; i++ {
		w := (*[tpTaps]float64)(x[i : i+tpTaps])
		var a, b, c, a2, b2, c2 float64
		u0, v0 := w[0]+w[31], w[0]-w[31]
		u1, v1 := w[1]+w[30], w[1]-w[30]
		a += s[0] * u0
		a2 += s[1] * u1
		b += d[0] * v0
		b2 += d[1] * v1
		c += m[0] * u0
		c2 += m[1] * u1
		u0, v0 = w[2]+w[29], w[2]-w[29]
		u1, v1 = w[3]+w[28], w[3]-w[28]
		a += s[2] * u0
		a2 += s[3] * u1
		b += d[2] * v0
		b2 += d[3] * v1
		c += m[2] * u0
		c2 += m[3] * u1
		u0, v0 = w[4]+w[27], w[4]-w[27]
		u1, v1 = w[5]+w[26], w[5]-w[26]
		a += s[4] * u0
		a2 += s[5] * u1
		b += d[4] * v0
		b2 += d[5] * v1
		c += m[4] * u0
		c2 += m[5] * u1
		u0, v0 = w[6]+w[25], w[6]-w[25]
		u1, v1 = w[7]+w[24], w[7]-w[24]
		a += s[6] * u0
		a2 += s[7] * u1
		b += d[6] * v0
		b2 += d[7] * v1
		c += m[6] * u0
		c2 += m[7] * u1
		u0, v0 = w[8]+w[23], w[8]-w[23]
		u1, v1 = w[9]+w[22], w[9]-w[22]
		a += s[8] * u0
		a2 += s[9] * u1
		b += d[8] * v0
		b2 += d[9] * v1
		c += m[8] * u0
		c2 += m[9] * u1
		u0, v0 = w[10]+w[21], w[10]-w[21]
		u1, v1 = w[11]+w[20], w[11]-w[20]
		a += s[10] * u0
		a2 += s[11] * u1
		b += d[10] * v0
		b2 += d[11] * v1
		c += m[10] * u0
		c2 += m[11] * u1
		u0, v0 = w[12]+w[19], w[12]-w[19]
		u1, v1 = w[13]+w[18], w[13]-w[18]
		a += s[12] * u0
		a2 += s[13] * u1
		b += d[12] * v0
		b2 += d[13] * v1
		c += m[12] * u0
		c2 += m[13] * u1
		u0, v0 = w[14]+w[17], w[14]-w[17]
		u1, v1 = w[15]+w[16], w[15]-w[16]
		a += s[14] * u0
		a2 += s[15] * u1
		b += d[14] * v0
		b2 += d[15] * v1
		c += m[14] * u0
		c2 += m[15] * u1
		sum, diff, mid := a+a2, b+b2, c+c2
		// |y1| and |y3| are |sum ± diff|/2; the larger is (|sum|+|diff|)/2.
		if y := (math.Abs(sum) + math.Abs(diff)) / 2; y > peak {
			peak = y
		}
		if y := math.Abs(mid); y > peak {
			peak = y
		}
	}
	return peak
}
