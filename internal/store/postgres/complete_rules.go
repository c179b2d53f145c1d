package postgres

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	"github.com/dpe-engine/dpe/internal/model"
)

// The outcome rules of a completion (store.JobStore.JobComplete), in Go and
// free of SQL: JobComplete and JobCompleteMany both decide with them, on
// rows they read under lock, so one completion alone and the same
// completion inside a batch end the same way.

// reportedJob is a job as read under lock, with its last report: what a
// completion is judged against.
type reportedJob struct {
	job           model.Job
	reportedEpoch int64  // epoch of the report that last took effect
	reportDigest  string // its digest (completionDigest, releaseDigest)
	changed       bool   // a completion of this batch took effect
}

// completion is one model.Completion prepared before the transaction.
type completion struct {
	model.Completion
	result *string // the result as stored: nil when none
	digest string  // completionDigest
	err    error   // refused before reaching the database (invalid result)
}

// prepareCompletion validates c and computes what the transaction needs.
// A result that is not JSON is refused (model.ErrInvalid).
func prepareCompletion(c model.Completion) completion {
	p := completion{Completion: c, digest: completionDigest(c)}
	if len(c.Result) > 0 {
		if !json.Valid(c.Result) {
			p.err = model.Invalid("result", "not valid JSON")
			return p
		}
		r := string(c.Result)
		p.result = &r
	}
	return p
}

// apply judges c against r and, when it is the report of r's running
// attempt, applies it to r (decided at now). It returns nil when c took
// effect or repeats exactly the report that did (r unchanged), else why it
// was refused (reportVerdict).
func (c *completion) apply(r *reportedJob, now time.Time) error {
	if r.job.State != model.JobRunning || r.job.Epoch != c.Epoch {
		return reportVerdict(r, c.ID, c.Epoch, c.digest)
	}
	r.job = completedJob(r.job, c.Completion, now)
	r.reportedEpoch, r.reportDigest, r.changed = r.job.Epoch, c.digest, true
	return nil
}

// completedJob returns running job j after the report c of its attempt:
// success is succeeded (even when a cancel was asked: the work was done);
// a failure is canceled when a cancel was asked, queued again after the
// back-off (model.RetryDelay) while attempts remain and the error is not
// permanent, else failed. A requeued job is not finished and keeps its
// attempt count (the next claim adds one).
func completedJob(j model.Job, c model.Completion, now time.Time) model.Job {
	switch {
	case c.Error == "":
		j.State, j.Progress = model.JobSucceeded, 100
	case j.CancelAsked:
		j.State = model.JobCanceled
	case !c.Permanent && j.Attempt < j.MaxAttempts:
		j.State = model.JobQueued
		j.RunAfter = now.Add(model.RetryDelay(j.Backoff.D(), j.BackoffMax.D(), j.Attempt))
	default:
		j.State = model.JobFailed
	}
	j.FinishedAt = nil
	if j.State != model.JobQueued {
		j.FinishedAt = &now
	}
	j.Result = nil
	if len(c.Result) > 0 {
		j.Result = c.Result
	}
	j.Error = c.Error
	j.LeaseUntil = nil
	j.UpdatedAt = now
	return j
}

// reportVerdict explains why a report (a completion, a release) for
// (id, epoch) found no running job of that epoch: it is nil when the
// report repeats exactly the one that took effect (the caller returns the
// job unchanged), else model.ErrConflict, for a stale epoch or a job that
// is not running.
func reportVerdict(r *reportedJob, id, epoch int64, digest string) error {
	j := r.job
	switch {
	case j.Epoch == epoch && r.reportedEpoch == epoch && r.reportDigest == digest:
		return nil
	case j.Epoch != epoch:
		return fmt.Errorf("job %d: epoch %d is stale (current %d): %w", id, epoch, j.Epoch, model.ErrConflict)
	}
	return fmt.Errorf("job %d is %s, not running: %w", id, j.State, model.ErrConflict)
}

// completionDigest identifies a completion report so that an exact repeat
// is recognised: the outcome, the error and the result (whitespace aside).
func completionDigest(c model.Completion) string {
	h := sha256.New()
	if c.Error == "" {
		h.Write([]byte("ok\x00"))
	} else {
		fmt.Fprintf(h, "error\x00%t\x00%s\x00", c.Permanent, c.Error)
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, c.Result); err == nil {
		h.Write(compact.Bytes())
	} else {
		h.Write(c.Result)
	}
	return hex.EncodeToString(h.Sum(nil))
}
