package model

import "time"

// Log levels of a LogLine.
const (
	LogDebug = "debug"
	LogInfo  = "info"
	LogWarn  = "warn"
	LogError = "error"
)

// ValidLogLevel reports whether level is one of the log levels.
func ValidLogLevel(level string) bool {
	switch level {
	case LogDebug, LogInfo, LogWarn, LogError:
		return true
	}
	return false
}

// LogEntry is a log line to append: what a `log` activity or a job
// handler wrote. A zero At is the time the server stores it; an empty
// Level is info.
type LogEntry struct {
	At      time.Time `json:"at,omitzero"`
	Level   string    `json:"level,omitempty"`
	Message string    `json:"message"`
}

// LogLine is one stored line of a workflow instance's log (JobID 0) or of
// a job's (JobID set; InstanceID is then the job's instance, 0 for a job
// outside workflows).
type LogLine struct {
	// Seq orders every line of the database: a reader resumes after the
	// last Seq it saw.
	Seq        int64     `json:"seq"`
	InstanceID int64     `json:"instance_id,omitempty"`
	JobID      int64     `json:"job_id,omitempty"`
	At         time.Time `json:"at"`
	Level      string    `json:"level"`
	Message    string    `json:"message"`
	// Dropped is set on the one marker line that says how many lines
	// were dropped past the bound; its Message says it too.
	Dropped int `json:"dropped,omitempty"`
}

// LogFilter selects log lines: a job's (JobID set), or a workflow
// instance's own lines with those of its jobs (InstanceID set), after the
// cursor After, oldest first, at most Limit.
type LogFilter struct {
	InstanceID int64
	JobID      int64
	After      int64
	Limit      int
}
