package wav

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
)

// NewFormat returns the Format (with its fmt chunk body) of samples with
// the given code (FormatPCM or FormatFloat), channels, rate and bits. An
// extensible format carries mask as its channel mask.
func NewFormat(code, channels, rate, bits int, extensible bool, mask uint32) (Format, error) {
	le := binary.LittleEndian
	sb := (bits + 7) / 8
	n := 16
	if extensible {
		n = 40
	}
	b := make([]byte, n)
	tag := code
	if extensible {
		tag = formatExtensible
	}
	le.PutUint16(b[0:], uint16(tag))
	le.PutUint16(b[2:], uint16(channels))
	le.PutUint32(b[4:], uint32(rate))
	le.PutUint32(b[8:], uint32(rate*channels*sb))
	le.PutUint16(b[12:], uint16(channels*sb))
	le.PutUint16(b[14:], uint16(8*sb))
	if extensible {
		le.PutUint16(b[16:], 22)
		le.PutUint16(b[18:], uint16(bits))
		le.PutUint32(b[20:], mask)
		le.PutUint16(b[24:], uint16(code))
		copy(b[26:], "\x00\x00\x00\x00\x10\x00\x80\x00\x00\xaa\x00\x38\x9b\x71")
	} else if bits != 8*sb {
		le.PutUint16(b[14:], uint16(bits))
	}
	return parseFmt("RIFF", b)
}

// junkSize is the JUNK chunk that a Writer reserves after the RIFF header,
// to turn into a ds64 chunk should the file outgrow 4 GiB (EBU Tech 3306).
const junkSize = 28

// Writer writes a WAV file of one format: RIFF while it fits in 4 GiB,
// RF64 beyond.
type Writer struct {
	w       io.WriteSeeker
	f       Format
	dataAt  int64 // offset of the data chunk's size field
	data    int64
	buf     []byte
	Clipped int64 // samples clipped by Write
	rf64    bool  // write RF64 whatever the size (tests)
}

// Create writes the header of a WAV file of format f, with a bext chunk
// of body bext when it is not nil, and returns the Writer of its samples.
func Create(w io.WriteSeeker, f Format, bext []byte) (*Writer, error) {
	le := binary.LittleEndian
	var h []byte
	h = append(h, "RIFF\x00\x00\x00\x00WAVE"...)
	h = append(h, "JUNK"...)
	h = le.AppendUint32(h, junkSize)
	h = append(h, make([]byte, junkSize)...)
	h = appendChunk(h, "fmt ", f.Raw)
	if bext != nil {
		h = appendChunk(h, "bext", bext)
	}
	h = append(h, "data\x00\x00\x00\x00"...)
	if _, err := w.Write(h); err != nil {
		return nil, err
	}
	return &Writer{w: w, f: f, dataAt: int64(len(h) - 4)}, nil
}

func appendChunk(h []byte, id string, body []byte) []byte {
	h = append(h, id...)
	h = binary.LittleEndian.AppendUint32(h, uint32(len(body)))
	h = append(h, body...)
	if len(body)%2 == 1 {
		h = append(h, 0)
	}
	return h
}

// WriteRaw writes sample bytes as they are; they must be whole frames.
func (w *Writer) WriteRaw(p []byte) error {
	if len(p)%w.f.BlockAlign != 0 {
		return fmt.Errorf("wav: %d bytes are not whole frames of %d", len(p), w.f.BlockAlign)
	}
	n, err := w.w.Write(p)
	w.data += int64(n)
	return err
}

// Write encodes interleaved samples (full scale ±1.0) and writes them.
// Integer samples are rounded and clipped; Clipped counts the clipped ones.
func (w *Writer) Write(samples []float64) error {
	n := len(samples) * w.f.SampleBytes
	if cap(w.buf) < n {
		w.buf = make([]byte, n)
	}
	w.Clipped += Encode(w.f, w.buf[:n], samples)
	return w.WriteRaw(w.buf[:n])
}

// Close pads the data chunk, writes the sizes into the header (turning the
// file into RF64 when it outgrew RIFF) and leaves w at the end. It does
// not close the underlying file.
func (w *Writer) Close() error {
	le := binary.LittleEndian
	if w.data%2 == 1 {
		if _, err := w.w.Write([]byte{0}); err != nil {
			return err
		}
	}
	end, err := w.w.Seek(0, io.SeekCurrent)
	if err != nil {
		return err
	}
	riff := end - 8
	patch := func(off int64, b []byte) error {
		if _, err := w.w.Seek(off, io.SeekStart); err != nil {
			return err
		}
		_, err := w.w.Write(b)
		return err
	}
	if !w.rf64 && riff <= math.MaxUint32 && w.data < math.MaxUint32 {
		err = errors.Join(patch(4, le.AppendUint32(nil, uint32(riff))),
			patch(w.dataAt, le.AppendUint32(nil, uint32(w.data))))
	} else {
		ds := []byte("ds64")
		ds = le.AppendUint32(ds, junkSize)
		ds = le.AppendUint64(ds, uint64(riff))
		ds = le.AppendUint64(ds, uint64(w.data))
		ds = le.AppendUint64(ds, uint64(w.data/int64(w.f.BlockAlign)))
		ds = le.AppendUint32(ds, 0)
		err = errors.Join(patch(0, []byte("RF64\xff\xff\xff\xff")), patch(12, ds),
			patch(w.dataAt, []byte{0xff, 0xff, 0xff, 0xff}))
	}
	if err != nil {
		return err
	}
	_, err = w.w.Seek(end, io.SeekStart)
	return err
}

// Encode converts samples into raw bytes of format f and returns how many
// integer samples it clipped.
func Encode(f Format, raw []byte, samples []float64) (clipped int64) {
	le := binary.LittleEndian
	if f.Code == FormatFloat {
		if f.SampleBytes == 4 {
			for i, v := range samples {
				le.PutUint32(raw[4*i:], math.Float32bits(float32(v)))
			}
		} else {
			for i, v := range samples {
				le.PutUint64(raw[8*i:], math.Float64bits(v))
			}
		}
		return 0
	}
	scale := math.Ldexp(1, 8*f.SampleBytes-1)
	hi, lo := scale-1, -scale
	for i, v := range samples {
		x := math.Round(v * scale)
		if x > hi {
			x, clipped = hi, clipped+1
		} else if x < lo {
			x, clipped = lo, clipped+1
		}
		n := int32(x)
		switch f.SampleBytes {
		case 1:
			raw[i] = byte(n + 128)
		case 2:
			le.PutUint16(raw[2*i:], uint16(n))
		case 3:
			raw[3*i], raw[3*i+1], raw[3*i+2] = byte(n), byte(n>>8), byte(n>>16)
		default:
			le.PutUint32(raw[4*i:], uint32(n))
		}
	}
	return clipped
}
