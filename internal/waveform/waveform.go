// Package waveform makes waveform overviews of audio: a compact peak file
// with the minimum and maximum of each block of frames at several zoom
// levels, and a PNG rendering. Both are built from a stream of samples in
// constant memory: the peak file's coarser levels are computed from the
// finer ones read back from the file being written.
//
// # Peak file format (DPEPEAK1)
//
// All integers are little-endian. The header has a fixed size of
// HeaderSize bytes:
//
//	offset size
//	0      8    magic "DPEPEAK1"
//	8      2    channels
//	10     2    number of levels L (1..MaxLevels)
//	12     4    sample rate (Hz)
//	16     8    frames of audio
//	24     8    reserved, zero
//	32     L×24 level table; entry i:
//	            4  frames per peak (the block; doubles from level to level)
//	            4  reserved, zero
//	            8  number of peaks
//	            8  byte offset of the level's peaks in the file
//
// followed, at each level's offset, by its peaks: per peak and channel the
// minimum then the maximum sample as int16, full scale ±32767. A peak
// covers its block of frames; the last peak of a level may cover fewer.
// Level 0 has the finest block; each next level has half as many peaks,
// until one has a single peak.
package waveform

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
)

// Format constants.
const (
	Magic     = "DPEPEAK1"
	MaxLevels = 32
	// HeaderSize is the fixed size of the header with its level table.
	HeaderSize = 32 + MaxLevels*24
)

// ErrFormat is the error of a file that is not a valid peak file.
var ErrFormat = errors.New("not a DPEPEAK1 peak file")

// File is what a Writer writes to and reads its finer levels back from:
// an *os.File.
type File interface {
	io.Writer
	io.Seeker
	io.ReaderAt
}

// Level describes one zoom level of a peak file.
type Level struct {
	Block  int   `json:"frames_per_peak"`
	Peaks  int64 `json:"peaks"`
	Offset int64 `json:"-"`
}

// Header is the header of a peak file.
type Header struct {
	Channels   int     `json:"channels"`
	SampleRate int     `json:"sample_rate"`
	Frames     int64   `json:"frames"`
	Levels     []Level `json:"levels"`
}

// Writer writes a peak file.
type Writer struct {
	f        File
	bw       *bufio.Writer
	h        Header
	block    int
	lo, hi   []float64 // the open peak, per channel
	inBlock  int       // frames in the open peak
	peaks    int64
	rec      []byte // one peak of all channels, encoded
	writeErr error
}

