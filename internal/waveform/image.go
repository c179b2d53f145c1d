package waveform

import (
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"math"
)

// Colours of the rendering.
var (
	background = color.RGBA{0x16, 0x1b, 0x22, 0xff}
	foreground = color.RGBA{0x4c, 0xb0, 0xe8, 0xff}
	axis       = color.RGBA{0x44, 0x4c, 0x56, 0xff}
)

// Image accumulates the minimum and maximum of each pixel column of a
// waveform picture: width columns over frames frames, one lane per
// channel stacked from top to bottom. Its memory is width × channels.
type Image struct {
	width, height, channels int
	frames                  int64
	pos                     int64
	lo, hi                  []float64 // [column*channels+channel]
}

// NewImage starts a width × height picture of frames frames of audio with
// channels channels.
func NewImage(width, height, channels int, frames int64) (*Image, error) {
	if width < 1 || height < channels || channels < 1 || frames < 0 {
		return nil, fmt.Errorf("waveform: bad picture %dx%d of %d channels", width, height, channels)
	}
	im := &Image{width: width, height: height, channels: channels, frames: frames,
		lo: make([]float64, width*channels), hi: make([]float64, width*channels)}
	for i := range im.lo {
		im.lo[i], im.hi[i] = math.Inf(1), math.Inf(-1)
	}
	return im, nil
}

// Add takes interleaved samples of whole frames. Frames past the count
// given to NewImage fall into the last column.
func (im *Image) Add(samples []float64) {
	ch := im.channels
	for i := 0; i+ch <= len(samples); i += ch {
		col := im.width - 1
		if im.frames > 0 && im.pos < im.frames {
			col = int(im.pos * int64(im.width) / im.frames)
		}
		im.pos++
		for c := 0; c < ch; c++ {
			k := col*ch + c
			v := samples[i+c]
			im.lo[k] = min(im.lo[k], v)
			im.hi[k] = max(im.hi[k], v)
		}
	}
}

// Render draws the picture.
func (im *Image) Render() *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, im.width, im.height))
	for i := 0; i < len(img.Pix); i += 4 {
		img.Pix[i], img.Pix[i+1], img.Pix[i+2], img.Pix[i+3] = background.R, background.G, background.B, background.A
	}
	lane := im.height / im.channels
	for c := 0; c < im.channels; c++ {
		top := c * lane
		mid := top + lane/2
		half := float64(lane-1) / 2
		for x := 0; x < im.width; x++ {
			img.SetRGBA(x, mid, axis)
			k := x*im.channels + c
			lo, hi := im.lo[k], im.hi[k]
			if math.IsInf(lo, 0) || math.IsInf(hi, 0) {
				continue // no samples in this column
			}
			y0 := mid - int(math.Round(max(-1, min(1, hi))*half))
			y1 := mid - int(math.Round(max(-1, min(1, lo))*half))
			for y := max(top, y0); y <= min(top+lane-1, y1); y++ {
				img.SetRGBA(x, y, foreground)
			}
		}
	}
	return img
}

// WritePNG encodes the picture as PNG to w.
func (im *Image) WritePNG(w io.Writer) error {
	return png.Encode(w, im.Render())
}

// AddSpan takes the minimum and maximum, per channel, of the next frames
// frames: every column those frames fall into takes them.
func (im *Image) AddSpan(frames int64, lo, hi []float64) {
	if frames <= 0 {
		return
	}
	col := func(f int64) int {
		if im.frames > 0 && f < im.frames {
			return int(f * int64(im.width) / im.frames)
		}
		return im.width - 1
	}
	first, last := col(im.pos), col(im.pos+frames-1)
	im.pos += frames
	for x := first; x <= last; x++ {
		for c := 0; c < im.channels; c++ {
			k := x*im.channels + c
			im.lo[k] = min(im.lo[k], lo[c])
			im.hi[k] = max(im.hi[k], hi[c])
		}
	}
}

// peaksPerColumn is how many peaks of a level ImageFromPeaks wants per
// column: the coarsest level that has as many is read.
const peaksPerColumn = 4

// ImageFromPeaks draws a width × height picture from the peak file r with
// header h: from the coarsest level with at least peaksPerColumn peaks a
// column (level 0 when none has), so its memory is a few peaks per
// column whatever the length of the audio. It serves a source whose
// length is only known once it has been read, such as a file still being
// written.
func ImageFromPeaks(r io.ReaderAt, h Header, width, height int) (*Image, error) {
	im, err := NewImage(width, height, h.Channels, h.Frames)
	if err != nil {
		return nil, err
	}
	if len(h.Levels) == 0 {
		return im, nil
	}
	level := 0
	for i, l := range h.Levels {
		if l.Peaks >= peaksPerColumn*int64(width) {
			level = i
		}
	}
	peaks, err := h.ReadLevel(r, level)
	if err != nil {
		return nil, err
	}
	ch := h.Channels
	lo, hi := make([]float64, ch), make([]float64, ch)
	block := int64(h.Levels[level].Block)
	for p, left := 0, h.Frames; 2*ch*(p+1) <= len(peaks) && left > 0; p++ {
		for c := range ch {
			lo[c] = float64(peaks[2*ch*p+2*c]) / 32767
			hi[c] = float64(peaks[2*ch*p+2*c+1]) / 32767
		}
		n := min(block, left)
		im.AddSpan(n, lo, hi)
		left -= n
	}
	return im, nil
}
