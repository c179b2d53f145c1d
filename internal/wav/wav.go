// Package wav reads and writes WAV files: RIFF/WAVE, BWF (the bext chunk)
// and RF64/BW64 (the ds64 chunk, for files over 4 GiB), with PCM samples of
// 8, 16, 24 and 32 bits, IEEE float samples of 32 and 64 bits, and
// WAVE_FORMAT_EXTENSIBLE. The Reader streams: it reads the samples in
// pieces through io.ReaderAt and can follow a data chunk that is still
// being written (a growing file) until the file has been stable for a
// while.
//
// The Go WAV modules available (github.com/go-audio/wav v1.1.0) read
// neither RF64 nor bext, so the chunk parsing is this package's own.
package wav

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Errors of a file that cannot be read. Each error from Open or Read that
// is about the file's content wraps one of them.
var (
	ErrNotWAV      = errors.New("not a WAV file")
	ErrUnsupported = errors.New("unsupported WAV format")
	ErrMalformed   = errors.New("malformed WAV file")
	ErrTruncated   = errors.New("truncated WAV file")
)

// Format codes (wFormatTag); an extensible format is reported by its
// sub-format.
const (
	FormatPCM        = 1
	FormatFloat      = 3
	formatExtensible = 0xFFFE
)

// Format describes the samples of a WAV file.
type Format struct {
	Container   string // "RIFF", "RF64" or "BW64"
	Code        int    // FormatPCM or FormatFloat
	Extensible  bool   // WAVE_FORMAT_EXTENSIBLE
	Channels    int
	SampleRate  int
	Bits        int    // valid bits per sample
	SampleBytes int    // bytes one sample occupies
	BlockAlign  int    // bytes per frame
	ChannelMask uint32 // speaker positions; 0 when not extensible
	// Raw is the fmt chunk's body, for a writer of the same format.
	Raw []byte
}

// Name is a short description such as "PCM 24-bit" or "float 32-bit".
func (f Format) Name() string {
	kind := "PCM"
	if f.Code == FormatFloat {
		kind = "float"
	}
	return fmt.Sprintf("%s %d-bit", kind, f.Bits)
}

// Bext is the Broadcast Wave Format extension chunk (EBU Tech 3285).
type Bext struct {
	Description         string `json:"description"`
	Originator          string `json:"originator"`
	OriginatorReference string `json:"originator_reference"`
	OriginationDate     string `json:"origination_date"`
	OriginationTime     string `json:"origination_time"`
	TimeReference       uint64 `json:"time_reference"`
	Version             int    `json:"version"`
	UMID                string `json:"umid,omitempty"` // hex; empty when all zero
	// Loudness fields of version 2, in LUFS/LU/dBTP; nil when not set.
	LoudnessValue        *float64 `json:"loudness_value,omitempty"`
	LoudnessRange        *float64 `json:"loudness_range,omitempty"`
	MaxTruePeakLevel     *float64 `json:"max_true_peak_level,omitempty"`
	MaxMomentaryLoudness *float64 `json:"max_momentary_loudness,omitempty"`
	MaxShortTermLoudness *float64 `json:"max_short_term_loudness,omitempty"`
	CodingHistory        string   `json:"coding_history,omitempty"`
	// Raw is the chunk's body, for a writer that keeps it.
	Raw []byte `json:"-"`
}

// bextFixed is the size of the bext chunk before the coding history.
const bextFixed = 602

// parseBext decodes a bext body; a body shorter than the fixed part is
// malformed.
func parseBext(b []byte) (*Bext, error) {
	if len(b) < bextFixed {
		return nil, fmt.Errorf("%w: bext chunk of %d bytes, want at least %d", ErrMalformed, len(b), bextFixed)
	}
	le := binary.LittleEndian
	x := &Bext{
		Description:         cstr(b[0:256]),
		Originator:          cstr(b[256:288]),
		OriginatorReference: cstr(b[288:320]),
		OriginationDate:     cstr(b[320:330]),
		OriginationTime:     cstr(b[330:338]),
		TimeReference:       le.Uint64(b[338:346]),
		Version:             int(le.Uint16(b[346:348])),
		CodingHistory:       cstr(b[bextFixed:]),
		Raw:                 append([]byte(nil), b...),
	}
	umid := b[348:412]
	for _, c := range umid {
		if c != 0 {
			x.UMID = fmt.Sprintf("%x", umid)
			break
		}
	}
	if x.Version >= 2 {
		fields := []**float64{&x.LoudnessValue, &x.LoudnessRange, &x.MaxTruePeakLevel,
			&x.MaxMomentaryLoudness, &x.MaxShortTermLoudness}
		for i, f := range fields {
			v := int16(le.Uint16(b[412+2*i:]))
			if v != 0x7fff && v != 0 {
				fv := float64(v) / 100
				*f = &fv
			}
		}
	}
	return x, nil
}

