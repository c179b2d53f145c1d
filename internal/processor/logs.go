package processor

import (
	"context"
	"errors"
	"fmt"

	"github.com/dpe-engine/dpe/internal/model"
	"github.com/dpe-engine/dpe/internal/wire"
)

// maxPendingLog bounds a job's log lines waiting to be sent: past it (a
// handler writing faster than the servers take them, or the servers away)
// lines are dropped and counted on one line of the next send.
const maxPendingLog = wire.MaxLogAppend

// addLog keeps a handler's log line for the next send. It never blocks
// the handler on the network.
func (p *Processor) addLog(hj *heldJob, level, msg string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(hj.logs) >= maxPendingLog {
		hj.logsDropped++
		return
	}
	hj.logs = append(hj.logs, model.LogEntry{At: p.clock.Now(), Level: level, Message: msg})
}

// takeLogs removes and returns hj's waiting lines.
func (p *Processor) takeLogs(hj *heldJob) []model.LogEntry {
	p.mu.Lock()
	defer p.mu.Unlock()
	lines := hj.logs
	if hj.logsDropped > 0 {
		lines = append(lines, model.LogEntry{At: p.clock.Now(), Level: model.LogWarn,
			Message: fmt.Sprintf("%d lines dropped by processor %s", hj.logsDropped, p.cfg.ID)})
	}
	hj.logs, hj.logsDropped = nil, 0
	return lines
}

// sendLogs sends hj's waiting lines in one call. Lines a failed call
// carried are put back for the next one, unless the job is gone.
func (p *Processor) sendLogs(ctx context.Context, hj *heldJob) {
	lines := p.takeLogs(hj)
	if len(lines) == 0 {
		return
	}
	err := p.c.AppendJobLog(ctx, hj.job.ID, wire.LogAppend{Lines: lines})
	switch {
	case err == nil, errors.Is(err, model.ErrNotFound):
	case ctx.Err() != nil:
	default:
		p.log.Debug("log lines not sent; the next heartbeat retries", hj.attrs("lines", len(lines), "err", err)...)
		p.mu.Lock()
		keep := lines[:min(len(lines), maxPendingLog-len(hj.logs))]
		hj.logsDropped += len(lines) - len(keep)
		hj.logs = append(keep, hj.logs...)
		p.mu.Unlock()
	}
}

// flushLogs sends the waiting lines of every held job: done with each
// heartbeat.
func (p *Processor) flushLogs(ctx context.Context) {
	p.mu.Lock()
	var pending []*heldJob
	for _, hj := range p.jobs {
		if (len(hj.logs) > 0 || hj.logsDropped > 0) && !hj.lost {
			pending = append(pending, hj)
		}
	}
	p.mu.Unlock()
	for _, hj := range pending {
		p.sendLogs(ctx, hj)
	}
}
