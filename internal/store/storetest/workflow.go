package storetest

import (
	"encoding/json"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/dpe-engine/dpe/internal/model"
	"github.com/dpe-engine/dpe/internal/store"
)

// WorkflowOpener returns a fresh, empty, migrated store with workflow
// support whose cleanup is registered on t.
type WorkflowOpener func(t *testing.T) store.WorkflowStore

// RunWorkflow runs the conformance suite of store.TemplateStore and
// store.InstanceStore, and the wake-ups the job methods owe to workflow
// instances, against the engine behind open. Engines run it next to Run:
//
//	func TestWorkflowConformance(t *testing.T) {
//		storetest.RunWorkflow(t, func(t *testing.T) store.WorkflowStore { return openTestStore(t) })
//	}
//
// Beyond the doc comments of package store, the suite pins these rules:
//
//   - Names (templates, step paths) sort in byte order (PostgreSQL: COLLATE "C").
//   - TemplatePut compares Canonical byte for byte with the latest version;
//     an explicit version that exists answers with it (same content,
//     created false) or model.ErrConflict (other content). TemplateDelete
//     of an unknown name is model.ErrNotFound.
//   - The store does not check that an instance's template exists (the
//     service does); Version 0 resolves to the latest stored version.
//     Missing Args are stored as {}. A new instance is pending and due
//     (WakeAt = now), Epoch 0, WakeSeq 0.
//   - An instance is held by the worker named in Worker, even after its
//     lease expired, until another worker claims it (lease_until < now),
//     it is released or it ends. A claim by the holder keeps the epoch;
//     any other claim, the holder's own after a release included, is
//     Epoch+1. Claims set UpdatedAt and never WakeAt.
//   - Claim: Slots[t] (else Default) caps new instances per template;
//     Templates filters held ones too; Limit <= 0 means no cap. A queued
//     instance whose cancel was asked is not passed over (a worker can
//     then cancel it at once instead of leaving it pending).
//   - Heartbeat answers the lost ids in the order asked.
//   - Advance of a missing instance is model.ErrNotFound. A job or child
//     whose step is not in Steps gets its id written into the stored step
//     of that path, if any. Cancels of missing or final jobs and children
//     are ignored. A cancel the advance makes itself is not an event that
//     keeps the instance due. Vars, Output and Error are stored as given.
//   - Every transition of a workflow job into a final state (JobComplete,
//     JobRescue, JobCancel, JobRelease of a job whose cancel was asked)
//     wakes its instance when that is not final: WakeAt = now, WakeSeq+1.
//     A retry does not.
//   - InstanceCancel and cancel of children wake the instance (WakeSeq+1).
//   - InstanceList: newest first, Limit 0 means 100.
//   - InstancePurge deletes final instances with FinishedAt < before, with
//     their steps and every job of theirs.
//   - Log lines: an instance's log holds its own lines and its jobs', in
//     Seq order; each owner keeps MaxLogLines and one marker counting the
//     dropped ones; they are purged with their instance or job.
func RunWorkflow(t *testing.T, open func(t *testing.T) store.WorkflowStore) {
	t.Helper()
	groups := []struct {
		name string
		run  func(t *testing.T, open WorkflowOpener)
	}{
		{"TemplatePut", testTemplatePut},
		{"TemplateGet", testTemplateGet},
		{"TemplateList", testTemplateList},
		{"TemplateDelete", testTemplateDelete},
		{"InstanceCreate", testInstanceCreate},
		{"InstanceConcurrencyKey", testInstanceConcurrencyKey},
		{"InstanceRead", testInstanceRead},
		{"InstanceList", testInstanceList},
		{"InstanceClaim", testInstanceClaim},
		{"InstanceClaimSlots", testInstanceClaimSlots},
		{"InstanceHeartbeat", testInstanceHeartbeat},
		{"InstanceRelease", testInstanceRelease},
		{"InstanceAdvance", testInstanceAdvance},
		{"InstanceAdvanceWork", testInstanceAdvanceWork},
		{"InstanceAdvanceMany", testInstanceAdvanceMany},
		{"InstanceDetails", testInstanceDetails},
		{"InstanceCreateMany", testInstanceCreateMany},
		{"InstanceWake", testInstanceWake},
		{"InstanceCancel", testInstanceCancel},
		{"InstanceRetry", testInstanceRetry},
		{"InstanceSetPriority", testInstanceSetPriority},
		{"InstancePurge", testInstancePurge},
		{"Logs", testLogs},
	}
	for _, g := range groups {
		t.Run(g.name, func(t *testing.T) { g.run(t, open) })
	}
}

