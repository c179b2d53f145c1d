package wav

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/dpe-engine/dpe/internal/clock"
)

// ramp returns frames of interleaved test samples in [-0.9, 0.9].
func ramp(frames, channels int) []float64 {
	s := make([]float64, frames*channels)
	for i := range s {
		s[i] = 0.9 * math.Sin(float64(i)*0.37)
	}
	return s
}

// writeFile writes a WAV file of format f with the samples and returns its
// path.
func writeFile(t *testing.T, f Format, bext []byte, samples []float64, rf64 bool) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "a.wav")
	fh, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	w, err := Create(fh, f, bext)
	if err != nil {
		t.Fatal(err)
	}
	w.rf64 = rf64
	if err := w.Write(samples); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// readAll reads every sample of the file at path.
func readAll(t *testing.T, path string, follow *Follow) (*Reader, []float64, error) {
	t.Helper()
	fh, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fh.Close() })
	r, err := Open(context.Background(), fh, follow)
	if err != nil {
		return nil, nil, err
	}
	var all []float64
	buf := make([]float64, 1000*r.Format().Channels)
	for {
		n, err := r.Read(context.Background(), buf)
		all = append(all, buf[:n]...)
		if err == io.EOF {
			return r, all, nil
		}
		if err != nil {
			return r, all, err
		}
	}
}

func TestRoundTrip(t *testing.T) {
	tests := []struct {
		code, bits int
		tol        float64
	}{
		{FormatPCM, 8, 1.0 / 128}, {FormatPCM, 16, 1.0 / 32768}, {FormatPCM, 24, 1.0 / (1 << 23)},
		{FormatPCM, 32, 1.0 / (1 << 31)}, {FormatFloat, 32, 1e-7}, {FormatFloat, 64, 0},
	}
	for _, tt := range tests {
		for _, ext := range []bool{false, true} {
			for _, ch := range []int{1, 2, 6} {
				for _, rf64 := range []bool{false, true} {
					f, err := NewFormat(tt.code, ch, 48000, tt.bits, ext, 0)
					if err != nil {
						t.Fatal(err)
					}
					in := ramp(4801, ch) // odd frame count: 8-bit mono needs a pad byte
					path := writeFile(t, f, nil, in, rf64)
					r, out, err := readAll(t, path, nil)
					if err != nil {
						t.Fatalf("%s ext=%v ch=%d rf64=%v: %v", f.Name(), ext, ch, rf64, err)
					}
					if len(out) != len(in) {
						t.Fatalf("%s ext=%v ch=%d: read %d samples, wrote %d", f.Name(), ext, ch, len(out), len(in))
					}
					for i := range in {
						if math.Abs(in[i]-out[i]) > tt.tol {
							t.Fatalf("%s: sample %d = %v, wrote %v", f.Name(), i, out[i], in[i])
						}
					}
					g := r.Format()
					wantContainer := "RIFF"
					if rf64 {
						wantContainer = "RF64"
					}
					if g.Code != tt.code || g.Bits != tt.bits || g.Channels != ch || g.Extensible != ext || g.Container != wantContainer {
						t.Errorf("format = %+v", g)
					}
				}
			}
		}
	}
}

func TestBext(t *testing.T) {
	want := Bext{Description: "Morning news", Originator: "dpe", OriginatorReference: "REF123",
		OriginationDate: "2026-12-06", OriginationTime: "20:00:00", TimeReference: 48000 * 3600, CodingHistory: "A=PCM,F=48000\r\n"}
	f, _ := NewFormat(FormatPCM, 2, 48000, 24, false, 0)
	for _, rf64 := range []bool{false, true} {
		r, _, err := readAll(t, writeFile(t, f, want.Marshal(), ramp(100, 2), rf64), nil)
		if err != nil {
			t.Fatal(err)
		}
		got := r.Bext()
		if got == nil {
			t.Fatal("no bext")
		}
		got.Raw = nil
		want.Version = 1
		if !equalBext(*got, want) {
			t.Errorf("bext = %+v, want %+v", *got, want)
		}
	}
}

func equalBext(a, b Bext) bool {
	return a.Description == b.Description && a.Originator == b.Originator && a.OriginatorReference == b.OriginatorReference &&
		a.OriginationDate == b.OriginationDate && a.OriginationTime == b.OriginationTime &&
		a.TimeReference == b.TimeReference && a.Version == b.Version && a.CodingHistory == b.CodingHistory && a.UMID == b.UMID
}

