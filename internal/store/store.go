// Package store declares the core database contract: one method per database
// operation, named entity-then-verb, each taking ctx and explicit inputs
// (including the time, so callers control the clock). Two engines implement
// it: store/postgres (pgx, for redundant plants) and store/sqlite (embedded,
// single node). store/storetest is the conformance suite both must pass.
//
// Every method is one transaction: it either commits fully or changes
// nothing. Engines translate native errors into the model sentinels
// (model.ErrNotFound, model.ErrConflict, model.ErrUnavailable) so callers
// never import a driver.
//
// The rules that decide what a holder's report (completion, release) and
// an expired lease do to a job are written once, in rules.go, free of SQL;
// engines read the row, ask them, and write the decision.
package store

import (
	"context"
	"encoding/json"
	"time"

	"github.com/dpe-engine/dpe/internal/model"
)

// Store is the core database.
type Store interface {
	// Ping succeeds when the database answers and its schema is current:
	// what /readyz reports.
	Ping(ctx context.Context) error
	// Close releases connections. It is safe to call more than once.
	Close() error
	// Capabilities says what the engine can do beyond the contract.
	Capabilities() Capabilities
	// WatchJobs calls fn with a job type each time jobs of that type may
	// have become claimable through any server sharing the database, until
	// ctx ends. Engines without cross-process notification
	// (Capabilities.Notify false) return nil at once.
	WatchJobs(ctx context.Context, fn func(jobType string)) error

	JobStore
	TypeStore
	ProcessorStore
	IdempotencyStore
	LeaseStore
	TemplateStore
	InstanceStore
	LogStore
}

// Capabilities describes optional engine features.
type Capabilities struct {
	// Notify: WatchJobs delivers notifications from other processes
	// (PostgreSQL LISTEN/NOTIFY). Without it servers rely on their own
	// inserts and a periodic tick, which is exact for a single server.
	Notify bool
}

// Inserted is one job returned by JobInsert.
type Inserted struct {
	Job model.Job
	// Existing: a job with the same Key already existed and was returned
	// instead of creating a new one.
	Existing bool
}

// CompleteResult is the outcome of one completion of JobCompleteMany.
type CompleteResult struct {
	Job model.Job
	Err error // nil, or wraps model.ErrConflict / model.ErrNotFound
}

// ClaimParams asks for jobs for one processor.
type ClaimParams struct {
	Processor string
	Slots     map[string]int    // max jobs to hand out per type
	Labels    map[string]string // a job's selector must be a subset
	LeaseTTL  time.Duration
	Now       time.Time
	// Key is the claim's Idempotency-Key ("" for none). A claim repeating
	// a key the processor's running jobs were claimed with returns those
	// jobs instead of claiming more: the answer to a retried claim whose
	// first answer was lost.
	Key string
}

// RescueResult counts what JobRescue did with expired leases.
type RescueResult struct {
	Requeued int
	Failed   int      // attempts exhausted
	Canceled int      // cancel had been asked
	Types    []string // types that got claimable jobs back
	// Ended counts the jobs the rescue left final (failed, canceled) per
	// type, for the outcome metrics.
	Ended map[string]map[model.JobState]int
}

// AddEnded counts n jobs of typ that a rescue left in state st.
func (r *RescueResult) AddEnded(typ string, st model.JobState, n int) {
	if r.Ended == nil {
		r.Ended = map[string]map[model.JobState]int{}
	}
	if r.Ended[typ] == nil {
		r.Ended[typ] = map[model.JobState]int{}
	}
	r.Ended[typ][st] += n
}

