package loudness

import (
	"fmt"
	"math"
)

// Limiter settings. The look-ahead is the attack: the gain falls over it to
// reach a peak's level when the peak arrives. The hold keeps the gain at
// that level across the interpolator's window around the peak (half its
// taps on each side, plus the sample the in-between points are counted
// on), so the oversampled output near the peak sees one gain, not a ramp.
// The margin keeps the output's true peak under the ceiling despite the
// gain still varying a little inside that window under clustered peaks,
// and the rounding of the output to integer samples.
const (
	LimiterLookahead = 0.003 // s
	LimiterRelease   = 0.1   // s, time constant
	limiterHold      = tpTaps/2 + 1
	limiterMarginDB  = 0.1
)

// Limiter applies a gain and a look-ahead true-peak limiter to interleaved
// samples: the output's true peak, measured with the Meter's interpolator,
// stays under the ceiling. Detection runs on the 4x oversampled signal
// (sample and in-between points), so inter-sample peaks count.
//
// It streams in constant memory: a delay line of the look-ahead (plus the
// interpolator's half window), so output lags input by Latency frames;
// Flush returns the tail. The same input gives the same output. It is used
// by one goroutine.
type Limiter struct {
	channels int
	gain     float64 // linear make-up gain
	thr      float64 // largest input peak that needs no gain reduction
	look     int     // look-ahead frames (box filter length)
	release  float64 // release coefficient per frame
	delay    int     // frames between input and output

	hist [][]float64 // per channel, a doubled ring of the last tpTaps samples
	hpos int         // next write position in hist rings
	// loudAt is the last frame with a sample over thr/tpGain: a window
	// without one cannot interpolate over thr, so it is not interpolated.
	loudAt int64
	quiet  float64 // thr / tpGain
	in     int64   // frames taken in (real and flushed zeros)

	dq             []limEntry // ring: monotone deque of required gains
	dqHead, dqSize int

	rel   float64   // released gain
	box   []float64 // ring of the last look released gains
	boxAt int
	boxS  float64

	line  []float64 // delay line of input frames, interleaved
	out   int64     // frames output
	total int64     // real frames taken in

	// Reduced counts frames whose gain was lowered below the make-up gain.
	Reduced int64
	minGain float64 // the lowest gain reduction, linear
}

// MinGainDB is the deepest gain reduction applied so far, in dB (0 when
// none, negative otherwise).
func (l *Limiter) MinGainDB() float64 { return 20 * math.Log10(l.minGain) }

type limEntry struct {
	at int64
	g  float64
}

// NewLimiter returns a limiter for channels interleaved channels at
// sampleRate Hz that multiplies by gainDB and keeps the true peak under
// ceilingDBTP.
func NewLimiter(sampleRate, channels int, gainDB, ceilingDBTP float64) (*Limiter, error) {
	if sampleRate < 8000 || sampleRate > 768000 {
		return nil, fmt.Errorf("loudness: sample rate %d Hz is out of range", sampleRate)
	}
	if channels < 1 || channels > 64 {
		return nil, fmt.Errorf("%w: %d channels", ErrLayout, channels)
	}
	if math.IsNaN(gainDB) || math.IsInf(gainDB, 0) || math.IsNaN(ceilingDBTP) || ceilingDBTP > 0 {
		return nil, fmt.Errorf("loudness: limiter gain %v dB or ceiling %v dBTP is not usable", gainDB, ceilingDBTP)
	}
	look := max(1, int(math.Round(LimiterLookahead*float64(sampleRate))))
	l := &Limiter{
		channels: channels,
		gain:     math.Pow(10, gainDB/20),
		look:     look,
		release:  1 - math.Exp(-1/(LimiterRelease*float64(sampleRate))),
		rel:      1,
		minGain:  1,
		hist:     make([][]float64, channels),
		dq:       make([]limEntry, look+2*limiterHold+2),
		box:      make([]float64, look),
		boxS:     float64(look),
	}
	l.thr = math.Pow(10, (ceilingDBTP-limiterMarginDB)/20) / l.gain
	l.quiet, l.loudAt = l.thr/tpGain, -tpTaps
	for i := range l.box {
		l.box[i] = 1
	}
	for c := range l.hist {
		l.hist[c] = make([]float64, 2*tpTaps)
	}
	// Gain for frame m needs required gains up to m+look+hold-1, and the
	// required gain of frame j needs samples up to j+tpTaps/2.
	l.delay = look + limiterHold - 1 + tpTaps/2
	l.line = make([]float64, (l.delay+1)*channels)
	return l, nil
}

