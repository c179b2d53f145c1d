package wav

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"time"

	"github.com/dpe-engine/dpe/internal/clock"
)

// Source is what a Reader reads: an *os.File does.
type Source interface {
	io.ReaderAt
	Stat() (fs.FileInfo, error)
}

// Follow makes a Reader follow a growing file: at the end of what has been
// written it waits for more, and ends only when neither the file's size
// nor the data size in its header has changed for StableFor.
type Follow struct {
	StableFor time.Duration
	// Clock tells when StableFor has passed; nil is the system clock.
	Clock clock.Clock
	// Wait pauses between looks at the file. It returns ctx's error when
	// ctx ends. Tests pass one that advances a fake clock (and may write
	// to the file); nil waits PollEvery on a real timer.
	Wait func(ctx context.Context) error
	// PollEvery is the pause of the default Wait; 0 is StableFor/5,
	// between 10 ms and 1 s.
	PollEvery time.Duration
}

// Limits of the chunks read into memory.
const (
	maxFmt  = 4 << 10
	maxBext = 1 << 20
)

// Reader streams the samples of a WAV file.
type Reader struct {
	src    Source
	follow *Follow
	format Format
	bext   *Bext

	dataOff int64
	// sizeAt is the file offset of the declared data size (uint32 for
	// RIFF, the ds64 uint64 for RF64); declared is its value, -1 when it
	// says nothing (0xFFFFFFFF, or 0 while following).
	sizeAt   int64
	wide     bool
	declared int64
	end      int64 // end of the readable data so far
	pos      int64
	done     bool
	buf      []byte

	lastSize     int64
	lastDeclared int64
	lastChange   time.Time
}

// Open reads the header of a WAV file up to its data chunk. Without
// follow, the header must be complete and the data chunk must fit in the
// file (ErrTruncated otherwise), and a bext chunk after the data is found
// at once. With follow, Open waits for a header still being written.
func Open(ctx context.Context, src Source, follow *Follow) (*Reader, error) {
	r := &Reader{src: src, follow: follow, declared: -1}
	if follow != nil {
		if follow.Clock == nil {
			f := *follow
			f.Clock = clock.Real{}
			r.follow = &f
		}
		fi, err := src.Stat()
		if err != nil {
			return nil, err
		}
		r.lastSize, r.lastChange = fi.Size(), r.follow.Clock.Now()
		if mt := fi.ModTime(); mt.Before(r.lastChange) {
			r.lastChange = mt
		}
	}
	if err := r.readHeader(ctx); err != nil {
		return nil, err
	}
	r.pos = r.dataOff
	if follow == nil {
		size, err := r.size()
		if err != nil {
			return nil, err
		}
		if r.declared < 0 {
			r.end = size
		} else {
			r.end = r.dataOff + r.declared
			if r.end > size {
				return nil, fmt.Errorf("%w: data chunk declares %d bytes, the file holds %d of them", ErrTruncated, r.declared, size-r.dataOff)
			}
		}
		r.end = r.frameEnd(r.end)
		if r.bext == nil {
			r.scanTrailer(ctx, r.dataOff+r.declaredOr(r.end-r.dataOff))
		}
	} else {
		r.lastDeclared, r.end = r.declared, r.dataOff
	}
	return r, nil
}

// Format returns the format of the samples.
func (r *Reader) Format() Format { return r.format }

// Bext returns the bext chunk, nil when the file has none. A bext chunk
// after the data of a followed file is known once Read returned io.EOF.
func (r *Reader) Bext() *Bext { return r.bext }

// DataOffset is the file offset of the first sample.
func (r *Reader) DataOffset() int64 { return r.dataOff }

// Frames returns the frames read so far.
func (r *Reader) Frames() int64 { return (r.pos - r.dataOff) / int64(r.format.BlockAlign) }

// BytesRead returns the bytes of samples read so far.
func (r *Reader) BytesRead() int64 { return r.pos - r.dataOff }

// DataSize returns the size of the data in bytes as far as known: the
// whole data chunk without follow, what has been found so far with it.
func (r *Reader) DataSize() int64 { return r.end - r.dataOff }

func (r *Reader) declaredOr(v int64) int64 {
	if r.declared >= 0 {
		return r.declared
	}
	return v
}

// frameEnd rounds a data end down to whole frames.
func (r *Reader) frameEnd(end int64) int64 {
	ba := int64(r.format.BlockAlign)
	return r.dataOff + (end-r.dataOff)/ba*ba
}

func (r *Reader) size() (int64, error) {
	fi, err := r.src.Stat()
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}

