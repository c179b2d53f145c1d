// Package loudness measures programme loudness per ITU-R BS.1770-4 and
// EBU R128: integrated loudness with absolute and relative gating, loudness
// range per EBU Tech 3342, maximum momentary and short-term loudness, sample
// peak and true peak (4x oversampling per BS.1770-4 Annex 2).
//
// A Meter streams: it keeps filter state, the last 3 s of 100 ms block
// energies and two fixed histograms of block loudness (0.01 LU bins, as
// libebur128 does with coarser ones), so its memory does not grow with the
// length of the programme.
//
// No well-kept Go implementation of BS.1770 was found among the Go modules
// available here, so the measurement is this package's own.
package loudness

import (
	"errors"
	"fmt"
	"math"
	"runtime"
	"sync"
)

// Channel weights of BS.1770-4 Table 3.
const (
	WeightFront    = 1.0  // L, R, C
	WeightSurround = 1.41 // Ls, Rs (+1.5 dB)
	WeightLFE      = 0.0  // LFE: not measured
)

// Gates of BS.1770-4 (integrated) and EBU Tech 3342 (loudness range).
const (
	AbsoluteGate     = -70.0 // LUFS
	RelativeGate     = -10.0 // LU below the absolute-gated loudness
	RangeRelGate     = -20.0 // LU below the absolute-gated short-term loudness
	rangeLowPercent  = 0.10
	rangeHighPercent = 0.95
)

// Histogram of block loudness: bins of binWidth LU from AbsoluteGate to
// histTop; louder blocks go to the top bin, whose energy sum stays exact.
const (
	binWidth = 0.01
	histTop  = 10.0
	numBins  = int((histTop - AbsoluteGate) / binWidth)
)

// Blocks: 100 ms steps; momentary windows span 4 of them (400 ms, 75 %
// overlap), short-term windows 30 (3 s, updated at 10 Hz).
const (
	momentarySteps = 4
	shortTermSteps = 30
)

// Result is a complete measurement. Loudness values that no block reached
// (a programme shorter than the window, or silent) are math.Inf(-1).
type Result struct {
	Integrated   float64 // LUFS
	Range        float64 // LU (EBU Tech 3342 LRA)
	MaxMomentary float64 // LUFS
	MaxShortTerm float64 // LUFS
	SamplePeak   float64 // dBFS
	TruePeak     float64 // dBTP; -Inf when true peak was not measured
	Frames       int64
}

// Options choose what a Meter measures beyond the loudness itself.
type Options struct {
	// TruePeak enables the 4x oversampled true-peak measurement, the most
	// expensive part.
	TruePeak bool
}

// ErrLayout is returned for channel weights that cannot be measured.
var ErrLayout = errors.New("loudness: unsupported channel layout")

// Meter measures one programme. Feed it interleaved samples with Add, or
// one channel at a time with AddChannels, and read the result with
// Result. It is used by one goroutine; on a machine with more than one
// CPU, a large call hands half of the channels to a second goroutine and
// waits for it before returning.
type Meter struct {
	rate     int
	channels int
	ch       []channel
	truePeak bool
	// split is the first channel Add measures itself when it shares the
	// work; 0 when it never does.
	split int
	wg    sync.WaitGroup
	// work measures channels [0, split) of the current call; built once
	// so that starting the helper goroutine allocates nothing.
	work func()
	// fill is the current call's source of samples; gather, built once,
	// is Add's, which takes them from interleaved.
	fill        Fill
	gather      Fill
	interleaved []float64

	stepLen  int       // frames per 100 ms step
	stepFill int       // frames in the current step
	stepSum  float64   // weighted energy of the current step
	steps    []float64 // ring of the last shortTermSteps step energies
	nsteps   int64     // steps completed
	segs     []int     // frames of each step segment of the current Add

	maxMomentary float64
	maxShortTerm float64
	momentary    histogram
	shortTerm    histogram
	frames       int64
}

// parallelMin is the least number of frames for which a call shares its
// channels with a second goroutine: below it, starting one costs more
// than it saves.
const parallelMin = 2048

// New returns a Meter for sampleRate Hz and one weight per channel (see
// Weights).
func New(sampleRate int, weights []float64, opt Options) (*Meter, error) {
	if sampleRate < 8000 || sampleRate > 768000 {
		return nil, fmt.Errorf("loudness: sample rate %d Hz is out of range", sampleRate)
	}
	if len(weights) == 0 || len(weights) > 64 {
		return nil, fmt.Errorf("%w: %d channels", ErrLayout, len(weights))
	}
	m := &Meter{
		rate:         sampleRate,
		channels:     len(weights),
		ch:           make([]channel, len(weights)),
		truePeak:     opt.TruePeak,
		stepLen:      int(math.Round(float64(sampleRate) / 10)),
		steps:        make([]float64, shortTermSteps),
		maxMomentary: math.Inf(-1),
		maxShortTerm: math.Inf(-1),
	}
	coef := kWeighting(float64(sampleRate))
	for i := range m.ch {
		m.ch[i].init(weights[i], coef, opt.TruePeak)
	}
	if len(weights) > 1 && runtime.GOMAXPROCS(0) > 1 {
		m.split = len(weights) / 2
		m.work = func() {
			defer m.wg.Done()
			m.measure(0, m.split)
		}
	}
	m.gather = func(dst []float64, ch, from int) {
		nc := m.channels
		src := m.interleaved[from*nc:]
		// The stride of nc keeps a bounds check per sample: the compiler
		// cannot prove it in range.
		for i, j := ch, 0; i < len(src) && j < len(dst); i, j = i+nc, j+1 {
			dst[j] = src[i]
		}
	}
	return m, nil
}