// leaseTTL is the instance lease of the helpers.
const leaseTTL = 30 * time.Second

// createInst creates an instance that must be new.
func createInst(t *testing.T, s store.WorkflowStore, spec model.InstanceSpec, now time.Time) model.Instance {
	t.Helper()
	inst, existing, err := s.InstanceCreate(t.Context(), spec, now)
	if err != nil {
		t.Fatalf("InstanceCreate(%s): %v", spec.Name, err)
	}
	if existing {
		t.Fatalf("InstanceCreate(%s): existing for a new name", spec.Name)
	}
	return inst
}

// getInst runs InstanceGet and fails the test on error.
func getInst(t *testing.T, s store.WorkflowStore, id int64) model.Instance {
	t.Helper()
	inst, err := s.InstanceGet(t.Context(), id)
	if err != nil {
		t.Fatalf("InstanceGet(%d): %v", id, err)
	}
	return inst
}

// claimInst runs InstanceClaim and fails the test on error.
func claimInst(t *testing.T, s store.WorkflowStore, p store.InstanceClaimParams) []model.Instance {
	t.Helper()
	got, err := s.InstanceClaim(t.Context(), p)
	if err != nil {
		t.Fatalf("InstanceClaim(%s): %v", p.Worker, err)
	}
	return got
}

// claimAll claims every due instance the worker may take, with ample slots
// and a leaseTTL lease.
func claimAll(t *testing.T, s store.WorkflowStore, worker string, now time.Time) []model.Instance {
	t.Helper()
	return claimInst(t, s, store.InstanceClaimParams{Worker: worker, Default: 1000, LeaseTTL: leaseTTL, Now: now})
}

// holdInst creates an instance and leases it to worker at now. No other
// instance of its template may be due for worker: the claim must return
// exactly this one.
func holdInst(t *testing.T, s store.WorkflowStore, spec model.InstanceSpec, worker string, now time.Time) model.Instance {
	t.Helper()
	inst := createInst(t, s, spec, now)
	got := claimInst(t, s, store.InstanceClaimParams{
		Worker: worker, Templates: []string{spec.Template}, Default: 1000, LeaseTTL: leaseTTL, Now: now,
	})
	if !slices.Equal(instIDs(got), []int64{inst.ID}) {
		t.Fatalf("claim of new instance %d by %s returned %v", inst.ID, worker, instIDs(got))
	}
	return got[0]
}

// adv starts an advance of a held instance to state, under its lease and
// on its WakeSeq.
func adv(inst model.Instance, state model.InstanceState) model.Advance {
	return model.Advance{InstanceID: inst.ID, Worker: inst.Worker, Epoch: inst.Epoch, WakeSeq: inst.WakeSeq, State: state}
}

// advance runs InstanceAdvance and fails the test on error.
func advance(t *testing.T, s store.WorkflowStore, a model.Advance, now time.Time) model.Instance {
	t.Helper()
	inst, err := s.InstanceAdvance(t.Context(), a, now)
	if err != nil {
		t.Fatalf("InstanceAdvance(%d, %s epoch %d): %v", a.InstanceID, a.Worker, a.Epoch, err)
	}
	return inst
}

// parkInst creates an instance, leases it to worker and advances it to
// running with no WakeAt: it waits for an event, held by worker.
func parkInst(t *testing.T, s store.WorkflowStore, spec model.InstanceSpec, worker string, now time.Time) model.Instance {
	t.Helper()
	return advance(t, s, adv(holdInst(t, s, spec, worker, now), model.InstanceRunning), now)
}

// endInst creates an instance, leases it to worker and advances it to the
// final state at now.
func endInst(t *testing.T, s store.WorkflowStore, spec model.InstanceSpec, state model.InstanceState, now time.Time) model.Instance {
	t.Helper()
	return advance(t, s, adv(holdInst(t, s, spec, "w.end", now), state), now)
}

// instSteps runs InstanceSteps and fails the test on error.
func instSteps(t *testing.T, s store.WorkflowStore, id int64) []model.Step {
	t.Helper()
	steps, err := s.InstanceSteps(t.Context(), id)
	if err != nil {
		t.Fatalf("InstanceSteps(%d): %v", id, err)
	}
	return steps
}

