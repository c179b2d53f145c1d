package waveform

import (
	"bytes"
	"errors"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestPeakFile(t *testing.T) {
	tests := []struct {
		name          string
		channels      int
		frames, block int
		wantLevels    []Level
	}{
		{"stereo, 10 blocks", 2, 1000, 100, []Level{{100, 10, HeaderSize}, {200, 5, 0}, {400, 3, 0}, {800, 2, 0}, {1600, 1, 0}}},
		{"mono, partial last block", 1, 250, 100, []Level{{100, 3, HeaderSize}, {200, 2, 0}, {400, 1, 0}}},
		{"one block", 1, 64, 64, []Level{{64, 1, HeaderSize}}},
		{"empty", 2, 0, 64, []Level{{64, 0, HeaderSize}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := os.Create(filepath.Join(t.TempDir(), "p.peaks"))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { f.Close() })
			w, err := NewWriter(f, tt.channels, 48000, tt.block)
			if err != nil {
				t.Fatal(err)
			}
			// Frame n of channel c is a value that makes each block's
			// extremes known: a ramp from -1 to 1 over the file, negated
			// on odd channels; fed in uneven pieces.
			val := func(n, c int) float64 {
				v := -1 + 2*float64(n)/float64(max(1, tt.frames-1))
				if c%2 == 1 {
					v = -v
				}
				return v
			}
			var buf []float64
			for n := 0; n < tt.frames; n++ {
				for c := 0; c < tt.channels; c++ {
					buf = append(buf, val(n, c))
				}
				if len(buf) >= 37*tt.channels {
					if err := w.Add(buf); err != nil {
						t.Fatal(err)
					}
					buf = buf[:0]
				}
			}
			if err := w.Add(buf); err != nil {
				t.Fatal(err)
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			h, err := ReadHeader(f)
			if err != nil {
				t.Fatal(err)
			}
			if h.Channels != tt.channels || h.SampleRate != 48000 || h.Frames != int64(tt.frames) || len(h.Levels) != len(tt.wantLevels) {
				t.Fatalf("header = %+v, want %d levels", h, len(tt.wantLevels))
			}
			for i, l := range h.Levels {
				if l.Block != tt.wantLevels[i].Block || l.Peaks != tt.wantLevels[i].Peaks {
					t.Errorf("level %d = %+v, want %+v", i, l, tt.wantLevels[i])
				}
				peaks, err := h.ReadLevel(f, i)
				if err != nil {
					t.Fatal(err)
				}
				for p := int64(0); p < l.Peaks; p++ {
					first, last := int(p)*l.Block, min(tt.frames, int(p+1)*l.Block)-1
					for c := 0; c < tt.channels; c++ {
						a, b := toInt16(val(first, c)), toInt16(val(last, c))
						lo, hi := min(a, b), max(a, b)
						got := peaks[(int(p)*tt.channels+c)*2:]
						if got[0] != lo || got[1] != hi {
							t.Fatalf("level %d peak %d channel %d = %d..%d, want %d..%d", i, p, c, got[0], got[1], lo, hi)
						}
					}
				}
			}
			fi, _ := f.Stat()
			var want int64 = HeaderSize
			for _, l := range h.Levels {
				want += l.Peaks * int64(4*tt.channels)
			}
			if fi.Size() != want {
				t.Errorf("file size %d, want %d", fi.Size(), want)
			}
		})
	}
}

func TestReadHeaderRefuses(t *testing.T) {
	// A header claiming a level of 2^62 peaks reads, but the level is
	// refused rather than allocated.
	huge := Header{Channels: 2, SampleRate: 48000, Frames: 1, Levels: []Level{{Block: 1, Peaks: 1 << 62, Offset: HeaderSize}}}
	h, err := ReadHeader(bytes.NewReader(huge.marshal()))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.ReadLevel(bytes.NewReader(huge.marshal()), 0); err == nil || !strings.Contains(err.Error(), "too large") {
		t.Errorf("ReadLevel of 2^62 peaks: %v", err)
	}
	for _, b := range [][]byte{nil, []byte("RIFF0000WAVE"), append([]byte(Magic), make([]byte, HeaderSize)...)} {
		if _, err := ReadHeader(bytes.NewReader(b)); !errors.Is(err, ErrFormat) {
			t.Errorf("ReadHeader(%q...) = %v, want ErrFormat", b[:min(len(b), 8)], err)
		}
	}
}

// TestConstantMemory: adding samples allocates nothing, whatever the
// length of the audio.
func TestConstantMemory(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "p.peaks"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	w, err := NewWriter(f, 2, 48000, 256)
	if err != nil {
		t.Fatal(err)
	}
	im, err := NewImage(512, 128, 2, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]float64, 2*4096)
	for i := range buf {
		buf[i] = math.Sin(float64(i))
	}
	if a := testing.AllocsPerRun(200, func() {
		if err := w.Add(buf); err != nil {
			t.Fatal(err)
		}
		im.Add(buf)
	}); a != 0 {
		t.Errorf("Add allocates %.1f times per call", a)
	}
}

