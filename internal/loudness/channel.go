package loudness

import "math"

// channel is one channel's share of a Meter: its K-weighting filter, its
// peaks and the scratch its samples are loaded into. AddChannels measures
// each channel over a whole call, one channel after another (or two at
// once on two goroutines), so each loop below runs over a contiguous block
// of one channel's samples with its state in registers.
type channel struct {
	weight float64
	k      kFilter
	peak   float64  // largest absolute sample
	tp     truePeak // nil x unless the true peak is measured
	plain  []float64
	// maxes holds the largest absolute sample of each chunk of tpGroup
	// samples of the block after an unused first element (the true-peak
	// interpolator's history, see truePeak).
	maxes []float64
	// energy holds the weighted energy of each step segment of the
	// current call.
	energy []float64
}

func (c *channel) init(weight float64, coef kCoef, truePeak bool) {
	c.weight = weight
	c.k.c = coef
	if truePeak {
		c.tp.x = make([]float64, tpHist)
	}
}

// subBlock is the most frames of a channel loaded and measured at a
// time: 16 KiB of samples, so that the filter and the interpolator find
// them in the first-level cache where the load left them.
const subBlock = 2048

// add measures channel ch of the current call, whose frames fall into
// step segments of segs frames, taking its samples from fill.
func (c *channel) add(fill Fill, ch int, segs []int) {
	c.energy = grow(c.energy, len(segs))
	off := 0 // frames done
	for k, s := range segs {
		var e float64
		for end := off + s; off < end; {
			n := min(subBlock, end-off)
			e += c.block(fill, ch, off, n)
			off += n
		}
		c.energy[k] = c.weight * e
	}
}

// block loads n frames from frame from on and measures them: the filter's
// energy, which it returns, the peaks of each chunk on the way (the
// filter's loop has room for them), then the true peak.
func (c *channel) block(fill Fill, ch, from, n int) float64 {
	var block []float64
	if c.tp.x != nil {
		c.tp.x = grow(c.tp.x, tpHist+n)
		block = c.tp.x[tpHist:]
	} else {
		c.plain = grow(c.plain, n)
		block = c.plain
	}
	fill(block, ch, from)
	c.maxes = grow(c.maxes, 1+(n+tpGroup-1)/tpGroup)
	var e float64
	var peak uint64
	if c.weight != 0 {
		e, peak = c.k.energy(block, c.maxes[1:])
	} else {
		peak = chunkPeaks(block, c.maxes[1:])
	}
	c.peak = max(c.peak, math.Float64frombits(peak))
	if c.tp.x != nil {
		c.maxes[0] = math.Float64frombits(maxAbsBits(c.tp.x[:tpHist]))
		c.tp.add(c.maxes)
	}
	return e
}

// chunkPeaks stores the largest absolute sample of each chunk of tpGroup
// samples of block in maxes and returns the bits of the largest of all.
func chunkPeaks(block, maxes []float64) uint64 {
	var peak uint64
	for g := 0; len(block) > 0 && g < len(maxes); g++ {
		chunk := block[:min(tpGroup, len(block))]
		block = block[len(chunk):]
		m := maxAbsBits(chunk)
		maxes[g] = math.Float64frombits(m)
		peak = max(peak, m)
	}
	return peak
}

// maxAbsBits returns the bits of the largest |v| of s (see absBits).
// Four running maxima keep four conditional moves in flight.
func maxAbsBits(s []float64) uint64 {
	var m0, m1, m2, m3 uint64
	for len(s) >= 4 {
		m0 = max(m0, absBits(s[0]))
		m1 = max(m1, absBits(s[1]))
		m2 = max(m2, absBits(s[2]))
		m3 = max(m3, absBits(s[3]))
		s = s[4:]
	}
	for _, v := range s {
		m0 = max(m0, absBits(v))
	}
	return max(m0, m1, m2, m3)
}

// absBits returns the bits of |v|. For numbers that are not negative
// (and not NaN) the order of their bits is the order of their values, and
// the largest of integers compiles to a conditional move where that of
// floats (math.Abs and a comparison, or the builtin max with its NaN and
// signed-zero rules) takes a branch or more: taking peaks this way halves
// the time of the loops that take peaks.
func absBits(v float64) uint64 { return math.Float64bits(v) &^ (1 << 63) }

// grow returns s resized to n, reallocated only when it is too small.
func grow(s []float64, n int) []float64 {
	if cap(s) < n {
		t := make([]float64, n)
		copy(t, s)
		return t
	}
	return s[:n]
}

// tpHist is the history the interpolator keeps: the window of the first
// new sample reaches back tpTaps-1 samples.
const tpHist = tpTaps - 1

// tpGroup is the number of outputs whose windows are checked together
// against the peak so far, and the size of the chunks whose largest
// absolute samples are taken as the block is filtered.
const tpGroup = tpTaps

// truePeak is the interpolator of one channel: x holds tpHist samples of
// history followed by the block of the current call.
type truePeak struct {
	x    []float64
	peak float64
}

// add runs the block loaded after the history through the interpolator,
// keeps the largest absolute interpolated value and moves the block's last
// tpHist samples into the history. maxes[0] is the largest absolute
// sample of the history, maxes[g+1] that of chunk g of the block,
// x[tpHist+g*tpGroup : tpHist+(g+1)*tpGroup].
//
// Groups of outputs that cannot raise the peak are not interpolated, and
// that is exact, not an estimate. An output of phase p is
//
//	y = Σj h[p][j]·x[i+j], so |y| ≤ Σj |h[p][j]|·|x[i+j]| ≤ G·M
//
// where G = tpGain, the largest sum of absolute taps over the phases,
// and M the largest |x| in the window. When G·M is at most the peak found
// so far, no output of the window can exceed that peak, so the maximum
// over all outputs is the same whether the window is interpolated or
// not. Here M is taken over a span that holds the windows of a group of
// outputs (which can only raise M, so the bound still holds for each):
// outputs [g*tpGroup, (g+1)*tpGroup) read x[g*tpGroup : (g+1)*tpGroup +
// tpHist], within the history or chunk g-1 and chunk g (tpGroup =
// tpTaps = tpHist+1), whose maxima are maxes[g] and maxes[g+1].
// The bound is evaluated in floating point as M*G <= peak; G carries the
// rounding of the taps' sum, and the interpolated y carries its own
// rounding of at most ~32 ulps, far below the 0.01 dB the result is given
// in, so a skipped window cannot hide a peak larger than the result
// reports by more than that rounding.
func (t *truePeak) add(maxes []float64) {
	x := t.x
	outs := len(x) - tpHist
	peak := t.peak
	for g, start := 0, 0; start < outs && g+1 < len(maxes); g, start = g+1, start+tpGroup {
		if max(maxes[g], maxes[g+1])*tpGain <= peak {
			continue
		}
		peak = interpolateMax(x, start, min(start+tpGroup, outs), peak)
	}
	t.peak = peak
	copy(x, x[len(x)-tpHist:])
	t.x = x[:tpHist]
}