// TestBextAfterData: a bext chunk that follows the samples is found too.
func TestBextAfterData(t *testing.T) {
	f, _ := NewFormat(FormatPCM, 1, 48000, 16, false, 0)
	path := writeFile(t, f, nil, ramp(11, 1), false)
	x := Bext{Description: "late"}
	appendChunkToFile(t, path, "bext", x.Marshal())
	r, out, err := readAll(t, path, nil)
	if err != nil || len(out) != 11 {
		t.Fatalf("read %d samples, %v", len(out), err)
	}
	if r.Bext() == nil || r.Bext().Description != "late" {
		t.Errorf("bext = %+v", r.Bext())
	}
}

// appendChunkToFile appends a chunk to a WAV file and fixes its RIFF size.
func appendChunkToFile(t *testing.T, path, id string, body []byte) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b = appendChunk(b, id, body)
	binary.LittleEndian.PutUint32(b[4:], uint32(len(b)-8))
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestBadFiles(t *testing.T) {
	f, _ := NewFormat(FormatPCM, 2, 48000, 16, false, 0)
	good, err := os.ReadFile(writeFile(t, f, nil, ramp(100, 2), false))
	if err != nil {
		t.Fatal(err)
	}
	mut := func(fn func(b []byte) []byte) []byte { return fn(append([]byte(nil), good...)) }
	fmtAt := 12 + 8 + junkSize // "fmt " chunk header
	tests := []struct {
		name string
		data []byte
		want error
	}{
		{"empty", nil, ErrNotWAV},
		{"text", []byte("hello, this is not audio at all"), ErrNotWAV},
		{"adpcm", mut(func(b []byte) []byte { b[fmtAt+8] = 2; return b }), ErrUnsupported},
		{"12-bit float", mut(func(b []byte) []byte { b[fmtAt+8] = 3; return b }), ErrUnsupported},
		{"zero channels", mut(func(b []byte) []byte { b[fmtAt+10] = 0; return b }), ErrUnsupported},
		{"cut in data", good[:len(good)-40], ErrTruncated},
		{"cut in header", good[:fmtAt+12], ErrTruncated},
		{"no fmt", mut(func(b []byte) []byte { copy(b[fmtAt:], "fmtx"); return b }), ErrMalformed},
	}
	for _, tt := range tests {
		path := filepath.Join(t.TempDir(), "bad.wav")
		if err := os.WriteFile(path, tt.data, 0o644); err != nil {
			t.Fatal(err)
		}
		_, _, err := readAll(t, path, nil)
		if !errors.Is(err, tt.want) {
			t.Errorf("%s: err = %v, want %v", tt.name, err, tt.want)
		}
	}
}

// TestFollowGrowingFile writes a file in steps from the Wait hook of a
// reader that follows it: the header says nothing about the data size
// until the writer finishes and appends a trailing chunk. The reader must
// read every sample, none of the trailer, and stop only after the file
// has been stable for StableFor on the fake clock.
func TestFollowGrowingFile(t *testing.T) {
	f, _ := NewFormat(FormatPCM, 2, 48000, 24, false, 0)
	path := filepath.Join(t.TempDir(), "growing.wav")
	fh, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fh.Close() })
	w, err := Create(fh, f, nil)
	if err != nil {
		t.Fatal(err)
	}
	in := ramp(48000, 2)
	const pieces = 5
	piece := len(in) / pieces
	written, waits := 0, 0
	var finishedAt time.Time
	clk := clock.NewFake(time.Now()) // the file was just written
	follow := &Follow{StableFor: 5 * time.Second, Clock: clk, Wait: func(ctx context.Context) error {
		waits++
		clk.Advance(time.Second)
		switch {
		case written < pieces:
			if err := w.Write(in[written*piece : (written+1)*piece]); err != nil {
				return err
			}
			written++
		case finishedAt.IsZero():
			if err := w.Close(); err != nil {
				return err
			}
			trailer := Bext{Description: "trailer"}
			if _, err := fh.Write(appendChunk(nil, "bext", trailer.Marshal())); err != nil {
				return err
			}
			finishedAt = clk.Now()
		}
		return nil
	}}
	r, out, err := readAll(t, path, follow)
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != len(in) {
		t.Fatalf("read %d samples, the writer wrote %d", len(out), len(in))
	}
	for i := range in {
		if math.Abs(in[i]-out[i]) > 1.0/(1<<23) {
			t.Fatalf("sample %d = %v, want %v", i, out[i], in[i])
		}
	}
	if stable := clk.Now().Sub(finishedAt); stable < follow.StableFor {
		t.Errorf("stopped %v after the last write, want at least %v", stable, follow.StableFor)
	}
	if r.Bext() == nil || r.Bext().Description != "trailer" {
		t.Errorf("trailing bext = %+v", r.Bext())
	}
}

