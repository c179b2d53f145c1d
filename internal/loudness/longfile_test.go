package loudness_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dpe-engine/dpe/internal/loudness"
	"github.com/dpe-engine/dpe/internal/wav"
)

// BenchmarkLongFile is the long-file measurement: a stereo 48 kHz
// 24-bit WAV of DPE_BENCH_SECONDS seconds (default 60; 3600 for the
// one-hour file, about 1 GB), written once to DPE_BENCH_DIR (default a
// temporary directory; a file of the right size there is reused), then,
// in one run, read by
//
//	decode          the WAV reader alone: the baseline
//	loudness        decode + the meter with true peak (audio.loudness)
//	limiter         decode + gain + true-peak limiter (the extra pass of
//	                audio.normalize with limiter: true)
//	ffmpeg-ebur128  ffmpeg -af ebur128=peak=true, when ffmpeg is installed
//
// Each reports samples/s, MB/s of WAV data, × real time and the peak RSS of
// the process during it (VmHWM, reset through /proc/self/clear_refs; the
// ffmpeg case reports ffmpeg's own maximum RSS). Run it alone:
//
//	DPE_BENCH_SECONDS=3600 DPE_BENCH_DIR=/tmp/dpe-bench \
//	  go test -run '^$' -bench LongFile -benchtime 1x ./internal/loudness/
func BenchmarkLongFile(b *testing.B) {
	seconds := 60
	if s := os.Getenv("DPE_BENCH_SECONDS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n <= 0 {
			b.Fatalf("DPE_BENCH_SECONDS=%q: want a positive number of seconds", s)
		}
		seconds = n
	}
	dir := os.Getenv("DPE_BENCH_DIR")
	if dir == "" {
		dir = b.TempDir()
	}
	path, frames := longFile(b, dir, seconds)
	samples := float64(2 * frames)
	report := func(b *testing.B, rss int64) {
		el := b.Elapsed().Seconds() / float64(b.N)
		b.ReportMetric(samples/el, "samples/s")
		b.ReportMetric(samples*3/el/1e6, "MB/s")
		b.ReportMetric(float64(seconds)/el, "x_realtime")
		if rss > 0 {
			b.ReportMetric(float64(rss)/(1<<20), "peakRSS_MiB")
		}
	}
	for _, mode := range []string{"decode", "loudness", "limiter"} {
		b.Run(mode, func(b *testing.B) {
			resetHWM(b)
			for b.Loop() {
				process(b, path, mode)
			}
			report(b, readHWM(b))
		})
	}
	if ff, err := exec.LookPath("ffmpeg"); err == nil {
		b.Run("ffmpeg-ebur128", func(b *testing.B) {
			var rss int64
			for b.Loop() {
				cmd := exec.Command(ff, "-hide_banner", "-nostats", "-i", path, "-af", "ebur128=peak=true", "-f", "null", "-")
				out, err := cmd.CombinedOutput()
				if err != nil {
					b.Fatalf("ffmpeg: %v\n%s", err, out)
				}
				if !strings.Contains(string(out), "Integrated loudness") {
					b.Fatalf("ffmpeg printed no summary:\n%s", out)
				}
				rss = max(rss, maxRSS(cmd.ProcessState))
			}
			report(b, rss)
		})
	}
}

// process reads the file at path once as mode says.
func process(b *testing.B, path, mode string) {
	b.Helper()
	ctx := context.Background()
	fh, err := os.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer fh.Close()
	r, err := wav.Open(ctx, fh, nil)
	if err != nil {
		b.Fatal(err)
	}
	f := r.Format()
	var m *loudness.Meter
	var lim *loudness.Limiter
	switch mode {
	case "loudness":
		m, err = loudness.New(f.SampleRate, loudness.Weights(f.Channels, 0), loudness.Options{TruePeak: true})
	case "limiter":
		lim, err = loudness.NewLimiter(f.SampleRate, f.Channels, 10, -1)
	}
	if err != nil {
		b.Fatal(err)
	}
	buf := make([]float64, 16384*f.Channels)
	var out []float64
	for {
		n, rerr := r.Read(ctx, buf)
		if n > 0 {
			switch {
			case m != nil:
				if err := m.Add(buf[:n]); err != nil {
					b.Fatal(err)
				}
			case lim != nil:
				if out, err = lim.Process(out[:0], buf[:n]); err != nil {
					b.Fatal(err)
				}
			}
		}
		if errors.Is(rerr, io.EOF) {
			break
		}
		if rerr != nil {
			b.Fatal(rerr)
		}
	}
	switch {
	case m != nil && math.IsInf(m.Result().Integrated, -1):
		b.Fatal("no loudness measured")
	case lim != nil && lim.Reduced == 0:
		b.Fatal("the limiter reduced nothing")
	}
}

// longFile writes (or finds) seconds of stereo 48 kHz 24-bit programme-
// like sound in dir: a tone with a slow envelope, a little noise and, every
// second, a 2 ms burst near full scale.
func longFile(b *testing.B, dir string, seconds int) (string, int64) {
	b.Helper()
	const rate = 48000
	frames := int64(seconds) * rate
	path := filepath.Join(dir, "long-"+strconv.Itoa(seconds)+"s.wav")
	if fi, err := os.Stat(path); err == nil && fi.Size() > frames*6 {
		return path, frames
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	f, err := wav.NewFormat(wav.FormatPCM, 2, rate, 24, false, 0)
	if err != nil {
		b.Fatal(err)
	}
	fh, err := os.Create(path + ".tmp")
	if err != nil {
		b.Fatal(err)
	}
	defer fh.Close()
	w, err := wav.Create(fh, f, nil)
	if err != nil {
		b.Fatal(err)
	}
	buf := make([]float64, 2*rate)
	seed := uint32(1)
	for s := range seconds {
		for i := range rate {
			n := s*rate + i
			seed = seed*1664525 + 1013904223
			noise := float64(seed)/(1<<32) - 0.5
			v := 0.1*math.Sin(2*math.Pi*440*float64(n)/rate)*(0.6+0.4*math.Sin(float64(n)/rate)) + 0.02*noise
			if i < rate/500 {
				v += 0.8 * noise
			}
			buf[2*i], buf[2*i+1] = v, 0.8*v
		}
		if err := w.Write(buf); err != nil {
			b.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		b.Fatal(err)
	}
	if err := fh.Close(); err != nil {
		b.Fatal(err)
	}
	if err := os.Rename(path+".tmp", path); err != nil {
		b.Fatal(err)
	}
	b.Logf("wrote %s (%d s) in %v", path, seconds, time.Since(start).Round(time.Second))
	return path, frames
}

// resetHWM resets the process's peak RSS (Linux: clear_refs 5).
func resetHWM(b *testing.B) {
	b.Helper()
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		b.Logf("peak RSS not measured: %v", err)
	}
}

// readHWM returns the process's peak RSS in bytes since resetHWM, or 0
// where /proc does not tell it.
func readHWM(b *testing.B) int64 {
	b.Helper()
	fh, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer fh.Close()
	sc := bufio.NewScanner(fh)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				b.Fatalf("VmHWM %q: %v", v, err)
			}
			return kb << 10
		}
	}
	return 0
}
