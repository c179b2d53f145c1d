package wire

import "github.com/dpe-engine/dpe/internal/model"

// MaxLogAppend bounds the lines of one POST /v1/jobs/{id}/logs.
const MaxLogAppend = 1000

// LogPage answers GET /v1/jobs/{id}/logs and GET /v1/workflows/{id}/logs
// (?after=SEQ&limit=N): lines oldest first; Next is the cursor to ask
// after next time (the last line's seq, or the after asked when none).
type LogPage struct {
	Lines []model.LogLine `json:"lines"`
	Next  int64           `json:"next"`
}

// LogAppend is the body of POST /v1/jobs/{id}/logs: lines a job handler
// wrote, sent by its processor with its heartbeats and before its report.
type LogAppend struct {
	Lines []model.LogEntry `json:"lines"`
}
