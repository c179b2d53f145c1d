package store

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/dpe-engine/dpe/internal/model"
)

// The rules of a holder's reports (completion, release) and of lease expiry
// (rescue), written once, in Go and free of SQL. Engines read the row, ask
// these functions, and write what they decide. Where an engine also states
// a rule in SQL, for a set-based statement (a batch of successes in one
// statement, every expired lease at once), these functions are the rule
// and its SQL a copy: the conformance suite (storetest) runs a table of
// cases through both and compares, so the copy cannot drift.
//
// A report names the attempt it concerns by the lease epoch. It takes
// effect only on a job running under that epoch. Once one took effect, the
// job remembers its epoch and digest (ReportedJob): the same report again
// (its answer was lost) is answered as before, and anything else (a
// different report of that epoch, a report of another epoch, a report of a
// job the rescue took back) is refused with model.ErrConflict (DESIGN §2,
// §10).

// ReleaseDigest is the digest a release leaves as the last report of its
// epoch: no completion digest equals it.
const ReleaseDigest = "release"

// ReportedJob is a job as read to judge a report on it: the row, and the
// last report that took effect.
type ReportedJob struct {
	Job           model.Job
	ReportedEpoch int64  // epoch of the report that last took effect (0: none)
	ReportDigest  string // its digest: CompletionDigest, or ReleaseDigest
}

// CheckCompletion refuses a completion that cannot be stored whatever its
// job: a result that is not JSON (model.ErrInvalid). Engines call it before
// reading the job.
func CheckCompletion(c model.Completion) error {
	if len(c.Result) > 0 && !json.Valid(c.Result) {
		return model.Invalid("result", "not valid JSON")
	}
	return nil
}