// NewWriter starts a peak file on f (at its start) for audio of channels
// and rate, with block frames per peak at level 0.
func NewWriter(f File, channels, rate, block int) (*Writer, error) {
	if channels < 1 || channels > 64 || block < 1 || rate < 1 {
		return nil, fmt.Errorf("waveform: bad channels %d, rate %d or block %d", channels, rate, block)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	w := &Writer{f: f, bw: bufio.NewWriterSize(f, 64<<10), block: block,
		h:  Header{Channels: channels, SampleRate: rate},
		lo: make([]float64, channels), hi: make([]float64, channels), rec: make([]byte, 4*channels)}
	w.reset()
	if _, err := w.bw.Write(make([]byte, HeaderSize)); err != nil {
		return nil, err
	}
	return w, nil
}

func (w *Writer) reset() {
	for c := range w.lo {
		w.lo[c], w.hi[c] = math.Inf(1), math.Inf(-1)
	}
	w.inBlock = 0
}

// Add takes interleaved samples (full scale ±1) of whole frames.
func (w *Writer) Add(samples []float64) error {
	ch := w.h.Channels
	for i := 0; i+ch <= len(samples); i += ch {
		for c := 0; c < ch; c++ {
			v := samples[i+c]
			w.lo[c] = min(w.lo[c], v)
			w.hi[c] = max(w.hi[c], v)
		}
		w.inBlock++
		w.h.Frames++
		if w.inBlock == w.block {
			w.emit()
		}
	}
	return w.writeErr
}

// emit writes the open peak.
func (w *Writer) emit() {
	for c := range w.lo {
		binary.LittleEndian.PutUint16(w.rec[4*c:], uint16(toInt16(w.lo[c])))
		binary.LittleEndian.PutUint16(w.rec[4*c+2:], uint16(toInt16(w.hi[c])))
	}
	if _, err := w.bw.Write(w.rec); err != nil && w.writeErr == nil {
		w.writeErr = err
	}
	w.peaks++
	w.reset()
}

// toInt16 scales a sample to int16 full scale, clipping.
func toInt16(v float64) int16 {
	return int16(max(-32767, min(32767, math.Round(v*32767))))
}

// Close ends level 0, computes the coarser levels and writes the header.
// It does not close f.
func (w *Writer) Close() error {
	if w.inBlock > 0 {
		w.emit()
	}
	if err := w.bw.Flush(); err != nil {
		return err
	}
	if w.writeErr != nil {
		return w.writeErr
	}
	rec := int64(4 * w.h.Channels)
	lv := Level{Block: w.block, Peaks: w.peaks, Offset: HeaderSize}
	w.h.Levels = []Level{lv}
	for lv.Peaks > 1 && len(w.h.Levels) < MaxLevels {
		next := Level{Block: 2 * lv.Block, Peaks: (lv.Peaks + 1) / 2, Offset: lv.Offset + lv.Peaks*rec}
		if next.Block > math.MaxInt32 {
			break
		}
		if err := w.halve(lv, rec); err != nil {
			return err
		}
		w.h.Levels = append(w.h.Levels, next)
		lv = next
	}
	if err := w.bw.Flush(); err != nil {
		return err
	}
	if _, err := w.f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	if _, err := w.f.Write(w.h.marshal()); err != nil {
		return err
	}
	_, err := w.f.Seek(0, io.SeekEnd)
	return err
}

// halve reads level lv back and appends the level of twice its block,
// merging pairs of peaks.
func (w *Writer) halve(lv Level, rec int64) error {
	ch := w.h.Channels
	br := bufio.NewReaderSize(io.NewSectionReader(w.f, lv.Offset, lv.Peaks*rec), 64<<10)
	a, b := make([]byte, rec), make([]byte, rec)
	le := binary.LittleEndian
	for i := int64(0); i < lv.Peaks; i += 2 {
		if _, err := io.ReadFull(br, a); err != nil {
			return fmt.Errorf("waveform: read back level: %w", err)
		}
		if i+1 < lv.Peaks {
			if _, err := io.ReadFull(br, b); err != nil {
				return fmt.Errorf("waveform: read back level: %w", err)
			}
			for c := 0; c < ch; c++ {
				lo := min(int16(le.Uint16(a[4*c:])), int16(le.Uint16(b[4*c:])))
				hi := max(int16(le.Uint16(a[4*c+2:])), int16(le.Uint16(b[4*c+2:])))
				le.PutUint16(a[4*c:], uint16(lo))
				le.PutUint16(a[4*c+2:], uint16(hi))
			}
		}
		if _, err := w.bw.Write(a); err != nil {
			return err
		}
	}
	return w.bw.Flush()
}

// Header returns the header as written by Close.
func (w *Writer) Header() Header { return w.h }

func (h Header) marshal() []byte {
	le := binary.LittleEndian
	b := make([]byte, HeaderSize)
	copy(b, Magic)
	le.PutUint16(b[8:], uint16(h.Channels))
	le.PutUint16(b[10:], uint16(len(h.Levels)))
	le.PutUint32(b[12:], uint32(h.SampleRate))
	le.PutUint64(b[16:], uint64(h.Frames))
	for i, l := range h.Levels {
		e := b[32+24*i:]
		le.PutUint32(e[0:], uint32(l.Block))
		le.PutUint64(e[8:], uint64(l.Peaks))
		le.PutUint64(e[16:], uint64(l.Offset))
	}
	return b
}

// ReadHeader reads and checks the header of a peak file.
func ReadHeader(r io.ReaderAt) (Header, error) {
	b := make([]byte, HeaderSize)
	if _, err := r.ReadAt(b, 0); err != nil {
		return Header{}, fmt.Errorf("%w: %w", ErrFormat, err)
	}
	if string(b[:8]) != Magic {
		return Header{}, ErrFormat
	}
	le := binary.LittleEndian
	h := Header{Channels: int(le.Uint16(b[8:])), SampleRate: int(le.Uint32(b[12:])), Frames: int64(le.Uint64(b[16:]))}
	n := int(le.Uint16(b[10:]))
	if h.Channels < 1 || n < 1 || n > MaxLevels {
		return Header{}, fmt.Errorf("%w: %d channels, %d levels", ErrFormat, h.Channels, n)
	}
	for i := 0; i < n; i++ {
		e := b[32+24*i:]
		l := Level{Block: int(le.Uint32(e[0:])), Peaks: int64(le.Uint64(e[8:])), Offset: int64(le.Uint64(e[16:]))}
		if l.Block < 1 || l.Peaks < 0 || l.Offset < HeaderSize {
			return Header{}, fmt.Errorf("%w: level %d", ErrFormat, i)
		}
		h.Levels = append(h.Levels, l)
	}
	return h, nil
}

// ReadLevel returns the peaks of level i: per peak and channel the
// minimum and the maximum.
func (h Header) ReadLevel(r io.ReaderAt, i int) ([]int16, error) {
	if i < 0 || i >= len(h.Levels) {
		return nil, fmt.Errorf("waveform: no level %d", i)
	}
	l := h.Levels[i]
	if l.Peaks > 1<<24 || l.Peaks*int64(2*h.Channels) > 1<<24 {
		return nil, fmt.Errorf("waveform: level %d too large to read at once", i)
	}
	n := l.Peaks * int64(2*h.Channels)
	b := make([]byte, 2*n)
	if _, err := r.ReadAt(b, l.Offset); err != nil {
		return nil, fmt.Errorf("%w: level %d: %w", ErrFormat, i, err)
	}
	out := make([]int16, n)
	for k := range out {
		out[k] = int16(binary.LittleEndian.Uint16(b[2*k:]))
	}
	return out, nil
}
