package jobs

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/dpe-engine/dpe/internal/jobtype"
	"github.com/dpe-engine/dpe/internal/model"
	"github.com/dpe-engine/dpe/internal/wire"
)

// MaxListLimit caps one page of a list.
const MaxListLimit = wire.MaxListLimit

// Get returns one job.
func (s *Service) Get(ctx context.Context, id int64) (model.Job, error) {
	j, err := s.store.JobGet(ctx, id)
	if err != nil {
		return j, fmt.Errorf("job %d: %w", id, err)
	}
	return j, nil
}

// List returns a page of jobs, newest first, with the cursor of the next
// page in Next.
func (s *Service) List(ctx context.Context, f model.JobFilter) (model.Page[model.Job], error) {
	for _, st := range f.States {
		if !st.Valid() {
			return model.Page[model.Job]{}, model.Invalid("state", "unknown state %q (want queued, running, succeeded, failed or canceled)", st)
		}
	}
	if f.Limit <= 0 {
		f.Limit = 100
	}
	if f.Limit > MaxListLimit {
		return model.Page[model.Job]{}, model.Invalid("limit", "at most %d", MaxListLimit)
	}
	page, err := s.store.JobList(ctx, f)
	if err != nil {
		return page, fmt.Errorf("list jobs: %w", err)
	}
	if page.Items == nil {
		page.Items = []model.Job{}
	}
	if len(page.Items) == f.Limit {
		page.Next = strconv.FormatInt(page.Items[len(page.Items)-1].ID, 10)
	}
	return page, nil
}

// Cancel cancels a job (see store.JobStore.JobCancel).
func (s *Service) Cancel(ctx context.Context, id int64) (model.Job, error) {
	now := s.clock.Now()
	j, err := s.store.JobCancel(ctx, id, now)
	if err != nil {
		return j, fmt.Errorf("cancel job %d: %w", id, err)
	}
	// A queued job ended now; a canceled one comes back unchanged, with its
	// earlier finish time, and is not counted again.
	if j.FinishedAt != nil && now.Sub(*j.FinishedAt).Abs() < time.Millisecond {
		s.metrics.Ended(j)
	}
	s.wakeInstance(j)
	return j, nil
}

// SetPriority changes a job's priority.
func (s *Service) SetPriority(ctx context.Context, id int64, priority *int) (model.Job, error) {
	if priority == nil {
		return model.Job{}, model.Invalid("priority", "required")
	}
	if *priority < 0 || *priority > model.MaxPriority {
		return model.Job{}, model.Invalid("priority", "must be between 0 and %d, got %d", model.MaxPriority, *priority)
	}
	j, err := s.store.JobSetPriority(ctx, id, *priority, s.clock.Now())
	if err != nil {
		return j, fmt.Errorf("set priority of job %d: %w", id, err)
	}
	return j, nil
}

// PutType changes the cluster-wide limits of a job type: only the fields
// set changes, the others keep their value. A type that is neither built
// in nor registered is refused unless set.Create.
func (s *Service) PutType(ctx context.Context, set wire.TypeSet) (model.TypeLimit, error) {
	if err := jobtype.ValidName(set.Type); err != nil {
		return model.TypeLimit{}, model.Invalid("type", "%v", err)
	}
	if set.MaxRunning != nil && *set.MaxRunning < 0 {
		return model.TypeLimit{}, model.Invalid("max_running", "must not be negative")
	}
	if set.Rate != nil && *set.Rate < 0 {
		return model.TypeLimit{}, model.Invalid("rate", "must not be negative")
	}
	if set.Burst != nil && *set.Burst < 0 {
		return model.TypeLimit{}, model.Invalid("burst", "must not be negative")
	}
	// The merge runs in the store's transaction on the type's row: two
	// sets of different fields of one type at once both take effect.
	_, builtin := s.builtins[set.Type]
	l, err := s.store.TypeUpdate(ctx, set.Type, func(l model.TypeLimit, exists bool) (model.TypeLimit, error) {
		if !exists && !builtin && !set.Create {
			return l, errUnknownType
		}
		if set.MaxRunning != nil {
			l.MaxRunning = *set.MaxRunning
		}
		if set.Rate != nil {
			l.Rate = *set.Rate
		}
		if set.Burst != nil {
			l.Burst = *set.Burst
		}
		if l.Rate > 0 && l.Burst == 0 {
			l.Burst = max(1, int(l.Rate))
		}
		return l, nil
	})
	if errors.Is(err, errUnknownType) {
		list, lerr := s.store.TypeList(ctx)
		if lerr != nil {
			return model.TypeLimit{}, fmt.Errorf("list types: %w", lerr)
		}
		return model.TypeLimit{}, s.unknownType("type", set.Type, list)
	}
	if err != nil {
		return model.TypeLimit{}, fmt.Errorf("put type %s: %w", set.Type, err)
	}
	s.wake.Signal(l.Type) // a raised limit may unblock waiting claims
	return l, nil
}

// errUnknownType stops a type update of a type nobody registered.
var errUnknownType = errors.New("unknown job type")

// maxKnownListed caps the names an unknown-type error lists.
const maxKnownListed = 30

