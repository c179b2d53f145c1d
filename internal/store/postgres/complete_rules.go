package postgres

import (
	"time"

	"github.com/dpe-engine/dpe/internal/model"
	"github.com/dpe-engine/dpe/internal/store"
)

// Completions and releases are judged by the rules of package store
// (store.Complete, store.Release) on rows read under lock, so one
// completion alone and the same completion inside a batch end the same
// way. completeSucceededSQL states the rule of a success in SQL for its
// set-based fast path; the conformance suite holds the two together.

// reportedJob is a job as read under lock, with its last report: what a
// report is judged against.
type reportedJob struct {
	store.ReportedJob
	changed bool // a report of this batch took effect
}

// completion is one model.Completion prepared before the transaction.
type completion struct {
	model.Completion
	result *string // the result as stored: nil when none
	digest string  // store.CompletionDigest
	err    error   // refused before reaching the database (store.CheckCompletion)
}

// prepareCompletion validates c and computes what the transaction needs.
func prepareCompletion(c model.Completion) completion {
	p := completion{Completion: c, digest: store.CompletionDigest(c)}
	if p.err = store.CheckCompletion(c); p.err != nil {
		return p
	}
	if len(c.Result) > 0 {
		r := string(c.Result)
		p.result = &r
	}
	return p
}

// apply judges c against r (store.Complete) and, when it takes effect,
// applies it to r. It returns nil when c took effect or repeats exactly
// the report that did (r unchanged), else why it was refused.
func (c *completion) apply(r *reportedJob, now time.Time) error {
	next, changed, err := store.Complete(r.ReportedJob, c.Completion, now)
	if err != nil || !changed {
		return err
	}
	r.ReportedJob, r.changed = next, true
	return nil
}
