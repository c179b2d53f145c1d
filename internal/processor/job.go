package processor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime/debug"
	"slices"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/dpe-engine/dpe/internal/client"
	"github.com/dpe-engine/dpe/internal/handlers"
	"github.com/dpe-engine/dpe/internal/model"
	"github.com/dpe-engine/dpe/internal/tracing"
)

// Causes of a handler's context ending, told apart with context.Cause.
var (
	errCancelAsked = errors.New("canceled")
	errLeaseLost   = errors.New("lease lost")
	errGraceOver   = errors.New("shutdown grace over")
)

// timeoutError is the cause of a job's ctx ending at its Timeout.
type timeoutError struct{ d time.Duration }

func (e *timeoutError) Error() string { return fmt.Sprintf("timed out after %v", e.d) }

// heldJob is a job whose lease this processor holds: its handler runs, or
// it finished and its outcome is on its way. Fields below job are guarded
// by Processor.mu.
type heldJob struct {
	job    model.Job
	cancel context.CancelCauseFunc
	log    []any // log attributes naming the job
	// span is the attempt's span (invalid when tracing is off): the
	// calls reporting the job go under it.
	span trace.SpanContext

	leaseUntil  time.Time // local estimate: last renewal + TTL
	progress    int
	message     string
	hasProgress bool
	sent        progressMark // last progress sent by a progress call
	finished    bool         // the handler returned
	abandoned   bool         // the handler ignored cancellation; given back
	lost        bool
	lostCh      chan struct{} // closed when lost turns true
	// slot: the job counts against its type's quota. It keeps counting
	// after the handler returns, until the server has the outcome (or
	// the job is dropped), so the jobs the server sees running for this
	// processor never exceed its quota.
	slot bool
	// logs are the handler's log lines not sent yet; logsDropped counts
	// those that did not fit.
	logs        []model.LogEntry
	logsDropped int
}

// progressMark is what a progress call last carried, and when.
type progressMark struct {
	progress int
	message  string
	at       time.Time
}

func jobAttrs(j model.Job) []any {
	return []any{"job", j.ID, "type", j.Type, "attempt", j.Attempt, "epoch", j.Epoch}
}

// attrs returns the job's log attributes followed by kv.
func (hj *heldJob) attrs(kv ...any) []any {
	return append(slices.Clip(hj.log), kv...)
}

// start runs a claimed job in its own goroutine, or gives it back when it
// cannot run here.
func (p *Processor) start(j model.Job) {
	h := p.cfg.Handlers[j.Type]
	p.mu.Lock()
	reason := ""
	switch {
	case p.draining:
		reason = "shutting down"
	case h == nil || p.cfg.Quota[j.Type] == 0:
		reason = "type not served"
	case p.running[j.Type] >= p.cfg.Quota[j.Type]:
		reason = "quota full"
	}
	if old := p.jobs[j.ID]; old != nil {
		if old.job.Epoch >= j.Epoch {
			p.mu.Unlock()
			p.log.Warn("claim returned a job already held; ignored", jobAttrs(j)...)
			return
		}
		// The server took the job back (our lease expired while we
		// could not reach it) and handed it to us again: the new claim
		// supersedes the old one, whose handler stops and whose report
		// is dropped.
		p.log.Info("job claimed again under a newer epoch; dropping the old run", old.attrs("new_epoch", j.Epoch)...)
		p.markLost(old)
		if reason == "" && p.running[j.Type] >= p.cfg.Quota[j.Type] {
			reason = "quota full" // the old handler still holds the slot
		}
	}
	hj := &heldJob{job: j, log: jobAttrs(j), lostCh: make(chan struct{}),
		leaseUntil: p.clock.Now().Add(p.cfg.LeaseTTL)}
	p.jobs[j.ID] = hj
	if reason != "" {
		hj.finished = true
		p.reports.Add(1)
		p.mu.Unlock()
		p.log.Info("giving back claimed job", hj.attrs("reason", reason)...)
		go func() {
			defer p.reports.Done()
			p.deliver(newRelease(hj))
		}()
		return
	}
	p.running[j.Type]++
	hj.slot = true
	// The handler's ctx does not end with Run's ctx: running jobs go on
	// through the drain grace (see drain).
	ctx, cancel := context.WithCancelCause(p.workCtx)
	hj.cancel = cancel
	if j.Timeout > 0 {
		var stop context.CancelFunc
		ctx, stop = context.WithTimeoutCause(ctx, j.Timeout.D(), &timeoutError{j.Timeout.D()})
		hj.cancel = func(cause error) { cancel(cause); stop() }
	}
	ctx, span := p.cfg.Tracing.StartJob(ctx, j, p.cfg.ID)
	hj.span = span.SpanContext()
	p.handlers.Add(1)
	p.mu.Unlock()

	p.log.Debug("job started", hj.log...)
	task := handlers.Task{
		ID: j.ID, Type: j.Type, Params: j.Params, Attempt: j.Attempt,
		Progress: func(pct int, msg string) { p.setProgress(hj, pct, msg) },
		Log:      func(level, msg string) { p.addLog(hj, level, msg) },
	}
	go func() {
		result, err := p.runHandler(ctx, h, task)
		rep := p.finish(ctx, hj, result, err)
		tracing.EndJob(span, rep.outcome())
		p.handlers.Done()
		if rep != nil {
			p.sendLogs(p.ioCtx, hj) // before the outcome: a reader who sees the job end sees its lines
			p.deliver(rep)
			p.reports.Done()
		}
	}()
}