// unknownType is the error for a job type nobody registered, naming the
// known ones (built in and registered, from list) so a typo is seen at
// once.
func (s *Service) unknownType(field, name string, list []model.TypeLimit) error {
	known := make([]string, 0, len(s.builtins)+len(list))
	for n := range s.builtins {
		known = append(known, n)
	}
	for _, l := range list {
		if _, ok := s.builtins[l.Type]; !ok {
			known = append(known, l.Type)
		}
	}
	slices.Sort(known)
	more := ""
	if len(known) > maxKnownListed {
		more = fmt.Sprintf(" and %d more", len(known)-maxKnownListed)
		known = known[:maxKnownListed]
	}
	return model.Invalid(field, "unknown job type %q; known: %s%s", name, strings.Join(known, ", "), more)
}

// Types lists the registered types with their limits, built-ins included.
func (s *Service) Types(ctx context.Context) ([]model.TypeLimit, error) {
	list, err := s.store.TypeList(ctx)
	if err != nil {
		return nil, fmt.Errorf("list types: %w", err)
	}
	have := make(map[string]bool, len(list))
	for _, t := range list {
		have[t.Type] = true
	}
	for name := range s.builtins {
		if !have[name] {
			list = append(list, model.TypeLimit{Type: name})
		}
	}
	sortTypes(list)
	return list, nil
}

// ProcessorSeen records a processor's presence.
func (s *Service) ProcessorSeen(ctx context.Context, p model.Processor) error {
	if p.ID == "" || len(p.ID) > 200 {
		return model.Invalid("id", "required, at most 200 characters")
	}
	// The same labels come with every claim, which checks them so too.
	if err := checkLabels("labels", p.Labels); err != nil {
		return err
	}
	for t, n := range p.Quota {
		if err := jobtype.ValidName(t); err != nil {
			return model.Invalid("quota", "%v", err)
		}
		if n < 1 {
			return model.Invalid("quota."+t, "must be at least 1, got %d", n)
		}
	}
	for t, reason := range p.Unavailable {
		if err := jobtype.ValidName(t); err != nil {
			return model.Invalid("unavailable", "%v", err)
		}
		if len(reason) > 1000 {
			return model.Invalid("unavailable."+t, "reason longer than 1000 bytes")
		}
	}
	for t, n := range p.Used {
		if err := jobtype.ValidName(t); err != nil {
			return model.Invalid("used", "%v", err)
		}
		if n < 0 {
			return model.Invalid("used."+t, "must not be negative, got %d", n)
		}
	}
	if len(p.Version) > 100 {
		return model.Invalid("version", "at most 100 characters")
	}
	if p.Every < 0 || time.Duration(p.Every) > model.MaxPresenceEvery {
		return model.Invalid("every", "want a positive interval of at most %s, got %s", model.MaxPresenceEvery, time.Duration(p.Every))
	}
	if err := s.store.ProcessorUpsert(ctx, p, s.clock.Now()); err != nil {
		return fmt.Errorf("processor %s: %w", p.ID, err)
	}
	return nil
}

// ProcessorStale is how long a processor stays listed after its last call.
const ProcessorStale = time.Minute

// Processors lists the processors seen recently, those silent for
// longer than their GoneAfter marked Gone.
func (s *Service) Processors(ctx context.Context) ([]model.Processor, error) {
	now := s.clock.Now()
	list, err := s.store.ProcessorList(ctx, now.Add(-ProcessorStale))
	if err != nil {
		return nil, fmt.Errorf("list processors: %w", err)
	}
	if list == nil {
		list = []model.Processor{}
	}
	for i := range list {
		list[i].Gone = now.Sub(list[i].LastSeen) > list[i].GoneAfter()
	}
	return list, nil
}

// Counts counts jobs per state, each up to model.CountCap (as the lists
// count their matches), and names the states that have more: a count of
// everything would read every row of a big history on each poll of the
// monitor. States with none are absent. (The exact counts, for the
// metrics, are the store's JobCounts.)
func (s *Service) Counts(ctx context.Context) (map[model.JobState]int, []model.JobState, error) {
	counts := map[model.JobState]int{}
	var capped []model.JobState
	for _, st := range []model.JobState{model.JobQueued, model.JobRunning, model.JobSucceeded, model.JobFailed, model.JobCanceled} {
		p, err := s.store.JobList(ctx, model.JobFilter{States: []model.JobState{st}, Limit: 1})
		if err != nil {
			return nil, nil, fmt.Errorf("count jobs: %w", err)
		}
		if p.Total > 0 {
			counts[st] = p.Total
		}
		if p.TotalCapped {
			capped = append(capped, st)
		}
	}
	return counts, capped, nil
}

func sortTypes(list []model.TypeLimit) {
	slices.SortFunc(list, func(a, b model.TypeLimit) int { return strings.Compare(a.Type, b.Type) })
}

// Retry makes a failed or canceled job queued again for a new series of
// attempts (see store.RetryJob); the waiting claims of its type wake.
func (s *Service) Retry(ctx context.Context, id int64) (model.Job, error) {
	j, err := s.store.JobRetry(ctx, id, s.clock.Now())
	if err != nil {
		return j, fmt.Errorf("retry job %d: %w", id, err)
	}
	s.wake.Signal(j.Type)
	return j, nil
}
