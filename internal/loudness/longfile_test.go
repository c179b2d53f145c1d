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
//	read            the file's sample bytes read, nothing more: the baseline
//	decode          the WAV reader, decoding to float64
//	loudness        the meter with true peak, as audio.loudness: the file
//	                read on a goroutine of its own (wav.Reader.StreamRaw),
//	                each channel decoded by the meter as it measures it
//	limiter         decode + gain + true-peak limiter (the extra pass of
//	                audio.normalize with limiter: true)
//	ffmpeg-ebur128  ffmpeg -af ebur128=peak=true, when ffmpeg is installed
//
// Each reports MB/s of WAV data, × real time, the CPU seconds of this
// process (or of ffmpeg) and its peak RSS (VmHWM, reset through
// /proc/self/clear_refs; ffmpeg's own maximum RSS). Then "ratios" reports
// loudness against read, decode and ffmpeg (MB/s over MB/s, one run), and
// "rss" the peak RSS of a process that only measures (this test binary
// run again as a helper), for the file and for one a sixth as long: the
// meter's memory does not grow with the length. Run it alone:
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
	speed := map[string]float64{} // MB/s by mode
	report := func(b *testing.B, mode string, cpu time.Duration, rss int64) {
		el := b.Elapsed().Seconds() / float64(b.N)
		speed[mode] = samples * 3 / el / 1e6
		b.ReportMetric(samples/el, "samples/s")
		b.ReportMetric(speed[mode], "MB/s")
		b.ReportMetric(float64(seconds)/el, "x_realtime")
		b.ReportMetric(cpu.Seconds()/float64(b.N), "cpu_s/op")
		if rss > 0 {
			b.ReportMetric(float64(rss)/(1<<20), "peakRSS_MiB")
		}
	}
	for _, mode := range []string{"read", "decode", "loudness", "limiter"} {
		b.Run(mode, func(b *testing.B) {
			resetHWM(b)
			cpu0 := selfCPU()
			for b.Loop() {
				process(b, path, mode)
			}
			report(b, mode, selfCPU()-cpu0, readHWM(b))
		})
	}
	if ff, err := exec.LookPath("ffmpeg"); err == nil {
		b.Run("ffmpeg-ebur128", func(b *testing.B) {
			var rss int64
			var cpu time.Duration
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
				cpu += cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
			}
			report(b, "ffmpeg", cpu, rss)
		})
	}
	b.Run("ratios", func(b *testing.B) {
		for b.Loop() {
		}
		for _, base := range []string{"read", "decode", "ffmpeg"} {
			if speed[base] > 0 {
				b.ReportMetric(speed["loudness"]/speed[base], "loudness/"+base)
			}
		}
	})
	b.Run("rss", func(b *testing.B) {
		short, _ := longFile(b, dir, max(1, seconds/6))
		var long, shrt int64
		for b.Loop() {
			long, shrt = helperRSS(b, path), helperRSS(b, short)
		}
		b.ReportMetric(float64(long)/(1<<20), "MiB_"+strconv.Itoa(seconds)+"s")
		b.ReportMetric(float64(shrt)/(1<<20), "MiB_"+strconv.Itoa(max(1, seconds/6))+"s")
	})
}

// helperEnv names the file the test binary, run as a helper, measures.
const helperEnv = "DPE_LOUDNESS_HELPER_FILE"

// TestMeasureHelper is not a test: run by helperRSS with helperEnv set,
// it measures one file the way audio.loudness does and exits, so that the
// process's peak RSS is the meter's.
func TestMeasureHelper(t *testing.T) {
	path := os.Getenv(helperEnv)
	if path == "" {
		t.Skip("a helper process of BenchmarkLongFile")
	}
	process(t, path, "loudness")
}

// helperRSS runs the measurement of path in a process of its own and
// returns its peak RSS.
func helperRSS(b *testing.B, path string) int64 {
	b.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestMeasureHelper$", "-test.count=1")
	cmd.Env = append(os.Environ(), helperEnv+"="+path)
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("helper: %v\n%s", err, out)
	}
	return maxRSS(cmd.ProcessState)
}

// process reads the file at path once as mode says.
func process(tb testing.TB, path, mode string) {
	tb.Helper()
	ctx := context.Background()
	fh, err := os.Open(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer fh.Close()
	r, err := wav.Open(ctx, fh, nil)
	if err != nil {
		tb.Fatal(err)
	}
	f := r.Format()
	if mode == "read" {
		for {
			_, err := r.ReadRaw(ctx, 16384)
			if errors.Is(err, io.EOF) {
				return
			}
			if err != nil {
				tb.Fatal(err)
			}
		}
	}
	var m *loudness.Meter
	var lim *loudness.Limiter
	switch mode {
	case "loudness":
		m, err = loudness.New(f.SampleRate, loudness.Weights(f.Channels, 0), loudness.Options{TruePeak: true})
	case "limiter":
		lim, err = loudness.NewLimiter(f.SampleRate, f.Channels, 10, -1)
	}
	if err != nil {
		tb.Fatal(err)
	}
	if m != nil { // as audio.loudness does
		err := r.StreamRaw(ctx, 32768, func(b wav.RawBlock) error { return m.AddChannels(b.Frames(), b.DecodeChannel) })
		if err != nil {
			tb.Fatal(err)
		}
		if math.IsInf(m.Result().Integrated, -1) {
			tb.Fatal("no loudness measured")
		}
		return
	}
	buf := make([]float64, 16384*f.Channels)
	var out []float64
	for {
		n, rerr := r.Read(ctx, buf)
		if n > 0 && lim != nil {
			if out, err = lim.Process(out[:0], buf[:n]); err != nil {
				tb.Fatal(err)
			}
		}
		if errors.Is(rerr, io.EOF) {
			break
		}
		if rerr != nil {
			tb.Fatal(rerr)
		}
	}
	if lim != nil && lim.Reduced == 0 {
		tb.Fatal("the limiter reduced nothing")
	}
}

// longFile writes (or finds) seconds of stereo 48 kHz 24-bit programme-
// like sound in dir: a tone with a slow envelope, a little noise and, every
// second, a 2 ms burst near full scale.
func longFile(b testing.TB, dir string, seconds int) (string, int64) {
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
	writeProgramme(b, path+".tmp", seconds, func(n int, noise float64) float64 {
		v := 0.1*math.Sin(2*math.Pi*440*float64(n)/rate)*(0.6+0.4*math.Sin(float64(n)/rate)) + 0.02*noise
		if n%rate < rate/500 {
			v += 0.8 * noise // a 2 ms burst at the start of every second
		}
		return v
	})
	if err := os.Rename(path+".tmp", path); err != nil {
		b.Fatal(err)
	}
	b.Logf("wrote %s (%d s) in %v", path, seconds, time.Since(start).Round(time.Second))
	return path, frames
}

// resetHWM resets the process's peak RSS (Linux: clear_refs 5).
func resetHWM(b testing.TB) {
	b.Helper()
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		b.Logf("peak RSS not measured: %v", err)
	}
}

// readHWM returns the process's peak RSS in bytes since resetHWM, or 0
// where /proc does not tell it.
func readHWM(b testing.TB) int64 {
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