// Latency is the number of frames the output lags the input.
func (l *Limiter) Latency() int { return l.delay }

// Process limits interleaved samples (whole frames) and appends the
// frames that are ready, Latency frames behind, to dst.
func (l *Limiter) Process(dst, samples []float64) ([]float64, error) {
	nc := l.channels
	if len(samples)%nc != 0 {
		return dst, fmt.Errorf("loudness: %d samples are not whole frames of %d channels", len(samples), nc)
	}
	for i := 0; i < len(samples); i += nc {
		dst = l.step(dst, samples[i:i+nc], true)
	}
	return dst, nil
}

// Flush appends the frames still in the delay line to dst. The limiter
// takes no more input after it.
func (l *Limiter) Flush(dst []float64) []float64 {
	zero := make([]float64, l.channels)
	for l.out < l.total {
		dst = l.step(dst, zero, false)
	}
	return dst
}

// step takes one input frame (a zero frame past the end when real is
// false) and appends the output frame that becomes ready, if any.
func (l *Limiter) step(dst, frame []float64, real bool) []float64 {
	nc := l.channels
	i := l.in
	l.in++
	if real {
		l.total++
	}
	slot := int(i % int64(l.delay+1))
	copy(l.line[slot*nc:slot*nc+nc], frame)

	// The peak of frame j = i - tpTaps/2: its sample and the in-between
	// points to the next sample, which the window ending at i yields.
	pos := l.hpos
	for c, v := range frame {
		h := l.hist[c]
		h[pos], h[pos+tpTaps] = v, v
		if math.Abs(v) > l.quiet {
			l.loudAt = i
		}
	}
	var e float64
	if i-l.loudAt < tpTaps {
		for c := range frame {
			w := (*[tpTaps]float64)(l.hist[c][pos+1 : pos+1+tpTaps])
			y1, y2, y3 := interpolate(w)
			e = max(e, math.Abs(w[tpTaps/2-1]), math.Abs(y1), math.Abs(y2), math.Abs(y3))
		}
	}
	l.hpos = (pos + 1) % tpTaps
	j := i - tpTaps/2
	if j < 0 {
		return dst
	}
	g := 1.0
	if e > l.thr {
		g = l.thr / e
	}
	l.push(j, g)

	// Frame m's limit: the least required gain from m-hold to
	// m+look+hold-1, then the release, then the mean over the look-ahead.
	// Frames before the first are silence; the gains of the look frames
	// before it still go into the mean so the first frames are limited.
	m := j - int64(l.look) - limiterHold + 1
	if m <= -int64(l.look) {
		return dst
	}
	for l.dqSize > 0 && l.dq[l.dqHead].at < m-limiterHold {
		l.dqHead = (l.dqHead + 1) % len(l.dq)
		l.dqSize--
	}
	lim := l.dq[l.dqHead].g
	if lim < l.rel {
		l.rel = lim
	} else {
		l.rel += (lim - l.rel) * l.release
		if 1-l.rel < 1e-12 {
			l.rel = 1
		}
	}
	l.boxS += l.rel - l.box[l.boxAt]
	l.box[l.boxAt] = l.rel
	l.boxAt = (l.boxAt + 1) % l.look
	gm := min(1, l.boxS/float64(l.look))
	if l.boxAt == 0 { // resum now and then: no drift over hours
		var s float64
		for _, v := range l.box {
			s += v
		}
		l.boxS = s
	}
	if m < 0 || m >= l.total {
		return dst
	}
	k := l.gain
	if gm < 1 {
		l.Reduced++
		l.minGain = min(l.minGain, gm)
		k *= gm
	}
	slot = int(m % int64(l.delay+1))
	for _, v := range l.line[slot*nc : slot*nc+nc] {
		dst = append(dst, v*k)
	}
	l.out++
	return dst
}

// push adds the required gain of frame at to the monotone deque, whose
// front is the least gain in its window.
func (l *Limiter) push(at int64, g float64) {
	n := len(l.dq)
	for l.dqSize > 0 && l.dq[(l.dqHead+l.dqSize-1)%n].g >= g {
		l.dqSize--
	}
	l.dq[(l.dqHead+l.dqSize)%n] = limEntry{at, g}
	l.dqSize++
}
