package processor

import (
	"errors"
	"net/http"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/dpe-engine/dpe/internal/client"
	"github.com/dpe-engine/dpe/internal/model"
)

// report is what a processor owes the server about a held job: its outcome
// (comp set) or its give-back (comp nil).
type report struct {
	hj   *heldJob
	comp *model.Completion
	// key is the Idempotency-Key of every send of this report, so a send
	// whose answer was lost and is repeated later gets the first answer
	// instead of a conflict.
	key string
}

// outcome is how the attempt ended, for its span: "" when it succeeded,
// else why not (nil r: no report, the lease was lost or the job given
// back already).
func (r *report) outcome() string {
	switch {
	case r == nil:
		return "dropped: lease lost or given back"
	case r.comp == nil:
		return "given back"
	}
	return r.comp.Error
}

func (r *report) what() string {
	if r.comp == nil {
		return "give-back"
	}
	return "outcome"
}

// deliver sends r until the server takes it, the lease turns out lost, or
// the report is no longer worth keeping. The client already retries
// through short outages; when even its retries give up (the servers are
// down for longer than its deadline), the report is kept, the lease is
// still heartbeated, and the send is repeated every heartbeat interval
// until ResultKeep past the lease's last known expiry.
func (p *Processor) deliver(r *report) {
	hj := r.hj
	for {
		err := p.send(r)
		switch {
		case err == nil:
			p.delivered(r)
			return
		case r.comp != nil && len(r.comp.Result) > 0 && r.comp.Error != "" && refusedField(err, "result"):
			// This server takes a result or an error, not both (exec
			// returns its captured output with a failure). Keep the
			// error, which decides the job's fate; log the result.
			p.log.Info("server refuses a result with an error; sending the error alone",
				hj.attrs("result", clip(r.comp.Result, 2048))...)
			r.comp.Result = nil
			r.key = client.NewIdempotencyKey() // a different body
			continue
		case errors.Is(err, model.ErrConflict) || errors.Is(err, model.ErrNotFound):
			p.log.Info("lease lost before the "+r.what()+" was delivered; dropped", hj.attrs("err", err)...)
			p.drop(hj)
			return
		case p.ioCtx.Err() != nil:
			p.log.Error(r.what()+" not delivered before shutdown; the job runs again once its lease expires",
				hj.attrs("err", err)...)
			p.drop(hj)
			return
		case !worthRetrying(err):
			p.log.Error(r.what()+" refused by the server; dropped", hj.attrs("err", err)...)
			p.drop(hj)
			return
		}
		p.mu.Lock()
		keepUntil, lost := hj.leaseUntil.Add(p.cfg.ResultKeep), hj.lost
		p.mu.Unlock()
		if lost {
			p.log.Info("lease lost before the "+r.what()+" was delivered; dropped", hj.log...)
			p.drop(hj)
			return
		}
		if p.clock.Now().After(keepUntil) {
			p.log.Error("gave up delivering the "+r.what()+": its lease is long gone", hj.attrs("err", err)...)
			p.drop(hj)
			return
		}
		wait := p.heartbeatEvery()
		p.log.Warn("could not deliver the "+r.what()+"; keeping it and trying again",
			hj.attrs("err", err, "retry_in", wait)...)
		select {
		case <-p.ioCtx.Done():
		case <-hj.lostCh:
		case <-time.After(wait):
		}
	}
}

func (p *Processor) send(r *report) error {
	key := client.WithIdempotencyKey(r.key)
	var err error
	if r.comp == nil {
		ctx := trace.ContextWithSpanContext(p.ioCtx, r.hj.span) // the server's span joins the job's trace
		_, err = p.c.Release(ctx, r.hj.job.ID, r.hj.job.Epoch, key)
	} else {
		// Outcomes go by group commit; the store's exact-repeat rule
		// makes a resent outcome idempotent without the report's key.
		err = p.completer.complete(p.ioCtx, *r.comp, r.hj.span)
	}
	return err
}

// delivered books a report the server took and forgets the job.
func (p *Processor) delivered(r *report) {
	p.mu.Lock()
	p.forget(r.hj)
	switch {
	case r.comp == nil:
		p.stats.Released++
	case r.comp.Error != "":
		p.stats.Failed++
	default:
		p.stats.Completed++
	}
	p.mu.Unlock()
	if r.comp == nil {
		p.log.Info("job given back", r.hj.log...)
	} else {
		p.log.Debug("outcome delivered", r.hj.log...)
	}
}

// drop forgets a job without a delivered report.
func (p *Processor) drop(hj *heldJob) {
	p.mu.Lock()
	p.forget(hj)
	p.stats.Dropped++
	p.mu.Unlock()
}

// forget removes hj from the held jobs, unless a newer claim of the same
// job took its place, and frees its quota slot. Callers hold p.mu.
func (p *Processor) forget(hj *heldJob) {
	if p.jobs[hj.job.ID] == hj {
		delete(p.jobs, hj.job.ID)
	}
	if hj.slot {
		hj.slot = false
		p.running[hj.job.Type]--
		signal(p.freed[hj.job.Type])
	}
}

// worthRetrying says whether a failed send may succeed later: the servers
// were unreachable or failed on their side. Other refusals stay refusals.
func worthRetrying(err error) bool {
	var ae *client.APIError
	if errors.As(err, &ae) {
		return ae.Status >= 500 || ae.Status == http.StatusTooManyRequests || ae.Status == http.StatusRequestTimeout
	}
	return errors.Is(err, model.ErrUnavailable)
}

// refusedField reports an invalid-input answer naming field.
func refusedField(err error, field string) bool {
	var ae *client.APIError
	return errors.As(err, &ae) && errors.Is(ae, model.ErrInvalid) && ae.Problem.Field == field
}

// clip returns b as a string of at most n bytes.
func clip(b []byte, n int) string {
	if len(b) <= n {
		return string(b)
	}
	return string(b[:n]) + "..."
}
