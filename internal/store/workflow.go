package store

import (
	"context"
	"time"

	"github.com/dpe-engine/dpe/internal/model"
)

// TemplateStore holds versioned workflow templates.
type TemplateStore interface {
	// TemplatePut stores a template. Version 0 takes the next version; a
	// template whose Canonical equals the latest version's is not stored
	// again and that version is returned with created false. An explicit
	// version that exists with other content is model.ErrConflict.
	TemplatePut(ctx context.Context, t model.Template, now time.Time) (model.Template, bool, error)
	// TemplateGet returns a version (0: the latest), or model.ErrNotFound.
	TemplateGet(ctx context.Context, name string, version int) (model.Template, error)
	// TemplateList returns the latest version of every template, by name.
	TemplateList(ctx context.Context) ([]model.Template, error)
	// TemplateDelete deletes every version of a template; model.ErrConflict
	// while instances of it are not final.
	TemplateDelete(ctx context.Context, name string) error
}

// InstanceClaimParams asks for instances that need a worker's attention.
type InstanceClaimParams struct {
	Worker string
	// Templates limits claims to these templates (empty: all).
	Templates []string
	// Slots caps new instances per template this worker may take on top of
	// those it holds; templates absent use Default.
	Slots   map[string]int
	Default int
	// Exclude: instances not to return (the worker is deciding them).
	Exclude []int64
	// Limit caps the instances returned by one call.
	Limit    int
	LeaseTTL time.Duration
	Now      time.Time
}

