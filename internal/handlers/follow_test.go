package handlers

import (
	"context"
	"encoding/binary"
	"errors"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/dpe-engine/dpe/internal/clock"
	"github.com/dpe-engine/dpe/internal/jobtype"
	"github.com/dpe-engine/dpe/internal/wav"
	"github.com/dpe-engine/dpe/internal/waveform"
)

// header is what the data size in a growing file's header says while it
// is being written.
type header int

const (
	headerZero    header = iota // 0 throughout: the writer never updates it
	headerMax                   // 0xFFFFFFFF throughout
	headerLagging               // the size of all but the last second, then the full size at the end
	headerFinal                 // 0 while writing, the full size at the end
)

func (h header) String() string {
	return [...]string{"size 0", "size 0xFFFFFFFF", "size lagging", "size written at the end"}[h]
}

// grower is a recorder: on its own goroutine it writes a WAV header, then
// appends a second of tone at a time, announcing each on wrote, and closes
// wrote when it is done. After the first second it waits until the job
// has reached the end of what is written (the job's wait hook found the
// first second in the file), so the job surely follows a file that is
// still growing. The wait hook lets the job wait for the next append, and
// only once the writer is done advances the fake clock a second a call:
// the file becomes stable after the last append and never before it.
type grower struct {
	clk     *clock.Fake
	path    string
	first   int64 // file size with the first second written
	wrote   chan struct{}
	reached chan struct{}
	closed  bool // reached is closed; used by the job's goroutine only
	done    chan error
}

// growWAV starts a grower writing seconds of tn to path (created empty at
// once, so that the job finds the file) with its header as h says.
func growWAV(t *testing.T, path string, tn tone, seconds int, h header) *grower {
	t.Helper()
	f, err := wav.NewFormat(tn.code, len(tn.dbfs), tn.rate, tn.bits, false, 0)
	if err != nil {
		t.Fatal(err)
	}
	fh, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	g := &grower{clk: clock.NewFake(time.Now()), path: path, first: 80 + int64(tn.rate*f.BlockAlign),
		wrote: make(chan struct{}, seconds), reached: make(chan struct{}), done: make(chan error, 1)}
	reached := g.reached // the writer's own copy of the channel
	stop := make(chan struct{})
	go func() {
		defer close(g.wrote)
		g.done <- func() error {
			defer fh.Close()
			w, err := wav.Create(fh, f, nil)
			if err != nil {
				return err
			}
			// Create writes a plain header: RIFF (12 bytes), JUNK (8+28),
			// fmt (8+16), then "data" and its size.
			const sizeAt = 12 + 36 + 24 + 4
			setSize := func(v uint32) error {
				_, err := fh.WriteAt(binary.LittleEndian.AppendUint32(nil, v), sizeAt)
				return err
			}
			if h == headerMax {
				if err := setSize(0xFFFFFFFF); err != nil {
					return err
				}
			}
			for s := range seconds {
				if err := w.Write(toneSamples(tn, s*tn.rate, (s+1)*tn.rate)); err != nil {
					return err
				}
				if h == headerLagging {
					if err := setSize(uint32(s * tn.rate * f.BlockAlign)); err != nil {
						return err
					}
				}
				g.wrote <- struct{}{}
				if s == 0 {
					select {
					case <-reached:
					case <-stop: // the test is over
						return errors.New("the job never waited at the end of the first second")
					}
				}
			}
			if h == headerLagging || h == headerFinal {
				return w.Close()
			}
			return nil
		}()
	}()
	t.Cleanup(func() {
		close(stop)
		if err := <-g.done; err != nil {
			t.Errorf("writer: %v", err)
		}
	})
	return g
}

// wait is the jobs' wait hook.
func (g *grower) wait(ctx context.Context) error {
	if !g.closed {
		if fi, err := os.Stat(g.path); err == nil && fi.Size() >= g.first {
			close(g.reached)
			g.closed = true
		}
	}
	select {
	case _, more := <-g.wrote:
		if !more {
			g.clk.Advance(time.Second)
		}
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// readWAV returns the samples of the WAV file at path.
func readWAV(t *testing.T, path string) (wav.Format, []float64) {
	t.Helper()
	fh, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	r, err := wav.Open(context.Background(), fh, nil)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]float64, r.DataSize()/int64(r.Format().SampleBytes))
	n, err := r.Read(context.Background(), out)
	if err != nil && n != len(out) {
		t.Fatal(err)
	}
	return r.Format(), out[:n]
}

var growHeaders = []header{headerZero, headerMax, headerLagging, headerFinal}