func TestImage(t *testing.T) {
	const width, height, frames = 100, 80, 48000
	im, err := NewImage(width, height, 2, frames)
	if err != nil {
		t.Fatal(err)
	}
	// Left channel: full-scale sine in the first half, silence after;
	// right channel: a half-scale sine throughout.
	buf := make([]float64, 0, 2*frames)
	for n := 0; n < frames; n++ {
		s := math.Sin(2 * math.Pi * 1000 * float64(n) / 48000)
		l := s
		if n >= frames/2 {
			l = 0
		}
		buf = append(buf, l, s/2)
	}
	im.Add(buf)
	var out bytes.Buffer
	if err := im.WritePNG(&out); err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(&out)
	if err != nil {
		t.Fatal(err)
	}
	if b := img.Bounds(); b.Dx() != width || b.Dy() != height {
		t.Fatalf("image %v, want %dx%d", b, width, height)
	}
	lit := func(x, top, bottom int) int {
		n := 0
		for y := top; y < bottom; y++ {
			if r, g, b, _ := img.At(x, y).RGBA(); uint8(r>>8) == foreground.R && uint8(g>>8) == foreground.G && uint8(b>>8) == foreground.B {
				n++
			}
		}
		return n
	}
	lane := height / 2
	for _, c := range []struct {
		name       string
		x, top     int
		minN, maxN int
	}{
		{"left, loud", 10, 0, lane - 2, lane},
		{"left, silent", 90, 0, 1, 1},
		{"right, half scale", 10, lane, lane/2 - 2, lane/2 + 2},
	} {
		if n := lit(c.x, c.top, c.top+lane); n < c.minN || n > c.maxN {
			t.Errorf("%s: %d lit pixels, want %d..%d", c.name, n, c.minN, c.maxN)
		}
	}
	if _, err := NewImage(10, 1, 2, 100); err == nil || !strings.Contains(err.Error(), "bad picture") {
		t.Errorf("NewImage with a lane under a pixel: %v", err)
	}
}

// TestImageFromPeaks: the picture drawn from a peak file lights the same
// pixels as the one drawn from the samples, for audio much longer and much
// shorter than the picture is wide.
func TestImageFromPeaks(t *testing.T) {
	for _, frames := range []int{48000 * 5, 3000} {
		const width, height, block = 100, 80, 64
		buf := make([]float64, 0, 2*frames)
		for n := range frames {
			s := math.Sin(2*math.Pi*1000*float64(n)/48000) * (0.2 + 0.8*float64(n)/float64(frames))
			buf = append(buf, s, -s/2)
		}
		direct, err := NewImage(width, height, 2, int64(frames))
		if err != nil {
			t.Fatal(err)
		}
		direct.Add(buf)
		path := filepath.Join(t.TempDir(), "p.peaks")
		fh, err := os.Create(path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { fh.Close() })
		w, err := NewWriter(fh, 2, 48000, block)
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Add(buf); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		fromPeaks, err := ImageFromPeaks(fh, w.Header(), width, height)
		if err != nil {
			t.Fatal(err)
		}
		a, b := direct.Render(), fromPeaks.Render()
		diff := 0
		for i := range a.Pix {
			if a.Pix[i] != b.Pix[i] {
				diff++
			}
		}
		// Rounding to int16 and blocks straddling two columns move an
		// edge pixel here and there; where a block spans more than a
		// column (the short case), the picture has the blocks' coarser
		// resolution.
		t.Logf("%d frames: %d of %d bytes differ", frames, diff, len(a.Pix))
		if limit := len(a.Pix) / 100 * (1 + 4*block*width/frames); diff > limit {
			t.Errorf("%d frames: %d of %d bytes differ from the picture of the samples", frames, diff, len(a.Pix))
		}
	}
}

// FuzzReadHeader: any bytes either read as a header whose levels read
// back, or fail with ErrFormat; nothing panics.
func FuzzReadHeader(f *testing.F) {
	var good bytes.Buffer
	{
		path := filepath.Join(f.TempDir(), "p.peaks")
		fh, err := os.Create(path)
		if err != nil {
			f.Fatal(err)
		}
		w, err := NewWriter(fh, 2, 48000, 4)
		if err != nil {
			f.Fatal(err)
		}
		if err := w.Add([]float64{0.1, -0.1, 0.5, -0.5, 1, -1, 0, 0, 0.2, 0.3}); err != nil {
			f.Fatal(err)
		}
		if err := w.Close(); err != nil {
			f.Fatal(err)
		}
		fh.Close()
		b, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		good.Write(b)
	}
	f.Add(good.Bytes())
	f.Add([]byte(Magic))
	f.Fuzz(func(t *testing.T, b []byte) {
		r := bytes.NewReader(b)
		h, err := ReadHeader(r)
		if err != nil {
			if !errors.Is(err, ErrFormat) {
				t.Fatalf("ReadHeader: %v, want ErrFormat", err)
			}
			return
		}
		for i := range h.Levels {
			if _, err := h.ReadLevel(r, i); err != nil && !errors.Is(err, ErrFormat) && !strings.Contains(err.Error(), "too large") {
				t.Fatalf("ReadLevel(%d): %v", i, err)
			}
		}
	})
}
