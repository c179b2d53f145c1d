package waveform

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// TestReadOverview: the overview comes from the coarsest level with
// enough peaks, merged in equal runs, channels apart, scaled to ±1.
func TestReadOverview(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "p.peaks"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	w, err := NewWriter(f, 2, 48000, 100)
	if err != nil {
		t.Fatal(err)
	}
	// 1000 frames: a ramp from -1 to 1 on channel 0, its negation on 1.
	var buf []float64
	for n := range 1000 {
		v := -1 + 2*float64(n)/999
		buf = append(buf, v, -v)
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
	tests := []struct {
		columns, wantColumns int
		wantFrames           int64
	}{
		{4, 3, 400},   // level 1 (5 peaks of 200 frames) in runs of 2
		{10, 10, 100}, // level 0 as it is
		{64, 10, 100}, // a short file: all its finest peaks
		{1, 1, 1600},  // the one peak of the last level
	}
	for _, tt := range tests {
		ov, err := ReadOverview(f, h, tt.columns)
		if err != nil {
			t.Fatal(err)
		}
		if ov.Columns != tt.wantColumns || ov.FramesPerColumn != tt.wantFrames || len(ov.Min) != 2 || len(ov.Max[1]) != tt.wantColumns {
			t.Fatalf("ReadOverview(%d) = %d columns of %d frames, want %d of %d", tt.columns, ov.Columns, ov.FramesPerColumn, tt.wantColumns, tt.wantFrames)
		}
		last := ov.Columns - 1
		if ov.Min[0][0] != -1 || ov.Max[0][last] != 1 || ov.Max[1][0] != 1 || ov.Min[1][last] != -1 {
			t.Errorf("ReadOverview(%d): ends %v %v / %v %v", tt.columns, ov.Min[0], ov.Max[0], ov.Min[1], ov.Max[1])
		}
		if !slices.IsSorted(ov.Max[0]) {
			t.Errorf("ReadOverview(%d): the ramp's maxima do not rise: %v", tt.columns, ov.Max[0])
		}
	}
	if _, err := ReadOverview(f, h, 0); err == nil {
		t.Error("0 columns accepted")
	}
}