// JobStore holds jobs and their leases.
type JobStore interface {
	// JobInsert creates jobs in one transaction, in order. A spec whose
	// non-empty Key matches an existing job returns that job (Existing)
	// instead; concurrent inserts of one key create exactly one job.
	JobInsert(ctx context.Context, specs []model.JobSpec, now time.Time) ([]Inserted, error)
	JobGet(ctx context.Context, id int64) (model.Job, error)
	// JobList returns the newest jobs first, with Total counting the
	// matches of the filter regardless of paging, up to model.CountCap
	// (TotalCapped: more). Next is left empty.
	JobList(ctx context.Context, f model.JobFilter) (model.Page[model.Job], error)
	// JobCancel cancels a queued job at once and asks a running one to stop
	// (CancelAsked; its processor learns it on the next heartbeat). Cancel
	// of a canceled job returns it unchanged; of a succeeded or failed job,
	// model.ErrConflict.
	JobCancel(ctx context.Context, id int64, now time.Time) (model.Job, error)
	// JobRetry makes a failed or canceled job queued again at once for a
	// new series of attempts, as RetryStandaloneJob (retry.go) decides: a
	// job in another state, or one of a workflow instance, is
	// model.ErrConflict.
	JobRetry(ctx context.Context, id int64, now time.Time) (model.Job, error)
	// JobSetPriority changes the priority of a job not yet final
	// (model.ErrConflict otherwise).
	JobSetPriority(ctx context.Context, id int64, priority int, now time.Time) (model.Job, error)
	// JobSetPriorityByInstance changes the priority of every queued job
	// of a workflow instance, returning how many changed.
	JobSetPriorityByInstance(ctx context.Context, instanceID int64, priority int, now time.Time) (int, error)
	// JobClaim hands out queued jobs whose RunAfter has passed and whose
	// selector the labels satisfy: priority first, then FIFO; at most
	// Slots[type] per type, and never past the type's cluster-wide
	// MaxRunning or rate limit. Each claimed job becomes running with
	// Attempt+1, Epoch+1 and a lease until Now+LeaseTTL. No job is handed
	// to two concurrent claims. A non-empty Key is stored on the claimed
	// jobs; a later claim with the same Key and Processor returns the jobs
	// still running under it (same ids and epochs) and claims nothing.
	JobClaim(ctx context.Context, p ClaimParams) ([]model.Job, error)
	// JobHeartbeat renews the leases of held jobs whose epoch matches,
	// storing progress when given, and says per job whether to go on, stop
	// (cancel asked) or drop the work (lease lost).
	JobHeartbeat(ctx context.Context, beats []model.Heartbeat, ttl time.Duration, now time.Time) ([]model.HeartbeatResult, error)
	// JobComplete records the outcome of the attempt with c.Epoch, as
	// Complete (rules.go) decides. Success: succeeded. Failure: queued
	// again after the back-off while attempts remain and the error is not
	// permanent, else failed; canceled when a cancel was asked. A stale
	// epoch or a job not running is model.ErrConflict, except an identical
	// repeat of the report that already took effect, which returns the job
	// unchanged; a different report of that epoch is model.ErrConflict.
	JobComplete(ctx context.Context, c model.Completion, now time.Time) (model.Job, error)
	// JobCompleteMany applies many completions in one transaction (group
	// commit: a processor's finished jobs, or several processors' at once).
	// Each gets exactly the outcome JobComplete would give it alone, in
	// order: its job, or its error (model.ErrConflict for a stale epoch,
	// model.ErrNotFound) in the result; one bad completion does not fail
	// the others. The returned error is for the transaction as a whole.
	JobCompleteMany(ctx context.Context, cs []model.Completion, now time.Time) ([]CompleteResult, error)
	// JobRelease gives a running job back to the queue without counting
	// the attempt (a processor draining), or cancels it when a cancel was
	// asked, as Release (rules.go) decides. A repeat of the release that
	// took effect returns the job unchanged; a stale epoch or a job not
	// running is model.ErrConflict.
	JobRelease(ctx context.Context, id, epoch int64, now time.Time) (model.Job, error)
	// JobRescue puts running jobs whose lease expired before now back in
	// the queue, or fails them when no attempt is left, or cancels them when
	// a cancel was asked, each as Rescue (rules.go) decides.
	JobRescue(ctx context.Context, now time.Time) (RescueResult, error)
	// JobCounts counts jobs per state (states with none are absent).
	JobCounts(ctx context.Context) (map[model.JobState]int, error)
	// JobPurge deletes final jobs that finished before the time, returning
	// how many.
	JobPurge(ctx context.Context, finishedBefore time.Time) (int, error)
}

// TypeStore holds the job types the cluster knows and their limits.
type TypeStore interface {
	// TypeEnsure registers type names (no-op for known ones).
	TypeEnsure(ctx context.Context, names []string) error
	// TypePut registers a type and sets its cluster-wide limits. A type's
	// rate-limit bucket is kept: setting a limit again grants no fresh
	// burst (a lower burst caps the bucket at the next claim).
	TypePut(ctx context.Context, l model.TypeLimit) error
	// TypeUpdate changes one type's limits atomically: fn gets the type as
	// stored (exists false: not registered, cur is a zero limit named
	// name) and returns what to store, as TypePut stores it; fn's error
	// changes nothing and is returned. fn may run more than once.
	TypeUpdate(ctx context.Context, name string, fn func(cur model.TypeLimit, exists bool) (model.TypeLimit, error)) (model.TypeLimit, error)
	// TypeList returns every registered type with its limits, by name.
	TypeList(ctx context.Context) ([]model.TypeLimit, error)
}

// ProcessorStore records the processors seen by the servers.
type ProcessorStore interface {
	// ProcessorUpsert records a processor's presence (LastSeen = now) and
	// registers the types of its quota.
	ProcessorUpsert(ctx context.Context, p model.Processor, now time.Time) error
	// ProcessorList returns processors seen since the time, by id, with
	// Running counting their running jobs.
	ProcessorList(ctx context.Context, seenSince time.Time) ([]model.Processor, error)
}

// Response is a stored answer to a mutating request.
type Response struct {
	Fingerprint string // hash of method, path and body: a key reused for another request is refused
	Status      int
	Body        json.RawMessage
}

// IdempotencyStore remembers answers by Idempotency-Key.
type IdempotencyStore interface {
	// IdempotencyGet returns the stored answer for key, or model.ErrNotFound.
	IdempotencyGet(ctx context.Context, key string) (Response, error)
	// IdempotencyPut stores the answer for key unless one is stored already;
	// it returns the stored one either way.
	IdempotencyPut(ctx context.Context, key string, r Response, now time.Time) (Response, error)
	// IdempotencyPurge forgets answers stored before the time.
	IdempotencyPurge(ctx context.Context, before time.Time) (int, error)
}

// LeaseStore holds named leases.
type LeaseStore interface {
	// LeaseAcquire takes the lease when it is free, expired or already the
	// holder's (renewal keeps the epoch; a new holder gets epoch+1), setting
	// Until = now+ttl. Held by another: model.ErrConflict, with the current
	// lease returned.
	LeaseAcquire(ctx context.Context, name, holder string, ttl time.Duration, now time.Time) (model.Lease, error)
	// LeaseRelease frees the lease if holder holds it (no-op otherwise).
	LeaseRelease(ctx context.Context, name, holder string) error
	// LeaseList returns leases whose name starts with prefix, by name.
	LeaseList(ctx context.Context, prefix string) ([]model.Lease, error)
}
