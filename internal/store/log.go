package store

import (
	"context"
	"time"
	"unicode/utf8"

	"github.com/dpe-engine/dpe/internal/model"
)

// Bounds of a log: lines past MaxLogLines of one instance or one job are
// dropped (counted on one marker line), and a message is cut to
// MaxLogLineBytes.
const (
	MaxLogLines     = 1000
	MaxLogLineBytes = 4096
	MaxLogList      = 1000 // lines per LogList
)

// LogStore holds the log lines of workflow instances and jobs. Their
// purge goes with their owner's: InstancePurge and JobPurge delete them.
type LogStore interface {
	// LogAppend stores lines of the instance's own log (jobID 0) or of
	// the job's (instanceID ignored: the job's own instance is recorded).
	// Lines are normalised by NormalizeLog. Past MaxLogLines per owner the
	// rest are dropped and counted on one marker line. An owner that does
	// not exist: model.ErrNotFound. Appends to one owner are expected
	// from its one holder (worker lease, job lease): concurrent appends
	// may overshoot the bound by the lines of one call.
	LogAppend(ctx context.Context, instanceID, jobID int64, lines []model.LogEntry, now time.Time) error
	// LogList returns the lines f selects, oldest first.
	LogList(ctx context.Context, f model.LogFilter) ([]model.LogLine, error)
}

// NormalizeLog returns the lines as they are stored: a zero time is now,
// an empty or unknown level info, a message cut to MaxLogLineBytes at a
// character boundary.
func NormalizeLog(lines []model.LogEntry, now time.Time) []model.LogEntry {
	out := make([]model.LogEntry, len(lines))
	for i, l := range lines {
		if l.At.IsZero() {
			l.At = now
		}
		if !model.ValidLogLevel(l.Level) {
			l.Level = model.LogInfo
		}
		if len(l.Message) > MaxLogLineBytes {
			cut := MaxLogLineBytes
			for cut > 0 && !utf8.RuneStart(l.Message[cut]) {
				cut--
			}
			l.Message = l.Message[:cut]
		}
		out[i] = l
	}
	return out
}

// LogLimit returns the number of lines a LogList with limit n returns.
func LogLimit(n int) int {
	if n <= 0 || n > MaxLogList {
		return MaxLogList
	}
	return n
}