// Fill writes channel ch of frames [from, from+len(dst)) of the current
// call into dst, full scale ±1.0. AddChannels calls it from more than one
// goroutine at once, for different channels.
type Fill func(dst []float64, ch, from int)

// Add measures interleaved samples (full scale ±1.0). A trailing partial
// frame is an error.
func (m *Meter) Add(samples []float64) error {
	if len(samples)%m.channels != 0 {
		return fmt.Errorf("loudness: %d samples are not whole frames of %d channels", len(samples), m.channels)
	}
	m.interleaved = samples
	defer func() { m.interleaved = nil }()
	return m.AddChannels(len(samples)/m.channels, m.gather)
}

// AddChannels measures frames frames that fill hands over one channel at
// a time, in pieces of a few thousand frames: a caller that has the
// samples in another form (the bytes of a file) converts each piece
// straight into the buffer the meter measures it from, which is then
// still in the CPU's cache.
func (m *Meter) AddChannels(frames int, fill Fill) error {
	if frames < 0 {
		return fmt.Errorf("loudness: %d frames", frames)
	}
	if frames == 0 {
		return nil
	}
	// The call's frames cut into segments at the 100 ms step boundaries.
	m.segs = m.segs[:0]
	for f, left := m.stepFill, frames; left > 0; f = 0 {
		s := min(left, m.stepLen-f)
		m.segs = append(m.segs, s)
		left -= s
	}
	m.fill = fill
	if m.split > 0 && frames >= parallelMin {
		m.wg.Add(1)
		go m.work()
		m.measure(m.split, m.channels)
		m.wg.Wait()
	} else {
		m.measure(0, m.channels)
	}
	m.fill = nil
	for k, s := range m.segs {
		for c := range m.ch {
			m.stepSum += m.ch[c].energy[k]
		}
		m.stepFill += s
		m.frames += int64(s)
		if m.stepFill == m.stepLen {
			m.endStep()
		}
	}
	return nil
}

// measure runs channels [from, to) over the frames of the current call.
func (m *Meter) measure(from, to int) {
	for c := from; c < to; c++ {
		m.ch[c].add(m.fill, c, m.segs)
	}
}

// endStep closes a 100 ms step: a momentary block ends with every step
// from the fourth, a short-term block with every step from the thirtieth.
func (m *Meter) endStep() {
	m.steps[m.nsteps%shortTermSteps] = m.stepSum / float64(m.stepLen)
	m.nsteps++
	m.stepSum, m.stepFill = 0, 0
	if m.nsteps >= momentarySteps {
		e := m.window(momentarySteps)
		l := energyToLUFS(e)
		m.maxMomentary = max(m.maxMomentary, l)
		m.momentary.add(l, e)
	}
	if m.nsteps >= shortTermSteps {
		e := m.window(shortTermSteps)
		l := energyToLUFS(e)
		m.maxShortTerm = max(m.maxShortTerm, l)
		m.shortTerm.add(l, e)
	}
}

// window returns the mean energy of the last n steps.
func (m *Meter) window(n int) float64 {
	var s float64
	for i := int64(1); i <= int64(n); i++ {
		s += m.steps[(m.nsteps-i)%shortTermSteps]
	}
	return s / float64(n)
}

// Result returns the measurement of everything added so far. The meter can
// go on measuring after it.
func (m *Meter) Result() Result {
	r := Result{
		MaxMomentary: m.maxMomentary,
		MaxShortTerm: m.maxShortTerm,
		SamplePeak:   math.Inf(-1),
		TruePeak:     math.Inf(-1),
		Frames:       m.frames,
	}
	r.Integrated = m.momentary.gatedLoudness(RelativeGate)
	r.Range = m.shortTerm.loudnessRange()
	var sp, tp float64
	for i := range m.ch {
		sp = max(sp, m.ch[i].peak)
		tp = max(tp, m.ch[i].tp.peak)
	}
	r.SamplePeak = ampToDB(sp)
	if m.truePeak {
		// The oversampled signal passes through the samples too: the
		// fourth phase of the interpolator is the sample peak.
		r.TruePeak = ampToDB(max(tp, sp))
	}
	return r
}

// energyToLUFS is BS.1770-4 equation (2)/(4).
func energyToLUFS(e float64) float64 {
	if e <= 0 {
		return math.Inf(-1)
	}
	return -0.691 + 10*math.Log10(e)
}

func ampToDB(a float64) float64 {
	if a <= 0 {
		return math.Inf(-1)
	}
	return 20 * math.Log10(a)
}

// Weights returns the BS.1770-4 channel weights for a WAVE channel mask
// (WAVE_FORMAT_EXTENSIBLE dwChannelMask), or, for mask 0, the usual layout
// of that many channels: mono, stereo, L R C Ls Rs, L R C LFE Ls Rs (5.1);
// other counts weigh every channel 1.0.
func Weights(channels int, mask uint32) []float64 {
	w := make([]float64, channels)
	for i := range w {
		w[i] = WeightFront
	}
	if mask == 0 {
		switch channels {
		case 5:
			w[3], w[4] = WeightSurround, WeightSurround
		case 6:
			w[3], w[4], w[5] = WeightLFE, WeightSurround, WeightSurround
		}
		return w
	}
	const (
		lfe         = 0x8
		backLeft    = 0x10
		backRight   = 0x20
		sideLeft    = 0x200
		sideRight   = 0x400
		surroundAll = backLeft | backRight | sideLeft | sideRight
	)
	ch := 0
	for bit := uint32(1); bit != 0 && ch < channels; bit <<= 1 {
		if mask&bit == 0 {
			continue
		}
		switch {
		case bit == lfe:
			w[ch] = WeightLFE
		case bit&surroundAll != 0:
			w[ch] = WeightSurround
		}
		ch++
	}
	return w
}