// TestFollowStableFileAtOnce: a complete file last written long before
// is stable at once; following it does not wait.
func TestFollowStableFileAtOnce(t *testing.T) {
	f, _ := NewFormat(FormatFloat, 2, 44100, 32, false, 0)
	path := writeFile(t, f, nil, ramp(1000, 2), false)
	clk := clock.NewFake(time.Now().Add(time.Hour))
	follow := &Follow{StableFor: time.Minute, Clock: clk, Wait: func(context.Context) error {
		t.Error("waited for a file written an hour ago")
		return errors.New("waited")
	}}
	_, out, err := readAll(t, path, follow)
	if err != nil || len(out) != 2000 {
		t.Fatalf("read %d samples, %v", len(out), err)
	}
}

// TestFollowCancel: a followed file that never grows is abandoned when
// the context ends.
func TestFollowCancel(t *testing.T) {
	f, _ := NewFormat(FormatPCM, 1, 48000, 16, false, 0)
	path := filepath.Join(t.TempDir(), "stuck.wav")
	fh, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fh.Close() })
	if _, err := Create(fh, f, nil); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	clk := clock.NewFake(time.Now())
	follow := &Follow{StableFor: time.Hour, Clock: clk, Wait: func(ctx context.Context) error {
		cancel()
		return ctx.Err()
	}}
	r, err := Open(ctx, fh, follow)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Read(ctx, make([]float64, 10)); !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
}

// memSource is a Source in memory, for the fuzz test.
type memSource struct{ *bytes.Reader }

func (m memSource) Stat() (os.FileInfo, error) { return memInfo(m.Size()), nil }

type memInfo int64

func (memInfo) Name() string       { return "mem" }
func (s memInfo) Size() int64      { return int64(s) }
func (memInfo) Mode() os.FileMode  { return 0o644 }
func (memInfo) ModTime() time.Time { return time.Time{} }
func (memInfo) IsDir() bool        { return false }
func (memInfo) Sys() any           { return nil }

func FuzzOpen(f *testing.F) {
	for _, c := range []struct {
		code, bits, ch int
		ext, rf64      bool
	}{{FormatPCM, 16, 2, false, false}, {FormatPCM, 24, 6, true, true}, {FormatFloat, 32, 1, false, true}, {FormatPCM, 8, 1, false, false}} {
		fm, err := NewFormat(c.code, c.ch, 48000, c.bits, c.ext, 0)
		if err != nil {
			f.Fatal(err)
		}
		var buf writeSeeker
		w, err := Create(&buf, fm, (&Bext{Description: "x"}).Marshal())
		if err != nil {
			f.Fatal(err)
		}
		w.rf64 = c.rf64
		if err := w.Write(ramp(7, c.ch)); err != nil {
			f.Fatal(err)
		}
		if err := w.Close(); err != nil {
			f.Fatal(err)
		}
		f.Add(buf.b)
	}
	f.Add([]byte("RIFF\x00\x00\x00\x00WAVE"))
	f.Fuzz(func(t *testing.T, data []byte) {
		ctx := context.Background()
		r, err := Open(ctx, memSource{bytes.NewReader(data)}, nil)
		if err != nil {
			return
		}
		dst := make([]float64, 64*r.Format().Channels)
		var total int64
		for {
			n, err := r.Read(ctx, dst)
			total += int64(n)
			if err != nil {
				break
			}
		}
		if total*int64(r.Format().SampleBytes) > int64(len(data)) {
			t.Fatalf("read %d samples from %d bytes", total, len(data))
		}
	})
}

// writeSeeker is an io.WriteSeeker in memory.
type writeSeeker struct {
	b   []byte
	pos int
}

func (w *writeSeeker) Write(p []byte) (int, error) {
	if need := w.pos + len(p); need > len(w.b) {
		w.b = append(w.b, make([]byte, need-len(w.b))...)
	}
	copy(w.b[w.pos:], p)
	w.pos += len(p)
	return len(p), nil
}

func (w *writeSeeker) Seek(off int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
		w.pos = int(off)
	case io.SeekCurrent:
		w.pos += int(off)
	case io.SeekEnd:
		w.pos = len(w.b) + int(off)
	}
	return int64(w.pos), nil
}