// runHandler runs h, turning a panic into the job's failure (the stack
// goes to the log) so one bad job does not take the farm node down.
func (p *Processor) runHandler(ctx context.Context, h handlers.Handler, t handlers.Task) (result any, err error) {
	defer func() {
		if r := recover(); r != nil {
			p.log.Error("handler panicked", "job", t.ID, "type", t.Type, "panic", r, "stack", string(debug.Stack()))
			result, err = nil, fmt.Errorf("handler panicked: %v", r)
		}
	}()
	return h.Run(ctx, t)
}

// finish books the end of a handler and returns the report to deliver, or
// nil when there is none (lease lost, job already given back). When it
// returns a report it has counted it in p.reports.
func (p *Processor) finish(ctx context.Context, hj *heldJob, result any, err error) *report {
	cause := context.Cause(ctx)
	p.mu.Lock()
	hj.finished = true
	lost, abandoned := hj.lost, hj.abandoned
	if lost {
		p.forget(hj)
		p.stats.Dropped++
	}
	if !lost && !abandoned {
		p.reports.Add(1)
	}
	p.mu.Unlock()
	hj.cancel(nil) // free the ctx's resources

	switch {
	case lost:
		p.log.Info("lease lost; job dropped without a report", hj.log...)
		return nil
	case abandoned:
		p.log.Warn("handler returned after its job was given back", hj.log...)
		return nil
	case err != nil && errors.Is(cause, errGraceOver):
		p.log.Info("job stopped at shutdown; giving it back", hj.log...)
		return newRelease(hj)
	}
	return newCompletion(hj, result, err, cause, p)
}

// newCompletion builds the outcome report of a finished handler.
func newCompletion(hj *heldJob, result any, err, cause error, p *Processor) *report {
	c := model.Completion{ID: hj.job.ID, Epoch: hj.job.Epoch}
	if result != nil {
		b, merr := json.Marshal(result)
		if merr != nil && err == nil {
			err = handlers.Permanent(fmt.Errorf("result is not JSON: %w", merr))
		}
		if merr == nil {
			c.Result = b
		}
	}
	var te *timeoutError
	switch {
	case err == nil:
		p.log.Debug("job succeeded", hj.log...)
	case errors.Is(cause, errCancelAsked):
		c.Error = "canceled"
		p.log.Info("job canceled", hj.log...)
	case errors.As(cause, &te):
		c.Error = fmt.Sprintf("%v: %v", te, err)
		p.log.Info("job timed out", hj.attrs("err", c.Error)...)
	default:
		c.Error = err.Error()
		c.Permanent = handlers.IsPermanent(err)
		p.log.Info("job failed", hj.attrs("err", c.Error, "permanent", c.Permanent)...)
	}
	return &report{hj: hj, comp: &c, key: client.NewIdempotencyKey()}
}

// newRelease builds the give-back report of a job.
func newRelease(hj *heldJob) *report {
	return &report{hj: hj, key: client.NewIdempotencyKey()}
}
