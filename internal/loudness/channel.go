package loudness

import "math"

// channel is one channel's share of a Meter: its K-weighting filter, its
// peaks and the scratch its samples are gathered into. Add measures each
// channel over a whole call, one channel after another (or two at once on
// two goroutines), so each loop below runs over a contiguous block of one
// channel's samples with its state in registers.
type channel struct {
	weight float64
	k      kFilter
	peak   float64   // largest absolute sample
	tp     truePeak  // nil x unless the true peak is measured
	plain  []float64 // the block, without true peak
	// energy holds the weighted energy of each step segment of the
	// current Add.
	energy []float64
}

func (c *channel) init(weight float64, coef kCoef, truePeak bool) {
	c.weight = weight
	c.k.c = coef
	if truePeak {
		c.tp.x = make([]float64, tpHist)
	}
}

// subBlock is the most frames of a channel gathered and measured at a
// time: 16 KiB of samples, so that the filter and the interpolator find
// them in the first-level cache where the gather left them.
const subBlock = 2048

// add measures channel ch of the interleaved samples (nc channels), whose
// frames fall into step segments of segs frames.
func (c *channel) add(samples []float64, ch, nc int, segs []int) {
	c.energy = grow(c.energy, len(segs))
	off := 0 // frames of samples done
	for k, s := range segs {
		var e float64
		for end := off + s; off < end; {
			n := min(subBlock, end-off)
			block := c.gather(samples[off*nc:(off+n)*nc], ch, nc)
			if c.weight != 0 {
				e += c.k.energy(block)
			}
			if c.tp.x != nil {
				c.tp.add()
			}
			off += n
		}
		c.energy[k] = c.weight * e
	}
}

// gather copies channel ch of the interleaved samples (nc channels) into
// the channel's block, after the interpolator's history when there is
// one, taking the sample peak on the way.
func (c *channel) gather(samples []float64, ch, nc int) []float64 {
	if c.tp.x != nil {
		block := c.tp.gather(samples, ch, nc)
		c.peak = max(c.peak, c.tp.blockPeak)
		return block
	}
	block := grow(c.plain, len(samples)/nc)
	c.plain = block
	// Gathering the channel keeps a bounds check per sample (the compiler
	// cannot prove a stride of nc in range); the loops over the gathered
	// block have none (go build -gcflags=-d=ssa/check_bce).
	var peak uint64
	for i, j := ch, 0; i < len(samples) && j < len(block); i, j = i+nc, j+1 {
		v := samples[i]
		block[j] = v
		peak = max(peak, absBits(v))
	}
	c.peak = max(c.peak, math.Float64frombits(peak))
	return block
}

// absBits returns the bits of |v|. For numbers that are not negative
// (and not NaN) the order of their bits is the order of their values, and
// the largest of integers compiles to a conditional move where that of
// floats (math.Abs and a comparison, or the builtin max with its NaN and
// signed-zero rules) takes a branch or more: taking peaks this way halves
// the time of the loops that gather a channel.
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
// against the peak so far; a group's windows span 2*tpGroup-1 samples,
// two of the chunks whose maxima are taken once per call.
const tpGroup = tpTaps

// truePeak is the interpolator of one channel: x holds tpHist samples of
// history followed by the block of the current call.
type truePeak struct {
	x     []float64
	peak  float64
	maxes []float64 // largest absolute sample of each chunk of tpGroup
	// blockPeak is the largest absolute sample of the last gather (or of
	// the history before it: samples already counted).
	blockPeak float64
}

// gather copies channel ch of the interleaved samples (nc channels) after
// the history and returns them, taking the largest absolute sample of
// each chunk of x on the way: chunk g covers x[g*tpGroup :
// (g+1)*tpGroup], the first one starting in the history.
func (t *truePeak) gather(samples []float64, ch, nc int) []float64 {
	x := grow(t.x, tpHist+len(samples)/nc)
	t.x = x
	t.maxes = grow(t.maxes, (len(x)+tpGroup-1)/tpGroup)
	src, peak := ch, uint64(0)
	for g := range t.maxes {
		lo, hi := g*tpGroup, min((g+1)*tpGroup, len(x))
		var m uint64
		if lo < tpHist {
			for _, v := range x[lo:tpHist] {
				m = max(m, absBits(v))
			}
			lo = tpHist
		}
		for j := lo; j < hi && src < len(samples); j++ {
			v := samples[src]
			src += nc
			x[j] = v
			m = max(m, absBits(v))
		}
		t.maxes[g] = math.Float64frombits(m)
		peak = max(peak, m)
	}
	t.blockPeak = math.Float64frombits(peak)
	return x[tpHist:]
}

// add runs the block gathered after the history through the interpolator, keeps the
// largest absolute interpolated value and moves the block's last tpHist
// samples into the history.
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
// not. Here M is taken over the union of the windows of a group of
// outputs (which can only raise M, so the bound still holds for each).
// The bound is evaluated in floating point as M*G <= peak; G carries the
// rounding of the taps' sum, and the interpolated y carries its own
// rounding of at most ~32 ulps, far below the 0.01 dB the result is given
// in, so a skipped window cannot hide a peak larger than the result
// reports by more than that rounding.
func (t *truePeak) add() {
	x := t.x
	outs := len(x) - tpHist
	chunks := len(t.maxes) // taken by gather
	peak := t.peak
	for g, start := 0, 0; start < outs; g, start = g+1, start+tpGroup {
		// Outputs [start, end) read x[start : end+tpHist], within chunks
		// g and g+1 (tpGroup = tpTaps).
		m := t.maxes[g]
		if g+1 < chunks {
			m = max(m, t.maxes[g+1])
		}
		if m*tpGain <= peak {
			continue
		}
		peak = interpolateMax(x, start, min(start+tpGroup, outs), peak)
	}
	t.peak = peak
	copy(x, x[len(x)-tpHist:])
	t.x = x[:tpHist]
}