// readAt fills p from off. At the end of the file it fails with
// ErrTruncated, or, when following, waits until the bytes are there or
// the file is stable without them.
func (r *Reader) readAt(ctx context.Context, p []byte, off int64, what string) error {
	for {
		n, err := r.src.ReadAt(p, off)
		if n == len(p) {
			return nil
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return err
		}
		if r.follow == nil {
			return fmt.Errorf("%w: %s cut off at byte %d", ErrTruncated, what, off+int64(n))
		}
		stable, err := r.await(ctx)
		if err != nil {
			return err
		}
		if stable {
			return fmt.Errorf("%w: %s cut off at byte %d (the file stopped growing)", ErrTruncated, what, off+int64(n))
		}
	}
}

// await is called at the end of a followed file: it reports whether the
// file has been stable for StableFor, else waits once and returns.
func (r *Reader) await(ctx context.Context) (stable bool, err error) {
	size, err := r.size()
	if err != nil {
		return false, err
	}
	decl := r.readDeclared()
	now := r.follow.Clock.Now()
	if size != r.lastSize || decl != r.lastDeclared {
		r.lastSize, r.lastDeclared, r.lastChange = size, decl, now
		return false, nil
	}
	if now.Sub(r.lastChange) >= r.follow.StableFor {
		return true, nil
	}
	if r.follow.Wait != nil {
		return false, r.follow.Wait(ctx)
	}
	d := r.follow.PollEvery
	if d <= 0 {
		d = min(max(r.follow.StableFor/5, 10*time.Millisecond), time.Second)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false, ctx.Err()
	case <-t.C:
		return false, nil
	}
}

// readDeclared re-reads the declared data size of a followed file; -1
// when it says nothing yet or is not there.
func (r *Reader) readDeclared() int64 {
	if r.sizeAt == 0 {
		return -1
	}
	var b [8]byte
	n := 4
	if r.wide {
		n = 8
	}
	if m, _ := r.src.ReadAt(b[:n], r.sizeAt); m != n {
		return -1
	}
	var v int64
	if r.wide {
		v = int64(binary.LittleEndian.Uint64(b[:]))
	} else {
		v = int64(binary.LittleEndian.Uint32(b[:]))
		if v == 0xFFFFFFFF {
			v = -1
		}
	}
	if v < 0 || (v == 0 && r.follow != nil) {
		return -1
	}
	return v
}

// readHeader parses the chunks up to the data chunk.
func (r *Reader) readHeader(ctx context.Context) error {
	le := binary.LittleEndian
	var h [12]byte
	if err := r.readAt(ctx, h[:], 0, "RIFF header"); err != nil {
		if errors.Is(err, ErrTruncated) {
			return fmt.Errorf("%w: %d-byte header missing: %w", ErrNotWAV, len(h), err)
		}
		return err
	}
	container := string(h[0:4])
	switch {
	case container != "RIFF" && container != "RF64" && container != "BW64", string(h[8:12]) != "WAVE":
		return fmt.Errorf("%w: starts with %q", ErrNotWAV, h[:12])
	}
	rf64 := container != "RIFF"
	var ds64Data int64 = -1
	haveFmt := false
	for off := int64(12); ; {
		if err := ctx.Err(); err != nil {
			return err
		}
		var ch [8]byte
		if err := r.readAt(ctx, ch[:], off, "chunk header"); err != nil {
			if errors.Is(err, ErrTruncated) {
				return fmt.Errorf("%w: no data chunk", err)
			}
			return err
		}
		id, size := string(ch[0:4]), int64(le.Uint32(ch[4:]))
		body := off + 8
		switch id {
		case "ds64":
			if !rf64 || size < 24 {
				return fmt.Errorf("%w: ds64 chunk of %d bytes in a %s file", ErrMalformed, size, container)
			}
			var b [24]byte
			if err := r.readAt(ctx, b[:], body, "ds64 chunk"); err != nil {
				return err
			}
			ds64Data = int64(le.Uint64(b[8:]))
			if ds64Data < 0 {
				return fmt.Errorf("%w: ds64 data size %d", ErrMalformed, uint64(ds64Data))
			}
			r.sizeAt, r.wide = body+8, true
		case "fmt ":
			if size > maxFmt {
				return fmt.Errorf("%w: fmt chunk of %d bytes", ErrMalformed, size)
			}
			b := make([]byte, size)
			if err := r.readAt(ctx, b, body, "fmt chunk"); err != nil {
				return err
			}
			f, err := parseFmt(container, b)
			if err != nil {
				return err
			}
			r.format, haveFmt = f, true
		case "bext":
			if size > maxBext {
				return fmt.Errorf("%w: bext chunk of %d bytes", ErrMalformed, size)
			}
			b := make([]byte, size)
			if err := r.readAt(ctx, b, body, "bext chunk"); err != nil {
				return err
			}
			x, err := parseBext(b)
			if err != nil {
				return err
			}
			r.bext = x
		case "data":
			if !haveFmt {
				return fmt.Errorf("%w: data chunk before the fmt chunk", ErrMalformed)
			}
			r.dataOff = body
			switch {
			case rf64 && size == 0xFFFFFFFF:
				if ds64Data < 0 {
					return fmt.Errorf("%w: %s data chunk without a ds64 chunk", ErrMalformed, container)
				}
				r.declared = ds64Data
			case size == 0xFFFFFFFF:
				r.declared = -1
				r.sizeAt, r.wide = off+4, false
			default:
				r.declared = size
				r.sizeAt, r.wide = off+4, false
			}
			if r.follow != nil && r.declared == 0 {
				r.declared = -1
			}
			return nil
		}
		off = body + size + size&1
	}
}

