package handlers

import (
	"strings"
	"testing"
)

// ffmpeg's -progress report of a short run, as ffmpeg 5.1 writes it.
const sampleProgress = `frame=12
fps=0.00
stream_0_0_q=-1.0
bitrate=N/A
total_size=48
out_time_us=480000
out_time_ms=480000
out_time=00:00:00.480000
dup_frames=0
drop_frames=0
speed=0.96x
progress=continue
frame=50
out_time_us=1000000
out_time_ms=1000000
progress=continue
out_time_us=N/A
progress=continue
frame=100
out_time_us=2000000
progress=end
`

func TestFFProgress(t *testing.T) {
	type report struct {
		pct int
		us  int64
	}
	tests := []struct {
		name     string
		duration int64
		input    string
		want     []report
		ended    bool
	}{
		{"whole run", 2_000_000, sampleProgress, []report{{24, 480000}, {50, 1000000}, {100, 2000000}}, true},
		{"unknown duration", 0, sampleProgress, []report{{0, 480000}, {0, 1000000}, {100, 2000000}}, true},
		{"past the duration stays under 100", 1_000_000, "out_time_us=1500000\nprogress=continue\n", []report{{99, 1500000}}, false},
		{"time going back is ignored", 1_000_000, "out_time_us=500000\nprogress=continue\nout_time_us=100\nprogress=continue\n", []report{{50, 500000}}, false},
		{"CRLF and spaces", 1_000_000, "out_time_us = 250000\r\nprogress=continue\r\n", []report{{25, 250000}}, false},
		{"block without time", 1_000_000, "frame=1\nprogress=continue\n", nil, false},
		{"negative and garbage", 1_000_000, "out_time_us=-5\nout_time_us=12abc\n=\nnoequals\nprogress=continue\n", nil, false},
		{"unterminated last line", 1_000_000, "out_time_us=500000\nprogress=continue\nout_time_us=900000\nprogr", []report{{50, 500000}}, false},
		{"over-long line dropped", 1_000_000, "out_time_us=" + strings.Repeat("9", 2000) + "\nout_time_us=100000\nprogress=continue\n", []report{{10, 100000}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Fed whole and fed byte by byte, the same reports.
			for _, step := range []int{len(tt.input), 1, 7} {
				var got []report
				p := &ffProgress{DurationUS: tt.duration, Report: func(pct int, us int64) { got = append(got, report{pct, us}) }}
				for i := 0; i < len(tt.input); i += step {
					if n, err := p.Write([]byte(tt.input[i:min(i+step, len(tt.input))])); err != nil || n != min(step, len(tt.input)-i) {
						t.Fatalf("Write = %d, %v", n, err)
					}
				}
				if len(got) != len(tt.want) {
					t.Fatalf("step %d: reports = %v, want %v", step, got, tt.want)
				}
				for i := range got {
					if got[i] != tt.want[i] {
						t.Fatalf("step %d: reports = %v, want %v", step, got, tt.want)
					}
				}
				if p.Ended != tt.ended {
					t.Errorf("Ended = %v", p.Ended)
				}
			}
		})
	}
}

// FuzzFFProgress: whatever ffmpeg writes, however it is split, the parser
// does not panic, reports rising percentages within 0-100, keeps bounded
// memory, and ends in the same state as when fed all at once.
func FuzzFFProgress(f *testing.F) {
	f.Add(sampleProgress, int64(2_000_000), 3)
	f.Add("out_time_us=9223372036854775807\nprogress=end\n", int64(1), 1)
	f.Add("progress=end\nout_time_us=5\nprogress=continue\n", int64(0), 2)
	f.Fuzz(func(t *testing.T, input string, duration int64, step int) {
		if step <= 0 || step > 64 {
			step = 1 + (step&63+64)%64
		}
		var whole, split ffProgress
		whole.DurationUS, split.DurationUS = duration, duration
		last := -1
		split.Report = func(pct int, us int64) {
			if pct < 0 || pct > 100 || pct < last {
				t.Fatalf("percent %d after %d", pct, last)
			}
			last = pct
		}
		whole.Write([]byte(input))
		for i := 0; i < len(input); i += step {
			split.Write([]byte(input[i:min(i+step, len(input))]))
			if cap(split.line) > 2*maxProgressLine+64 {
				t.Fatalf("line buffer grew to %d", cap(split.line))
			}
		}
		if whole.OutUS != split.OutUS || whole.Ended != split.Ended || whole.Percent() != split.Percent() {
			t.Fatalf("whole %+v, split %+v", whole, split)
		}
		if p := whole.Percent(); p < 0 || p > 100 {
			t.Fatalf("Percent = %d", p)
		}
	})
}