// TestReadConstantMemory: reading allocates nothing after the first
// call, whatever the length of the file.
func TestReadConstantMemory(t *testing.T) {
	f, _ := NewFormat(FormatPCM, 2, 48000, 24, false, 0)
	path := writeFile(t, f, nil, ramp(48000, 2), false)
	fh, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fh.Close() })
	ctx := context.Background()
	r, err := Open(ctx, fh, nil)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]float64, 2*100)
	if _, err := r.Read(ctx, buf); err != nil {
		t.Fatal(err)
	}
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := r.Read(ctx, buf); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("Read allocates %.1f times per call, want 0", allocs)
	}
}

// TestFollowWaitsForHeader: a followed file that is still empty when the
// job starts is read once its writer has put the header and samples in.
func TestFollowWaitsForHeader(t *testing.T) {
	f, _ := NewFormat(FormatFloat, 1, 48000, 32, false, 0)
	path := filepath.Join(t.TempDir(), "late.wav")
	fh, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fh.Close() })
	clk := clock.NewFake(time.Now())
	var w *Writer
	follow := &Follow{StableFor: 2 * time.Second, Clock: clk, Wait: func(ctx context.Context) error {
		clk.Advance(time.Second)
		if w == nil {
			var err error
			if w, err = Create(fh, f, nil); err != nil {
				return err
			}
			return w.Write(ramp(480, 1))
		}
		return nil
	}}
	_, out, err := readAll(t, path, follow)
	if err != nil || len(out) != 480 {
		t.Fatalf("read %d samples, %v; want 480", len(out), err)
	}
}

// TestFollowEmptyFileStaysEmpty: a file that never gets a header is not a
// WAV file once it has been stable for StableFor.
func TestFollowEmptyFileStaysEmpty(t *testing.T) {
	path := filepath.Join(t.TempDir(), "empty.wav")
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	clk := clock.NewFake(time.Now())
	follow := &Follow{StableFor: 3 * time.Second, Clock: clk, Wait: func(context.Context) error {
		clk.Advance(time.Second)
		return nil
	}}
	if _, _, err := readAll(t, path, follow); !errors.Is(err, ErrNotWAV) {
		t.Errorf("err = %v, want ErrNotWAV", err)
	}
}

