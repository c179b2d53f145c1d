package handlers

import (
	"bytes"
	"strconv"
)

// maxProgressLine bounds a line of ffmpeg's progress report kept while it
// is incomplete; a longer one (never seen from ffmpeg) is dropped, so the
// parser's memory is constant whatever it is fed.
const maxProgressLine = 1024

// ffProgress parses the report of ffmpeg's -progress pipe:1: blocks of
// key=value lines, each block ending with progress=continue or
// progress=end. It is the io.Writer of ffmpeg's stdout, called by one
// goroutine. Each out_time_us (or out_time_ms, which ffmpeg also gives in
// microseconds) is reported against Duration as a percentage through
// Report, once per block and only when it grew.
type ffProgress struct {
	// DurationUS is the expected output duration in microseconds; 0 or
	// less: unknown, and only the end is reported.
	DurationUS int64
	// Report, when not nil, gets the percent done (0-100) and the output
	// time reached in microseconds.
	Report func(percent int, outUS int64)

	OutUS   int64 // latest output time; never decreases
	Ended   bool  // progress=end seen
	line    []byte
	skip    bool // dropping the rest of an over-long line
	pending bool // OutUS grew since the last report
	lastPct int
}

// Write consumes a piece of the report. It never fails.
func (p *ffProgress) Write(b []byte) (int, error) {
	n := len(b)
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			p.keep(b)
			break
		}
		p.keep(b[:i])
		if !p.skip {
			p.parseLine(p.line)
		}
		p.line, p.skip = p.line[:0], false
		b = b[i+1:]
	}
	return n, nil
}

// keep appends part of a line, or drops the line once it is too long.
func (p *ffProgress) keep(b []byte) {
	if p.skip {
		return
	}
	if len(p.line)+len(b) > maxProgressLine {
		p.line, p.skip = p.line[:0], true
		return
	}
	p.line = append(p.line, b...)
}

// parseLine handles one key=value line.
func (p *ffProgress) parseLine(line []byte) {
	line = bytes.TrimRight(line, "\r")
	key, val, ok := bytes.Cut(line, []byte("="))
	if !ok {
		return
	}
	switch string(bytes.TrimSpace(key)) {
	case "out_time_us", "out_time_ms":
		us, err := strconv.ParseInt(string(bytes.TrimSpace(val)), 10, 64)
		if err == nil && us > p.OutUS {
			p.OutUS, p.pending = us, true
		}
	case "progress":
		end := string(bytes.TrimSpace(val)) == "end"
		if end {
			p.Ended = true
		}
		p.flush(end)
	}
}

// Percent is the share of DurationUS reached, 0-100; 100 once ended.
func (p *ffProgress) Percent() int {
	switch {
	case p.Ended:
		return 100
	case p.DurationUS <= 0 || p.OutUS <= 0:
		return 0
	case p.OutUS >= p.DurationUS:
		return 99 // the end comes with progress=end
	}
	return int(p.OutUS * 100 / p.DurationUS)
}

// flush reports at the end of a block when the time grew, or at the end.
func (p *ffProgress) flush(end bool) {
	if !p.pending && !end {
		return
	}
	p.pending = false
	pct := p.Percent()
	if pct < p.lastPct { // Ended only grows the percentage
		pct = p.lastPct
	}
	p.lastPct = pct
	if p.Report != nil {
		p.Report(pct, p.OutUS)
	}
}
