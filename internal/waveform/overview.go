package waveform

import (
	"fmt"
	"io"
	"math"
)

// Overview is a coarse waveform small enough to travel inline in a job's
// result (the monitor draws it): per channel and column the minimum and
// maximum sample, full scale ±1, rounded to 1/1000.
type Overview struct {
	Columns int `json:"columns"`
	// FramesPerColumn is how many frames of audio one column covers (the
	// last may cover fewer).
	FramesPerColumn int64       `json:"frames_per_column"`
	Min             [][]float64 `json:"min"` // [channel][column]
	Max             [][]float64 `json:"max"`
}

// OverviewValues bounds columns × channels of an Overview: about 4096
// numbers pairs, some 50 kB of JSON at most.
const OverviewValues = 4096

// ReadOverview makes an Overview of about columns columns (fewer for a
// short file, or when columns × channels would pass OverviewValues) from
// a peak file: from the coarsest level that still has at least as many
// peaks as columns, merged in equal runs.
func ReadOverview(r io.ReaderAt, h Header, columns int) (Overview, error) {
	if columns < 1 || h.Channels < 1 || len(h.Levels) == 0 {
		return Overview{}, fmt.Errorf("waveform: overview of %d columns of %d channels, %d levels", columns, h.Channels, len(h.Levels))
	}
	columns = max(1, min(columns, OverviewValues/h.Channels))
	level := 0
	for i, l := range h.Levels {
		if l.Peaks >= int64(columns) {
			level = i
		}
	}
	lv := h.Levels[level]
	peaks, err := h.ReadLevel(r, level)
	if err != nil {
		return Overview{}, err
	}
	n := int(lv.Peaks)
	if n < columns {
		columns = n
	}
	ch := h.Channels
	ov := Overview{Columns: columns, Min: make([][]float64, ch), Max: make([][]float64, ch)}
	if columns == 0 {
		return ov, nil
	}
	per := (n + columns - 1) / columns // peaks per column, the last run shorter
	columns = (n + per - 1) / per
	ov.Columns, ov.FramesPerColumn = columns, int64(per)*int64(lv.Block)
	for c := range ch {
		ov.Min[c], ov.Max[c] = make([]float64, columns), make([]float64, columns)
		for col := range columns {
			lo, hi := int16(math.MaxInt16), int16(math.MinInt16)
			for p := col * per; p < min(n, (col+1)*per); p++ {
				lo = min(lo, peaks[(p*ch+c)*2])
				hi = max(hi, peaks[(p*ch+c)*2+1])
			}
			ov.Min[c][col], ov.Max[c][col] = scale(lo), scale(hi)
		}
	}
	return ov, nil
}

// scale turns an int16 peak into ±1 rounded to 1/1000.
func scale(v int16) float64 {
	return math.Round(float64(v)/32767*1000) / 1000
}