// TestStream: Stream hands over the samples Read gives, in order, with
// the byte counts; an error of fn ends it with that error, the reader
// goroutine gone.
func TestStream(t *testing.T) {
	f, _ := NewFormat(FormatPCM, 2, 48000, 24, false, 0)
	want := ramp(10007, 2)
	path := writeFile(t, f, nil, want, false)
	open := func() *Reader {
		fh, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { fh.Close() })
		r, err := Open(context.Background(), fh, nil)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	r := open()
	var got []float64
	var last Block
	err := r.Stream(context.Background(), 1000, func(b Block) error {
		got = append(got, b.Samples...)
		last = b
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) || last.Read != int64(len(want)*3) || last.Known != last.Read {
		t.Fatalf("%d samples, last block %d of %d bytes; want %d samples", len(got), last.Read, last.Known, len(want))
	}
	for i := range want {
		if math.Abs(got[i]-want[i]) > 1.0/(1<<23) {
			t.Fatalf("sample %d = %v, want %v", i, got[i], want[i])
		}
	}

	stop := errors.New("enough")
	calls := 0
	err = open().Stream(context.Background(), 1000, func(Block) error {
		calls++
		return stop
	})
	if !errors.Is(err, stop) || calls != 1 {
		t.Errorf("err = %v after %d calls, want %v after 1", err, calls, stop)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := open().Stream(ctx, 1000, func(Block) error { return nil }); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: err = %v, want context.Canceled", err)
	}
}

// refSample decodes one sample the plain way, one byte at a time, as the
// reference of TestDecode.
func refSample(f Format, b []byte) float64 {
	switch {
	case f.Code == FormatFloat && f.SampleBytes == 4:
		return float64(math.Float32frombits(uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24))
	case f.Code == FormatFloat:
		var u uint64
		for i := 7; i >= 0; i-- {
			u = u<<8 | uint64(b[i])
		}
		return math.Float64frombits(u)
	case f.SampleBytes == 1:
		return (float64(b[0]) - 128) / 128
	case f.SampleBytes == 2:
		return float64(int16(uint16(b[0])|uint16(b[1])<<8)) / (1 << 15)
	case f.SampleBytes == 3:
		return float64(int32(uint32(b[0])<<8|uint32(b[1])<<16|uint32(b[2])<<24)>>8) / (1 << 23)
	default:
		return float64(int32(uint32(b[0])|uint32(b[1])<<8|uint32(b[2])<<16|uint32(b[3])<<24)) / (1 << 31)
	}
}

// TestDecode: Decode and DecodeChannel give, bit for bit, what decoding
// each sample on its own gives, for every format, for any bytes (full
// scale both ways included), any channel count and a dst shorter or
// longer than the frames.
func TestDecode(t *testing.T) {
	formats := []struct{ code, bits int }{
		{FormatPCM, 8}, {FormatPCM, 16}, {FormatPCM, 24}, {FormatPCM, 32}, {FormatFloat, 32}, {FormatFloat, 64},
	}
	seed := uint32(7)
	for _, ft := range formats {
		for _, nc := range []int{1, 2, 3, 6} {
			f, err := NewFormat(ft.code, nc, 48000, ft.bits, false, 0)
			if err != nil {
				t.Fatal(err)
			}
			for _, frames := range []int{0, 1, 2, 37} {
				raw := make([]byte, frames*f.BlockAlign)
				for i := range raw {
					seed = seed*1664525 + 1013904223
					raw[i] = byte(seed >> 24)
				}
				if frames > 1 { // full scale, negative and positive
					for i := range f.SampleBytes {
						raw[i] = 0
						raw[f.SampleBytes+i] = 0xFF
					}
					if ft.code == FormatPCM && ft.bits > 8 {
						raw[f.SampleBytes-1] = 0x80
						raw[2*f.SampleBytes-1] = 0x7F
					}
				}
				same := func(what string, got float64, i int) {
					t.Helper()
					want := refSample(f, raw[i*f.SampleBytes:])
					if math.Float64bits(got) != math.Float64bits(want) && !(math.IsNaN(got) && math.IsNaN(want)) {
						t.Fatalf("%s %d ch, %d frames: %s sample %d = %v, want %v", f.Name(), nc, frames, what, i, got, want)
					}
				}
				all := make([]float64, frames*nc)
				Decode(f, all, raw)
				for i, v := range all {
					same("Decode", v, i)
				}
				for ch := range nc {
					for _, size := range []int{frames + 3, frames / 2} {
						dst := make([]float64, size)
						n := DecodeChannel(f, dst, raw, ch)
						if n != min(size, frames) {
							t.Fatalf("%s %d ch, %d frames into %d: DecodeChannel wrote %d", f.Name(), nc, frames, size, n)
						}
						for j := range n {
							same("DecodeChannel", dst[j], j*nc+ch)
						}
					}
				}
			}
		}
	}
}

// TestStreamRaw: StreamRaw hands over the bytes of the samples in order,
// with the byte counts, and its blocks decode one channel at a time to
// what Read gives.
func TestStreamRaw(t *testing.T) {
	f, _ := NewFormat(FormatPCM, 3, 48000, 24, false, 0)
	want := ramp(10007, 3)
	path := writeFile(t, f, nil, want, false)
	_, read, err := readAll(t, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	fh, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fh.Close() })
	r, err := Open(context.Background(), fh, nil)
	if err != nil {
		t.Fatal(err)
	}
	var got []float64
	var frames int
	var read0 int64
	err = r.StreamRaw(context.Background(), 1000, func(b RawBlock) error {
		if b.Read != read0+int64(len(b.Data)) || b.Known != int64(len(want)*3) {
			t.Errorf("block of %d bytes: read %d, known %d; before it %d", len(b.Data), b.Read, b.Known, read0)
		}
		read0 = b.Read
		n := b.Frames()
		block := make([]float64, n*3)
		ch := make([]float64, n-1)
		for c := range 3 {
			// In two pieces: frames [0, 1), then [1, n).
			b.DecodeChannel(ch[:1], c, 0)
			block[c] = ch[0]
			b.DecodeChannel(ch, c, 1)
			for i, v := range ch {
				block[(i+1)*3+c] = v
			}
		}
		got = append(got, block...)
		frames += n
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if frames != 10007 || len(got) != len(read) {
		t.Fatalf("%d frames, %d samples; want 10007 frames, %d samples", frames, len(got), len(read))
	}
	for i := range read {
		if got[i] != read[i] {
			t.Fatalf("sample %d = %v, Read gives %v", i, got[i], read[i])
		}
	}
}
