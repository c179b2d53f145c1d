package handlers

import (
	"fmt"
	"time"

	"github.com/dpe-engine/dpe/internal/clock"
)

// Progress reports are throttled: one at most every progressEvery, unless
// the percentage moved by progressStep or more.
const (
	progressEvery = 100 * time.Millisecond
	progressStep  = 5
)

// meter turns bytes done into throttled progress reports. It is used by
// one goroutine.
type meter struct {
	report  func(int, string)
	clock   clock.Clock
	verb    string // "copied", "read", ...
	total   int64
	lastPct int
	lastAt  time.Time
}

// newMeter returns a meter reporting to t.Progress for total bytes.
func newMeter(t Task, c clock.Clock, verb string, total int64) *meter {
	report := t.Progress
	if report == nil {
		report = func(int, string) {}
	}
	return &meter{report: report, clock: c, verb: verb, total: total, lastAt: c.Now()}
}

// update reports done bytes out of the total when enough has changed.
func (m *meter) update(done int64) {
	pct := 100
	if m.total > 0 && done < m.total {
		pct = int(done * 100 / m.total)
	}
	if pct == m.lastPct {
		return
	}
	now := m.clock.Now()
	if pct < 100 && pct-m.lastPct < progressStep && now.Sub(m.lastAt) < progressEvery {
		return
	}
	m.lastPct, m.lastAt = pct, now
	m.report(pct, fmt.Sprintf("%s %s of %s", m.verb, byteSize(done), byteSize(m.total)))
}

// byteSize formats n bytes for people: "512 B", "1.5 MiB".
func byteSize(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 5; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
