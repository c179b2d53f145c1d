package loudness

import (
	"math"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/dpe-engine/dpe/internal/wav"
)

// threadCPU returns the CPU time of the calling OS thread.
func threadCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(1 /* RUSAGE_THREAD */, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// recursion runs y = x - a·y over block.
func recursion(block []float64, a float64) float64 {
	var y float64
	for _, x := range block {
		y = x - a*y
	}
	return y
}

// BenchmarkStage measures the loops of a Meter one by one on a block of
// one channel, in nanoseconds of wall time and of the thread's CPU time
// per sample (the CPU time holds on a machine shared with other work):
//
//	recursion       y = x - a·y alone: the latency of one multiply and one
//	                subtraction, the chain each of the filter's two biquads
//	                carries from one sample to the next, its lower bound
//	kfilter         the K-weighting filter with the chunk peaks (channel.block)
//	peaks           the peaks alone, as for a channel of weight 0
//	decode24        one channel of 24-bit stereo decoded from bytes
//	truepeak-skip   the interpolator where every group is skipped
//	truepeak-all    the interpolator where no group is skipped
//
// Run it with
//
//	go test -run '^$' -bench Stage ./internal/loudness/
func BenchmarkStage(b *testing.B) {
	block := make([]float64, subBlock)
	maxes := make([]float64, subBlock/tpGroup)
	for i := range block {
		block[i] = 0.3 * math.Sin(float64(i)*0.05)
	}
	var cpu0 time.Duration
	start := func() {
		runtime.LockOSThread()
		cpu0 = threadCPU()
	}
	per := func(b *testing.B, n int) {
		cpu := threadCPU() - cpu0
		runtime.UnlockOSThread()
		b.ReportMetric(b.Elapsed().Seconds()*1e9/float64(b.N)/float64(n), "ns/sample")
		b.ReportMetric(cpu.Seconds()*1e9/float64(b.N)/float64(n), "cpu_ns/sample")
	}
	b.Run("recursion", func(b *testing.B) {
		const a = 0.99 // stable, as the filter's poles are
		start()
		for b.Loop() {
			recursion(block, a)
		}
		per(b, len(block))
	})
	b.Run("kfilter", func(b *testing.B) {
		var f kFilter
		f.c = kWeighting(48000)
		start()
		for b.Loop() {
			f.energy(block, maxes)
		}
		per(b, len(block))
	})
	b.Run("peaks", func(b *testing.B) {
		start()
		for b.Loop() {
			chunkPeaks(block, maxes)
		}
		per(b, len(block))
	})
	b.Run("decode24", func(b *testing.B) {
		f, err := wav.NewFormat(wav.FormatPCM, 2, 48000, 24, false, 0)
		if err != nil {
			b.Fatal(err)
		}
		raw := make([]byte, len(block)*f.BlockAlign)
		for i := range raw {
			raw[i] = byte(i * 7)
		}
		dst := make([]float64, len(block))
		start()
		for b.Loop() {
			wav.DecodeChannel(f, dst, raw, 1)
		}
		per(b, len(block))
	})
	for _, skip := range []bool{true, false} {
		name := "truepeak-all"
		if skip {
			name = "truepeak-skip"
		}
		b.Run(name, func(b *testing.B) {
			var t truePeak
			ms := make([]float64, 1+len(maxes))
			start()
			for b.Loop() {
				t.x = grow(t.x, tpHist+len(block))
				copy(t.x[tpHist:], block)
				t.peak = 0
				if skip {
					t.peak = 1e9
				}
				chunkPeaks(t.x[tpHist:], ms[1:])
				ms[0] = 1
				t.add(ms)
			}
			per(b, len(block))
		})
	}
}