// CompletionDigest identifies a completion report, so that an identical
// repeat is recognised: the outcome, the error and the result (whitespace
// in the JSON aside; key order counts).
func CompletionDigest(c model.Completion) string {
	// The bytes hashed are those PostgreSQL databases already hold the
	// digests of: "ok\x00", or "error\x00<permanent>\x00<error>\x00",
	// then the result compacted (as given when it is not JSON). Built in
	// one buffer: this runs for every completion, the hot path.
	b := make([]byte, 0, 16+len(c.Error)+len(c.Result))
	if c.Error == "" {
		b = append(b, "ok\x00"...)
	} else {
		b = append(b, "error\x00"...)
		b = strconv.AppendBool(b, c.Permanent)
		b = append(b, 0)
		b = append(b, c.Error...)
		b = append(b, 0)
	}
	if len(c.Result) > 0 {
		buf := bytes.NewBuffer(b)
		if err := json.Compact(buf, c.Result); err == nil {
			b = buf.Bytes()
		} else {
			b = append(b, c.Result...)
		}
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// Complete judges completion c (valid: CheckCompletion) of job r at now.
// Taken: changed is true and next is the job to write, with c as its last
// report. An identical repeat of the report that took effect: changed is
// false, err nil, and next is r unchanged (answer it as before). Otherwise
// err wraps model.ErrConflict.
//
// A success ends succeeded with progress 100, even when a cancel was
// asked: the work was done. A failure ends canceled when a cancel was
// asked; queued again after the back-off (model.RetryDelay) while attempts
// remain and the error is not permanent (the job keeps its attempt count,
// the next claim adds one); else failed. Every outcome drops the lease,
// stores the report's result (none: no result) and error, and finishes the
// job unless it is queued again.
func Complete(r ReportedJob, c model.Completion, now time.Time) (next ReportedJob, changed bool, err error) {
	digest := CompletionDigest(c)
	if !runningAt(r.Job, c.Epoch) {
		return r, false, verdict(r, c.ID, c.Epoch, digest)
	}
	j := r.Job
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
	return ReportedJob{Job: j, ReportedEpoch: c.Epoch, ReportDigest: digest}, true, nil
}

// Release judges the release of job r's attempt with epoch at now (a
// processor draining gives the job back), as Complete judges a completion:
// taken (changed), an identical repeat (the job as it stands), or refused
// (model.ErrConflict).
//
// A released job is queued for a claim at once, its attempt uncounted; a
// job whose cancel was asked is canceled (and finished) instead, its
// attempt uncounted too: queueing it would only have the next processor
// start it and be told to stop. The lease is dropped; result and error
// stay.
func Release(r ReportedJob, epoch int64, now time.Time) (next ReportedJob, changed bool, err error) {
	if !runningAt(r.Job, epoch) {
		return r, false, verdict(r, r.Job.ID, epoch, ReleaseDigest)
	}
	j := r.Job
	j.Attempt--
	j.LeaseUntil = nil
	j.FinishedAt = nil
	if j.CancelAsked {
		j.State, j.FinishedAt = model.JobCanceled, &now
	} else {
		j.State, j.RunAfter = model.JobQueued, now
	}
	j.UpdatedAt = now
	return ReportedJob{Job: j, ReportedEpoch: epoch, ReportDigest: ReleaseDigest}, true, nil
}

// Expired says whether j holds a lease that ended before now (a lease
// until exactly now is still held): what Rescue takes back.
func Expired(j model.Job, now time.Time) bool {
	return j.State == model.JobRunning && j.LeaseUntil != nil && j.LeaseUntil.Before(now)
}

// Rescue returns job j whose lease expired (Expired) as the rescue at now
// leaves it: canceled when a cancel was asked; failed when no attempt is
// left; else queued for a claim at once. The attempt stays counted and the
// epoch unchanged, so the next claim fences the old holder out; the last
// report is untouched, so the old holder's reports are refused (the job is
// not running under their epoch, and none of them took effect). Failed and
// queued jobs say in their error why the attempt ended (RescueError).
// changed is false when j's lease has not expired.
func Rescue(j model.Job, now time.Time) (next model.Job, changed bool) {
	if !Expired(j, now) {
		return j, false
	}
	switch {
	case j.CancelAsked:
		j.State = model.JobCanceled
	case j.Attempt >= j.MaxAttempts:
		j.State, j.Error = model.JobFailed, RescueError(j)
	default:
		j.State, j.Error, j.RunAfter = model.JobQueued, RescueError(j), now
	}
	j.LeaseUntil = nil
	j.FinishedAt = nil
	if j.State != model.JobQueued {
		j.FinishedAt = &now
	}
	j.UpdatedAt = now
	return j, true
}

// RescueError is the error a rescue leaves on job j, for an operator.
func RescueError(j model.Job) string {
	return fmt.Sprintf("lease expired: processor %s stopped heartbeating (attempt %d of %d)", j.Processor, j.Attempt, j.MaxAttempts)
}

// Ended says whether a change left j final inside a workflow instance: an
// event its instance is woken for (a job queued again is none).
func Ended(j model.Job) bool {
	return j.InstanceID != 0 && j.State.Final()
}

// runningAt says whether j runs the attempt of epoch: the only job a
// report may change.
func runningAt(j model.Job, epoch int64) bool {
	return j.State == model.JobRunning && j.Epoch == epoch
}

// verdict explains why a report (digest) of job id's attempt with epoch
// found no such running attempt: nil when it repeats the report that took
// effect at that epoch, else model.ErrConflict (a stale epoch, or a job
// that is not running).
func verdict(r ReportedJob, id, epoch int64, digest string) error {
	j := r.Job
	switch {
	case j.Epoch == epoch && r.ReportedEpoch == epoch && r.ReportDigest == digest:
		return nil
	case j.Epoch != epoch:
		return fmt.Errorf("job %d: epoch %d is stale (current %d): %w", id, epoch, j.Epoch, model.ErrConflict)
	}
	return fmt.Errorf("job %d is %s, not running: %w", id, j.State, model.ErrConflict)
}
