package wav

import (
	"encoding/binary"
	"math"
)

// Decode converts raw sample bytes of format f (whole frames) into dst as
// interleaved samples, full scale ±1.0.
func Decode(f Format, dst []float64, raw []byte) {
	decode(f, dst, raw, 0, f.SampleBytes)
}

// DecodeChannel converts channel ch of the raw frames of format f into
// dst, full scale ±1.0, and returns how many samples it wrote: one per
// whole frame of raw, at most len(dst). It gathers one channel straight
// from the file's bytes, so a consumer that measures channels one at a
// time needs no interleaved copy of the samples.
func DecodeChannel(f Format, dst []float64, raw []byte, ch int) int {
	return decode(f, dst, raw, ch*f.SampleBytes, f.BlockAlign)
}

// Scales from integer samples to ±1.0. Multiplying by a power of two is
// exact, as dividing by it is, and cheaper.
const (
	scale8  = 1.0 / (1 << 7)
	scale16 = 1.0 / (1 << 15)
	scale32 = 1.0 / (1 << 31)
)

// decode converts the samples at raw[off], raw[off+stride], ... into dst
// and returns how many it wrote. Each format has a loop of its own with
// nothing in it but the conversion: no call or switch per sample. The
// 24-bit loop loads 4 bytes at once (the sample and the next byte, which
// it shifts out) wherever 4 bytes are there, and 3 at the very end.
func decode(f Format, dst []float64, raw []byte, off, stride int) int {
	sb := f.SampleBytes
	if off+sb > len(raw) || stride <= 0 {
		return 0
	}
	n := min(len(dst), (len(raw)-off-sb)/stride+1)
	dst = dst[:n]
	raw = raw[off:]
	le := binary.LittleEndian
	switch {
	case f.Code == FormatFloat && sb == 4:
		for j, i := 0, 0; j < len(dst) && i+4 <= len(raw); j, i = j+1, i+stride {
			dst[j] = float64(math.Float32frombits(le.Uint32(raw[i : i+4])))
		}
	case f.Code == FormatFloat:
		for j, i := 0, 0; j < len(dst) && i+8 <= len(raw); j, i = j+1, i+stride {
			dst[j] = math.Float64frombits(le.Uint64(raw[i : i+8]))
		}
	case sb == 1:
		for j, i := 0, 0; j < len(dst) && i < len(raw); j, i = j+1, i+stride {
			dst[j] = float64(int(raw[i])-128) * scale8
		}
	case sb == 2:
		for j, i := 0, 0; j < len(dst) && i+2 <= len(raw); j, i = j+1, i+stride {
			dst[j] = float64(int16(le.Uint16(raw[i:i+2]))) * scale16
		}
	case sb == 3:
		// The sample's 3 bytes shifted to the top of an int32: the
		// sample times 256, hence the 32-bit scale.
		j, i := 0, 0
		for ; j < len(dst) && i+4 <= len(raw); j, i = j+1, i+stride {
			dst[j] = float64(int32(le.Uint32(raw[i:i+4])<<8)) * scale32
		}
		for ; j < len(dst) && i+3 <= len(raw); j, i = j+1, i+stride {
			b := raw[i : i+3]
			dst[j] = float64(int32(uint32(b[0])<<8|uint32(b[1])<<16|uint32(b[2])<<24)) * scale32
		}
	default:
		for j, i := 0, 0; j < len(dst) && i+4 <= len(raw); j, i = j+1, i+stride {
			dst[j] = float64(int32(le.Uint32(raw[i:i+4]))) * scale32
		}
	}
	return n
}
