package storetest

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/dpe-engine/dpe/internal/model"
	"github.com/dpe-engine/dpe/internal/store"
)

// at returns T0 plus d.
func at(d time.Duration) time.Time { return T0.Add(d) }

// ms truncates t to the precision every engine must keep.
func ms(t time.Time) time.Time { return t.Truncate(time.Millisecond).UTC() }

// insert creates jobs that must all be new.
func insert(t *testing.T, s store.Store, now time.Time, specs ...model.JobSpec) []model.Job {
	t.Helper()
	got, err := s.JobInsert(t.Context(), specs, now)
	if err != nil {
		t.Fatalf("JobInsert: %v", err)
	}
	if len(got) != len(specs) {
		t.Fatalf("JobInsert returned %d jobs for %d specs", len(got), len(specs))
	}
	jobs := make([]model.Job, len(got))
	for i, in := range got {
		if in.Existing {
			t.Fatalf("JobInsert[%d]: Existing for a new job", i)
		}
		jobs[i] = in.Job
	}
	return jobs
}

// insertN creates n default jobs of one type.
func insertN(t *testing.T, s store.Store, now time.Time, typ string, n int) []model.Job {
	t.Helper()
	specs := make([]model.JobSpec, n)
	for i := range specs {
		specs[i] = model.JobSpec{Type: typ}
	}
	return insert(t, s, now, specs...)
}

// claim runs JobClaim and fails the test on error.
func claim(t *testing.T, s store.Store, p store.ClaimParams) []model.Job {
	t.Helper()
	jobs, err := s.JobClaim(t.Context(), p)
	if err != nil {
		t.Fatalf("JobClaim: %v", err)
	}
	return jobs
}

// claimN claims up to n jobs of typ for proc with a 30 s lease.
func claimN(t *testing.T, s store.Store, typ, proc string, n int, now time.Time) []model.Job {
	t.Helper()
	return claim(t, s, store.ClaimParams{
		Processor: proc, Slots: map[string]int{typ: n}, LeaseTTL: 30 * time.Second, Now: now,
	})
}

// claimOne claims exactly one job of typ, failing otherwise.
func claimOne(t *testing.T, s store.Store, typ, proc string, now time.Time) model.Job {
	t.Helper()
	jobs := claimN(t, s, typ, proc, 1, now)
	if len(jobs) != 1 {
		t.Fatalf("claim %s at %v: got %d jobs, want 1", typ, now, len(jobs))
	}
	return jobs[0]
}

// get runs JobGet and fails the test on error.
func get(t *testing.T, s store.Store, id int64) model.Job {
	t.Helper()
	j, err := s.JobGet(t.Context(), id)
	if err != nil {
		t.Fatalf("JobGet(%d): %v", id, err)
	}
	return j
}

// complete runs JobComplete and fails the test on error.
func complete(t *testing.T, s store.Store, c model.Completion, now time.Time) model.Job {
	t.Helper()
	j, err := s.JobComplete(t.Context(), c, now)
	if err != nil {
		t.Fatalf("JobComplete(%d, epoch %d): %v", c.ID, c.Epoch, err)
	}
	return j
}

// cancel runs JobCancel and fails the test on error.
func cancel(t *testing.T, s store.Store, id int64, now time.Time) model.Job {
	t.Helper()
	j, err := s.JobCancel(t.Context(), id, now)
	if err != nil {
		t.Fatalf("JobCancel(%d): %v", id, err)
	}
	return j
}

// ids returns the ids of jobs in order.
func ids(jobs []model.Job) []int64 {
	out := make([]int64, len(jobs))
	for i, j := range jobs {
		out[i] = j.ID
	}
	return out
}

// sortedIDs returns the ids of jobs in ascending order.
func sortedIDs(jobs []model.Job) []int64 {
	out := ids(jobs)
	slices.Sort(out)
	return out
}

// wantErr fails unless errors.Is(err, target).
func wantErr(t *testing.T, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%s: got error %v, want %v", what, err, target)
	}
}

// sameTime fails unless got and want are the same instant at ms precision.
func sameTime(t *testing.T, what string, got, want time.Time) {
	t.Helper()
	if !ms(got).Equal(ms(want)) {
		t.Errorf("%s = %v, want %v", what, got, want)
	}
}

// sameTimePtr fails unless got is set and the same instant as want.
func sameTimePtr(t *testing.T, what string, got *time.Time, want time.Time) {
	t.Helper()
	if got == nil {
		t.Errorf("%s = nil, want %v", what, want)
		return
	}
	sameTime(t, what, *got, want)
}

// noTime fails unless got is nil.
func noTime(t *testing.T, what string, got *time.Time) {
	t.Helper()
	if got != nil {
		t.Errorf("%s = %v, want nil", what, *got)
	}
}

// canonJSON re-encodes a JSON document so that documents equal in meaning
// compare equal (engines may reorder keys or drop whitespace, as jsonb
// does). Empty and null both become empty.
func canonJSON(raw json.RawMessage) string {
	if len(bytes.TrimSpace(raw)) == 0 {
		return ""
	}
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return "invalid JSON: " + string(raw)
	}
	if v == nil {
		return ""
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// sameJSON fails unless got and want are equal JSON documents.
func sameJSON(t *testing.T, what string, got, want json.RawMessage) {
	t.Helper()
	if g, w := canonJSON(got), canonJSON(want); g != w {
		t.Errorf("%s = %s, want %s", what, got, want)
	}
}

// normJob returns j in a form that compares equal across engines: times in
// UTC at ms precision, JSON canonical, empty maps nil.
func normJob(j model.Job) model.Job {
	norm := func(p *time.Time) *time.Time {
		if p == nil {
			return nil
		}
		v := ms(*p)
		return &v
	}
	j.Params = json.RawMessage(canonJSON(j.Params))
	j.Result = json.RawMessage(canonJSON(j.Result))
	if len(j.Selector) == 0 {
		j.Selector = nil
	}
	j.LeaseUntil = norm(j.LeaseUntil)
	j.StartedAt = norm(j.StartedAt)
	j.FinishedAt = norm(j.FinishedAt)
	j.RunAfter = ms(j.RunAfter)
	j.CreatedAt = ms(j.CreatedAt)
	j.UpdatedAt = ms(j.UpdatedAt)
	return j
}

// sameJob fails unless got and want are the same job in every field.
func sameJob(t *testing.T, what string, got, want model.Job) {
	t.Helper()
	g, w := normJob(got), normJob(want)
	if !reflect.DeepEqual(g, w) {
		gb, _ := json.Marshal(g)
		wb, _ := json.Marshal(w)
		t.Errorf("%s:\n got  %s\n want %s", what, gb, wb)
	}
}

// wantState fails unless j is in state want.
func wantState(t *testing.T, what string, j model.Job, want model.JobState) {
	t.Helper()
	if j.State != want {
		t.Fatalf("%s: state %q, want %q (job %+v)", what, j.State, want, j)
	}
}