// InstanceStore holds workflow instances and their step records.
//
// Events wake instances: every store method that ends a job of an instance
// (JobComplete, JobRescue, JobCancel of a queued job) or ends a child
// instance sets the owning instance's WakeAt to now in the same
// transaction, and engines with Notify deliver "instances" on WatchJobs'
// callback (the pseudo job type "@instances"), so workers learn at once.
type InstanceStore interface {
	// InstanceCreate creates an instance, or returns the existing one of the
	// same name (existing true). Policy skip with a non-final instance of
	// the same concurrency key returns model.ErrConflict; policy queue
	// creates it pending, and claims pass it over until no instance of its
	// key runs.
	InstanceCreate(ctx context.Context, spec model.InstanceSpec, now time.Time) (model.Instance, bool, error)
	// InstanceCreateMany creates instances as InstanceCreate does, in one
	// transaction (group commit). A spec refused on its own
	// (model.ErrConflict by its concurrency key, model.ErrInvalid) is
	// reported in its result and changes nothing; any other failure fails
	// the call and nothing changes. Results are in the order given.
	InstanceCreateMany(ctx context.Context, specs []model.InstanceSpec, now time.Time) ([]CreateResult, error)
	InstanceGet(ctx context.Context, id int64) (model.Instance, error)
	InstanceGetByName(ctx context.Context, name string) (model.Instance, error)
	// InstanceSteps returns the step records of an instance, by path.
	InstanceSteps(ctx context.Context, id int64) ([]model.Step, error)
	// InstanceList: newest first, Total counts the matches up to
	// model.CountCap (TotalCapped: more).
	InstanceList(ctx context.Context, f model.InstanceFilter) (model.Page[model.Instance], error)
	// InstanceCancel asks a non-final instance to stop and wakes it;
	// canceled already: unchanged; succeeded or failed: model.ErrConflict.
	InstanceCancel(ctx context.Context, id int64, now time.Time) (model.Instance, error)
	// InstanceRetry resumes a failed or canceled top-level instance from
	// the steps that failed it, in one transaction, as CheckRetryInstance,
	// PlanRetry and RetryInstance (retry.go) decide: records reset or
	// dropped, their jobs retried, their sub-workflows retried the same
	// way (recursively), the instance running and due at once. Any other
	// state, a sub-workflow, a job or child still ending, or a concurrency
	// key (skip or queue) held by another live instance is
	// model.ErrConflict and changes nothing. Engines with Notify announce
	// "@instances" and the retried jobs' types.
	InstanceRetry(ctx context.Context, id int64, now time.Time) (model.Instance, error)
	// InstanceSetPriority changes the priority of a non-final instance and
	// of its queued jobs, in one transaction.
	InstanceSetPriority(ctx context.Context, id int64, priority int, now time.Time) (model.Instance, error)
	// InstanceClaim returns instances due for attention (state pending or
	// running, WakeAt <= Now) that the worker holds or that nobody holds
	// (lease free or expired), leasing them to it until Now+LeaseTTL:
	// epoch+1 when the holder changes. Instances the worker does not hold
	// yet count against Slots[template] (else Default); held ones do not.
	// An instance with policy queue is passed over while an older non-final
	// instance of its concurrency key exists. Highest priority first, then
	// oldest; at most Limit. WakeAt is left as it is (Advance sets it), so
	// an instance whose worker dies before advancing is claimed again once
	// the lease expires.
	InstanceClaim(ctx context.Context, p InstanceClaimParams) ([]model.Instance, error)
	// InstanceHeartbeat renews the worker's leases on the instances; it
	// returns the ids whose lease the worker no longer holds.
	InstanceHeartbeat(ctx context.Context, worker string, ids []int64, ttl time.Duration, now time.Time) (lost []int64, err error)
	// InstanceRelease drops the worker's leases on the instances (a worker
	// stopping), so another worker may take them at once.
	InstanceRelease(ctx context.Context, worker string, ids []int64, now time.Time) error
	// InstanceAdvance applies a worker's decision atomically: submits its
	// jobs (idempotent by Key, as JobInsert) and children (idempotent by
	// name, as InstanceCreate), writing their ids into the steps whose path
	// is the job's Step or the child's ParentStep; upserts the steps (an
	// upsert never clears a JobID or ChildID already set); cancels the
	// listed jobs (as JobCancel) and children (as InstanceCancel); sets
	// state, progress, current, vars, output and error. WakeAt is stored
	// only when the instance's WakeSeq still equals a.WakeSeq; otherwise an
	// event came in meanwhile and the instance stays due (WakeAt = now).
	// StartedAt is set on the first running state, FinishedAt on a final
	// one. A final state clears the lease and wakes the parent instance and
	// the next pending instance of the same concurrency key. A stale epoch
	// or a lease now held by another worker is model.ErrConflict and
	// changes nothing.
	InstanceAdvance(ctx context.Context, a model.Advance, now time.Time) (model.Instance, error)
	// InstanceAdvanceMany applies many decisions, each as InstanceAdvance
	// does, in one transaction (group commit). An advance refused on its
	// own (model.ErrConflict, model.ErrNotFound, model.ErrInvalid) changes
	// nothing and is reported in its result while the others apply; any
	// other failure fails the call and nothing changes. Results are in
	// the order given.
	InstanceAdvanceMany(ctx context.Context, as []model.Advance, now time.Time) ([]AdvanceResult, error)
	// InstanceDetails returns, for each id that exists, the instance with
	// its step records (by path) and the jobs and children its running
	// steps wait for, in the order given. Each instance is read before its
	// steps, jobs and children, so these are never older than the
	// instance's WakeSeq says.
	InstanceDetails(ctx context.Context, ids []int64) ([]model.InstanceDetail, error)
	// InstancePurge deletes final instances that finished before the time,
	// with their steps and jobs, returning how many instances.
	InstancePurge(ctx context.Context, finishedBefore time.Time) (int, error)
}

// CreateResult is the outcome of one spec of InstanceCreateMany: the
// instance (Existing when its name was taken already), or why not.
type CreateResult struct {
	Instance model.Instance
	Existing bool
	Err      error
}

// AdvanceResult is the outcome of one advance of InstanceAdvanceMany:
// the instance as it now is, or why the advance was refused.
type AdvanceResult struct {
	Instance model.Instance
	Err      error
}

// WorkflowStore is the name the workflow conformance suite uses for Store.
type WorkflowStore = Store
