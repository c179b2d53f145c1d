package loudness

import "math"

// histogram counts blocks by loudness in 0.01 LU bins above the absolute
// gate, with the exact energy sum of each bin, so gated means are exact and
// only the placement of a relative gate is quantised (to half a bin).
type histogram struct {
	count [numBins]int64
	sum   [numBins]float64
	n     int64
	total float64
}

// add counts a block of loudness l and energy e; blocks at or below the
// absolute gate are not kept.
func (h *histogram) add(l, e float64) {
	if !(l > AbsoluteGate) {
		return
	}
	i := min(int((l-AbsoluteGate)/binWidth), numBins-1)
	h.count[i]++
	h.sum[i] += e
	h.n++
	h.total += e
}

// binCentre is the loudness at the middle of bin i.
func binCentre(i int) float64 { return AbsoluteGate + (float64(i)+0.5)*binWidth }

// relGateBin returns the first bin above the relative gate rel (LU below
// the absolute-gated mean), or -1 when no block passed the absolute gate.
func (h *histogram) relGateBin(rel float64) int {
	if h.n == 0 {
		return -1
	}
	gate := energyToLUFS(h.total/float64(h.n)) + rel
	for i := range numBins {
		if binCentre(i) > gate {
			return i
		}
	}
	return numBins
}

// gatedLoudness is BS.1770-4 integrated loudness: the mean energy of the
// blocks above both gates.
func (h *histogram) gatedLoudness(rel float64) float64 {
	first := h.relGateBin(rel)
	if first < 0 {
		return math.Inf(-1)
	}
	var n int64
	var e float64
	for i := first; i < numBins; i++ {
		n += h.count[i]
		e += h.sum[i]
	}
	if n == 0 {
		return math.Inf(-1)
	}
	return energyToLUFS(e / float64(n))
}

// loudnessRange is EBU Tech 3342 LRA: the spread between the 10th and the
// 95th percentile of the short-term loudness above both gates. Percentile
// ranks are rounded as libebur128 rounds them.
func (h *histogram) loudnessRange() float64 {
	first := h.relGateBin(RangeRelGate)
	if first < 0 {
		return 0
	}
	var n int64
	for i := first; i < numBins; i++ {
		n += h.count[i]
	}
	if n == 0 {
		return 0
	}
	lo := int64(float64(n-1)*rangeLowPercent + 0.5)
	hi := int64(float64(n-1)*rangeHighPercent + 0.5)
	return h.rank(first, hi) - h.rank(first, lo)
}

// rank returns the loudness of the k-th (0-based) block counted from bin
// first upwards.
func (h *histogram) rank(first int, k int64) float64 {
	var seen int64
	for i := first; i < numBins; i++ {
		seen += h.count[i]
		if seen > k {
			return binCentre(i)
		}
	}
	return binCentre(numBins - 1)
}