// cstr is a fixed-size, NUL-padded ASCII field.
func cstr(b []byte) string {
	for i, c := range b {
		if c == 0 {
			b = b[:i]
			break
		}
	}
	return string(b)
}

// parseFmt decodes and checks a fmt chunk body.
func parseFmt(container string, b []byte) (Format, error) {
	if len(b) < 16 {
		return Format{}, fmt.Errorf("%w: fmt chunk of %d bytes", ErrMalformed, len(b))
	}
	le := binary.LittleEndian
	f := Format{
		Container:  container,
		Code:       int(le.Uint16(b[0:])),
		Channels:   int(le.Uint16(b[2:])),
		SampleRate: int(le.Uint32(b[4:])),
		BlockAlign: int(le.Uint16(b[12:])),
		Bits:       int(le.Uint16(b[14:])),
		Raw:        append([]byte(nil), b...),
	}
	if f.Code == formatExtensible {
		if len(b) < 40 {
			return Format{}, fmt.Errorf("%w: extensible fmt chunk of %d bytes, want 40", ErrMalformed, len(b))
		}
		f.Extensible = true
		if valid := int(le.Uint16(b[18:])); valid != 0 {
			f.Bits = valid
		}
		f.ChannelMask = le.Uint32(b[20:])
		f.Code = int(le.Uint16(b[24:]))
	}
	if f.Code != FormatPCM && f.Code != FormatFloat {
		return Format{}, fmt.Errorf("%w: format code %d (only PCM 1 and IEEE float 3)", ErrUnsupported, f.Code)
	}
	if f.Channels < 1 || f.Channels > 64 {
		return Format{}, fmt.Errorf("%w: %d channels", ErrUnsupported, f.Channels)
	}
	if f.SampleRate < 1 || f.SampleRate > 1<<20 {
		return Format{}, fmt.Errorf("%w: sample rate %d Hz", ErrUnsupported, f.SampleRate)
	}
	if f.BlockAlign == 0 || f.BlockAlign%f.Channels != 0 {
		return Format{}, fmt.Errorf("%w: block align %d for %d channels", ErrMalformed, f.BlockAlign, f.Channels)
	}
	f.SampleBytes = f.BlockAlign / f.Channels
	ok := false
	switch f.Code {
	case FormatPCM:
		ok = f.SampleBytes >= 1 && f.SampleBytes <= 4 && f.Bits > 8*(f.SampleBytes-1) && f.Bits <= 8*f.SampleBytes
	case FormatFloat:
		ok = (f.SampleBytes == 4 && f.Bits == 32) || (f.SampleBytes == 8 && f.Bits == 64)
	}
	if !ok {
		return Format{}, fmt.Errorf("%w: %s in %d-byte samples", ErrUnsupported, f.Name(), f.SampleBytes)
	}
	return f, nil
}

// Marshal returns the body of a version 1 bext chunk holding the text
// fields, the time reference and the coding history of x (its loudness
// fields and UMID are not written).
func (x *Bext) Marshal() []byte {
	b := make([]byte, bextFixed, bextFixed+len(x.CodingHistory))
	copy(b[0:256], x.Description)
	copy(b[256:288], x.Originator)
	copy(b[288:320], x.OriginatorReference)
	copy(b[320:330], x.OriginationDate)
	copy(b[330:338], x.OriginationTime)
	binary.LittleEndian.PutUint64(b[338:], x.TimeReference)
	binary.LittleEndian.PutUint16(b[346:], 1)
	return append(b, x.CodingHistory...)
}