// stepAt returns the stored step of path, failing when there is none.
func stepAt(t *testing.T, s store.WorkflowStore, id int64, path string) model.Step {
	t.Helper()
	for _, st := range instSteps(t, s, id) {
		if st.Path == path {
			return st
		}
	}
	t.Fatalf("instance %d has no step %q", id, path)
	return model.Step{}
}

// instIDs returns the ids of instances in order.
func instIDs(list []model.Instance) []int64 {
	out := make([]int64, len(list))
	for i, inst := range list {
		out[i] = inst.ID
	}
	return out
}

// normTime returns p at ms precision in UTC.
func normTime(p *time.Time) *time.Time {
	if p == nil {
		return nil
	}
	v := ms(*p)
	return &v
}

// normInstance returns inst in a form that compares equal across engines.
func normInstance(inst model.Instance) model.Instance {
	inst.Args = json.RawMessage(canonJSON(inst.Args))
	inst.Vars = json.RawMessage(canonJSON(inst.Vars))
	inst.Output = json.RawMessage(canonJSON(inst.Output))
	if len(inst.Current) == 0 {
		inst.Current = nil
	}
	inst.LeaseUntil = normTime(inst.LeaseUntil)
	inst.WakeAt = normTime(inst.WakeAt)
	inst.StartedAt = normTime(inst.StartedAt)
	inst.FinishedAt = normTime(inst.FinishedAt)
	inst.CreatedAt = ms(inst.CreatedAt)
	inst.UpdatedAt = ms(inst.UpdatedAt)
	return inst
}

// sameInstance fails unless got and want are the same instance in every
// field.
func sameInstance(t *testing.T, what string, got, want model.Instance) {
	t.Helper()
	g, w := normInstance(got), normInstance(want)
	if !reflect.DeepEqual(g, w) {
		gb, _ := json.Marshal(g)
		wb, _ := json.Marshal(w)
		t.Errorf("%s:\n got  %s\n want %s", what, gb, wb)
	}
}

// normStep returns st in a form that compares equal across engines.
func normStep(st model.Step) model.Step {
	st.Result = json.RawMessage(canonJSON(st.Result))
	st.WakeAt = normTime(st.WakeAt)
	st.FinishedAt = normTime(st.FinishedAt)
	st.StartedAt = ms(st.StartedAt)
	return st
}

// sameSteps fails unless got and want are the same steps in the same order.
func sameSteps(t *testing.T, what string, got, want []model.Step) {
	t.Helper()
	g := make([]model.Step, len(got))
	for i, st := range got {
		g[i] = normStep(st)
	}
	w := make([]model.Step, len(want))
	for i, st := range want {
		w[i] = normStep(st)
	}
	if !reflect.DeepEqual(g, w) {
		gb, _ := json.Marshal(g)
		wb, _ := json.Marshal(w)
		t.Errorf("%s:\n got  %s\n want %s", what, gb, wb)
	}
}

// wantInstState fails unless inst is in state want.
func wantInstState(t *testing.T, what string, inst model.Instance, want model.InstanceState) {
	t.Helper()
	if inst.State != want {
		t.Fatalf("%s: state %q, want %q (instance %+v)", what, inst.State, want, inst)
	}
}

// wantWoken fails unless the instance was woken at now, wakeSeq being its
// count of events before.
func wantWoken(t *testing.T, what string, inst model.Instance, wakeSeq int64, now time.Time) {
	t.Helper()
	if inst.WakeSeq != wakeSeq+1 {
		t.Errorf("%s: WakeSeq %d, want %d", what, inst.WakeSeq, wakeSeq+1)
	}
	sameTimePtr(t, what+": WakeAt", inst.WakeAt, now)
}

// wantNotWoken fails unless the instance still has WakeSeq wakeSeq and no
// WakeAt.
func wantNotWoken(t *testing.T, what string, inst model.Instance, wakeSeq int64) {
	t.Helper()
	if inst.WakeSeq != wakeSeq {
		t.Errorf("%s: WakeSeq %d, want %d", what, inst.WakeSeq, wakeSeq)
	}
	noTime(t, what+": WakeAt", inst.WakeAt)
}

// tp returns a pointer to t.
func tp(t time.Time) *time.Time { return &t }