// TestConvertGrowingFile converts recordings still being written, natively
// (WAV to WAV) and through ffmpeg (WAV to FLAC, read back to WAV): each
// output holds every sample written, the last second included.
func TestConvertGrowingFile(t *testing.T) {
	tools := requireFFmpeg(t)
	const seconds = 4
	tn := tone{code: wav.FormatPCM, bits: 24, rate: 48000, dbfs: stereoAt(-20)}
	want := toneSamples(tn, 0, seconds*tn.rate)
	for _, h := range growHeaders {
		for _, target := range []string{"out.wav", "out.flac"} {
			t.Run(h.String()+" to "+target, func(t *testing.T) {
				b := setup(t)
				src := filepath.Join(b.root, "rec.wav")
				g := growWAV(t, src, tn, seconds, h)
				ch := &convertHandler{cfg: Config{Guard: b.guard(t), Clock: g.clk}.withDefaults(),
					spec: jobtype.Builtins()[jobtype.AudioConvert], tools: tools, wait: g.wait}
				to := filepath.Join(b.root, target)
				params := map[string]any{"from": src, "to": to, "bits": 16, "stable_for": "3s"}
				res, err := ch.Run(context.Background(), task(t, jobtype.AudioConvert, params, nil))
				if err != nil {
					t.Fatal(err)
				}
				r := res.(convertResult)
				if math.Abs(r.DurationS-seconds) > 0.001 {
					t.Errorf("duration %v s, want %d", r.DurationS, seconds)
				}
				out := to
				if target == "out.flac" {
					out = filepath.Join(b.root, "back.wav")
					back := map[string]any{"from": to, "to": out}
					if _, err := ch.Run(context.Background(), task(t, jobtype.AudioConvert, back, nil)); err != nil {
						t.Fatal(err)
					}
				}
				f, got := readWAV(t, out)
				if f.Bits != 16 || len(got) != len(want) {
					t.Fatalf("%d-bit output of %d samples, want 16-bit and %d", f.Bits, len(got), len(want))
				}
				for i := range want {
					if math.Abs(got[i]-want[i]) > 2.0/(1<<15) {
						t.Fatalf("sample %d = %v, want %v", i, got[i], want[i])
					}
				}
			})
		}
	}
}

// TestWaveformGrowingFile draws the waveform of recordings still being
// written: the peak file covers every frame, and the last second's peaks
// are the tone's.
func TestWaveformGrowingFile(t *testing.T) {
	const seconds = 4
	tn := tone{code: wav.FormatPCM, bits: 24, rate: 48000, dbfs: stereoAt(-6)}
	for _, h := range growHeaders {
		t.Run(h.String(), func(t *testing.T) {
			b := setup(t)
			src := filepath.Join(b.root, "rec.wav")
			g := growWAV(t, src, tn, seconds, h)
			wh := &waveformHandler{cfg: Config{Guard: b.guard(t), Clock: g.clk}.withDefaults(),
				spec: jobtype.Builtins()[jobtype.AudioWaveform], wait: g.wait}
			peaks, pic := filepath.Join(b.root, "rec.peaks"), filepath.Join(b.root, "rec.png")
			params := map[string]any{"path": src, "peaks": peaks, "png": pic, "width": 64, "height": 32, "stable_for": "3s"}
			res, err := wh.Run(context.Background(), task(t, jobtype.AudioWaveform, params, nil))
			if err != nil {
				t.Fatal(err)
			}
			if r := res.(waveformResult); r.Header == nil || r.Header.Frames != seconds*int64(tn.rate) {
				t.Fatalf("result %+v, want %d frames", r, seconds*tn.rate)
			}
			fh, err := os.Open(peaks)
			if err != nil {
				t.Fatal(err)
			}
			defer fh.Close()
			hd, err := waveform.ReadHeader(fh)
			if err != nil {
				t.Fatal(err)
			}
			lv, err := hd.ReadLevel(fh, 0)
			if err != nil {
				t.Fatal(err)
			}
			// The last peak of level 0, left channel: the tone at -6 dBFS.
			amp := math.Pow(10, -6.0/20) * 32767
			last := lv[len(lv)-4:]
			if hd.Frames != seconds*int64(tn.rate) || math.Abs(float64(last[1])-amp) > amp*0.01 || math.Abs(float64(last[0])+amp) > amp*0.01 {
				t.Errorf("%d frames, last peak %v; want %d frames and ±%.0f", hd.Frames, last, seconds*tn.rate, amp)
			}
			if fi, err := os.Stat(pic); err != nil || fi.Size() == 0 {
				t.Errorf("png: %v", err)
			}
		})
	}
}