// scanTrailer looks for a bext chunk after the data chunk, which some
// writers put at the end. Anything unreadable there is ignored: the
// samples are what matter.
func (r *Reader) scanTrailer(ctx context.Context, dataEnd int64) {
	le := binary.LittleEndian
	saved := r.follow
	r.follow = nil // no waiting here
	defer func() { r.follow = saved }()
	for off, i := dataEnd+dataEnd&1, 0; i < 64; i++ {
		var ch [8]byte
		if r.readAt(ctx, ch[:], off, "chunk header") != nil {
			return
		}
		size := int64(le.Uint32(ch[4:]))
		if string(ch[0:4]) == "bext" && size <= maxBext {
			b := make([]byte, size)
			if r.readAt(ctx, b, off+8, "bext chunk") == nil {
				if x, err := parseBext(b); err == nil {
					r.bext = x
				}
			}
			return
		}
		off += 8 + size + size&1
	}
}

// Read decodes whole frames into dst as interleaved samples, full scale
// ±1.0, and returns how many samples it wrote. It returns io.EOF at the end
// of the data (for a followed file: once the file is stable).
func (r *Reader) Read(ctx context.Context, dst []float64) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	n, err := r.ReadRaw(ctx, len(dst)/r.format.Channels)
	if n == 0 {
		return 0, err
	}
	Decode(r.format, dst, r.buf[:n])
	return n / r.format.SampleBytes, err
}

// ReadRaw reads up to frames whole frames of undecoded sample bytes into
// the reader's buffer (RawBuffer) and returns their length. It returns
// io.EOF at the end of the data.
func (r *Reader) ReadRaw(ctx context.Context, frames int) (int, error) {
	want := max(frames, 0) * r.format.BlockAlign
	if cap(r.buf) < want {
		r.buf = make([]byte, want)
	}
	return r.readRaw(ctx, r.buf[:want])
}

// readRaw reads whole frames of undecoded sample bytes into buf, up to
// len(buf) rounded down to whole frames, and returns their length. It
// returns io.EOF at the end of the data.
func (r *Reader) readRaw(ctx context.Context, buf []byte) (int, error) {
	ba := int64(r.format.BlockAlign)
	for {
		if r.done {
			return 0, io.EOF
		}
		want := min(int64(len(buf))/ba*ba, r.end-r.pos)
		if want > 0 {
			n, err := r.src.ReadAt(buf[:want], r.pos)
			n -= n % int(ba)
			r.pos += int64(n)
			if n > 0 {
				return n, nil
			}
			if err != nil && !errors.Is(err, io.EOF) {
				return 0, err
			}
			if r.follow == nil {
				return 0, fmt.Errorf("%w: the data ends at byte %d", ErrTruncated, r.pos)
			}
		}
		if err := r.advance(ctx); err != nil {
			return 0, err
		}
	}
}

// RawBuffer returns the bytes of the last ReadRaw.
func (r *Reader) RawBuffer() []byte { return r.buf }

// advance is called with all known data read: without follow it ends
// the data; with follow it finds more data, or waits, or ends the data
// once the file is stable.
func (r *Reader) advance(ctx context.Context) error {
	if r.follow == nil {
		r.done = true
		return nil
	}
	size, err := r.size()
	if err != nil {
		return err
	}
	decl := r.readDeclared()
	end := size
	if decl >= 0 {
		end = min(end, r.dataOff+decl)
	}
	if end = r.frameEnd(end); end > r.end {
		r.end = end
		return nil
	}
	stable, err := r.await(ctx)
	if err != nil {
		return err
	}
	if stable {
		r.done = true
		r.declared = decl
		if r.bext == nil {
			r.scanTrailer(ctx, r.end)
		}
	}
	return nil
}
