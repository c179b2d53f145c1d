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

// TriggerEngine is an engine with trigger support: the trigger suite also
// uses the instance methods (to read, claim and end what TriggerDo
// created).
type TriggerEngine interface {
	store.Store
	store.TriggerStore
}

// TriggerOpener returns a fresh, empty, migrated TriggerEngine whose
// cleanup is registered on t.
type TriggerOpener func(t *testing.T) TriggerEngine

// RunTrigger runs the conformance suite of store.TriggerStore and
// store.TriggerTx against the engine behind open. Engines run it next to
// Run and RunWorkflow:
//
//	func TestTriggerConformance(t *testing.T) {
//		storetest.RunTrigger(t, func(t *testing.T) storetest.TriggerEngine { return openTestStore(t) })
//	}
//
// Beyond the doc comments of package store, the suite pins these rules:
//
//   - A trigger row is created by its first TriggerDo or TriggerSetError
//     with that call's kind, State {} and no error; later calls never
//     change its kind. A TriggerDo that rolls back (error or ErrRollback)
//     leaves no row behind either.
//   - TriggerDo sets UpdatedAt = now when it commits. TriggerSetError sets
//     UpdatedAt = now too. fn's error is returned so that errors.Is finds
//     it; ErrRollback is recognised with errors.Is (wrapped works too).
//   - Trigger() is the row as read when TriggerDo began: Mirrored counted
//     then, Active empty (the store knows nothing of standby leases).
//   - Concurrent TriggerDo calls on one trigger, its first use included,
//     are serialized: a read-modify-write of State loses no update.
//   - Mirror keys belong to one trigger. MirrorPut replaces fingerprint and
//     data (no data stores none) and sets SeenAt = now; MirrorTouch sets
//     SeenAt = now on existing keys and ignores missing ones; MirrorStale
//     returns entries with SeenAt strictly before the time, by key in byte
//     order, at most limit. Empty key lists are no-ops, and MirrorGet takes
//     any number of keys.
//   - TriggerTx.InstanceCreate behaves as InstanceStore.InstanceCreate
//     (existing, version 0, concurrency policy skip answering
//     model.ErrConflict) and the transaction stays usable after such a
//     conflict. Instance.Trigger reads back through every instance method.
//   - ActiveInstances counts pending and running instances whose Trigger
//     is this trigger, those created earlier in the same transaction
//     included.
//   - Record stores the record under the transaction's trigger (whatever
//     r.Trigger says), At = now when zero; a repeat of (trigger, key,
//     action) is not stored and leaves LastEventAt alone. A stored record
//     moves LastEventAt to TriggerDo's now, not to r.At.
//   - TriggerList sorts by name in byte order. TriggerRecords is newest
//     first (in the order recorded); an unknown trigger has none (no error).
//   - TriggerSetError with "" clears LastError and ErrorAt; TriggerDo
//     leaves them alone.
func RunTrigger(t *testing.T, open func(t *testing.T) TriggerEngine) {
	t.Helper()
	groups := []struct {
		name string
		run  func(t *testing.T, open TriggerOpener)
	}{
		{"TriggerDo", testTriggerDo},
		{"TriggerDoRollback", testTriggerDoRollback},
		{"TriggerDoConcurrent", testTriggerDoConcurrent},
		{"Mirror", testTriggerMirror},
		{"MirrorStale", testTriggerMirrorStale},
		{"MirrorLarge", testTriggerMirrorLarge},
		{"TriggerInstances", testTriggerInstances},
		{"ActiveInstances", testTriggerActiveInstances},
		{"Record", testTriggerRecord},
		{"TriggerRecords", testTriggerRecords},
		{"TriggerGetList", testTriggerGetList},
		{"TriggerSetError", testTriggerSetError},
	}
	for _, g := range groups {
		t.Run(g.name, func(t *testing.T) { g.run(t, open) })
	}
}

// triggerDo runs TriggerDo and fails the test on error.
func triggerDo(t *testing.T, s TriggerEngine, name, kind string, now time.Time, fn func(tx store.TriggerTx) error) {
	t.Helper()
	if err := s.TriggerDo(t.Context(), name, kind, now, fn); err != nil {
		t.Fatalf("TriggerDo(%s): %v", name, err)
	}
}

// inTrigger runs fn inside a committed TriggerDo of the schedule name at
// now, failing the test on any error fn reports through t.
func inTrigger(t *testing.T, s TriggerEngine, name string, now time.Time, fn func(tx store.TriggerTx)) {
	t.Helper()
	triggerDo(t, s, name, model.TriggerSchedule, now, func(tx store.TriggerTx) error {
		fn(tx)
		return nil
	})
}

// getTrigger runs TriggerGet and fails the test on error.
func getTrigger(t *testing.T, s TriggerEngine, name string) model.Trigger {
	t.Helper()
	tr, err := s.TriggerGet(t.Context(), name)
	if err != nil {
		t.Fatalf("TriggerGet(%s): %v", name, err)
	}
	return tr
}

// newTrigger is a trigger as its first use at now creates it.
func newTrigger(name, kind string, now time.Time) model.Trigger {
	return model.Trigger{Name: name, Kind: kind, State: json.RawMessage(`{}`), UpdatedAt: now}
}

// normTrigger returns tr in a form that compares equal across engines.
func normTrigger(tr model.Trigger) model.Trigger {
	tr.State = json.RawMessage(canonJSON(tr.State))
	tr.LastEventAt = normTime(tr.LastEventAt)
	tr.ErrorAt = normTime(tr.ErrorAt)
	tr.UpdatedAt = ms(tr.UpdatedAt)
	return tr
}

// sameTrigger fails unless got and want are the same trigger in every
// field.
func sameTrigger(t *testing.T, what string, got, want model.Trigger) {
	t.Helper()
	g, w := normTrigger(got), normTrigger(want)
	if !reflect.DeepEqual(g, w) {
		gb, _ := json.Marshal(g)
		wb, _ := json.Marshal(w)
		t.Errorf("%s:\n got  %s\n want %s", what, gb, wb)
	}
}

// normEntry returns e in a form that compares equal across engines.
func normEntry(e store.MirrorEntry) store.MirrorEntry {
	e.Data = json.RawMessage(canonJSON(e.Data))
	e.SeenAt = ms(e.SeenAt)
	return e
}

// sameEntries fails unless got and want are the same entries in the same
// order.
func sameEntries(t *testing.T, what string, got, want []store.MirrorEntry) {
	t.Helper()
	g, w := make([]store.MirrorEntry, len(got)), make([]store.MirrorEntry, len(want))
	for i, e := range got {
		g[i] = normEntry(e)
	}
	for i, e := range want {
		w[i] = normEntry(e)
	}
	if !reflect.DeepEqual(g, w) {
		gb, _ := json.Marshal(g)
		wb, _ := json.Marshal(w)
		t.Errorf("%s:\n got  %s\n want %s", what, gb, wb)
	}
}

// mirrorMap returns the entries of a MirrorGet answer sorted by key,
// checking that each is filed under its own key.
func mirrorMap(t *testing.T, m map[string]store.MirrorEntry) []store.MirrorEntry {
	t.Helper()
	out := make([]store.MirrorEntry, 0, len(m))
	for k, e := range m {
		if e.Key != k {
			t.Errorf("MirrorGet: entry %q filed under key %q", e.Key, k)
		}
		out = append(out, e)
	}
	slices.SortFunc(out, func(a, b store.MirrorEntry) int {
		switch {
		case a.Key < b.Key:
			return -1
		case a.Key > b.Key:
			return 1
		}
		return 0
	})
	return out
}

// mirrorAll returns the entries of keys that exist in the mirror of
// trigger name, by key, read in a TriggerDo at now.
func mirrorAll(t *testing.T, s TriggerEngine, name string, now time.Time, keys ...string) []store.MirrorEntry {
	t.Helper()
	var out []store.MirrorEntry
	inTrigger(t, s, name, now, func(tx store.TriggerTx) {
		m, err := tx.MirrorGet(keys)
		if err != nil {
			t.Fatalf("MirrorGet: %v", err)
		}
		out = mirrorMap(t, m)
	})
	return out
}

// mirrorEntry is a mirror entry as MirrorPut takes it.
func mirrorEntry(key, fp, data string) store.MirrorEntry {
	e := store.MirrorEntry{Key: key, Fingerprint: fp}
	if data != "" {
		e.Data = json.RawMessage(data)
	}
	return e
}

// seenAt is e as stored by a MirrorPut or MirrorTouch at now.
func seenAt(e store.MirrorEntry, now time.Time) store.MirrorEntry {
	e.SeenAt = now
	return e
}

// normRecord returns r in a form that compares equal across engines.
func normRecord(r model.TriggerRecord) model.TriggerRecord {
	r.At = ms(r.At)
	return r
}

// sameRecords fails unless got and want are the same records in the same
// order.
func sameRecords(t *testing.T, what string, got, want []model.TriggerRecord) {
	t.Helper()
	g, w := make([]model.TriggerRecord, len(got)), make([]model.TriggerRecord, len(want))
	for i, r := range got {
		g[i] = normRecord(r)
	}
	for i, r := range want {
		w[i] = normRecord(r)
	}
	if !reflect.DeepEqual(g, w) {
		gb, _ := json.MarshalIndent(g, "", " ")
		wb, _ := json.MarshalIndent(w, "", " ")
		t.Errorf("%s:\n got  %s\n want %s", what, gb, wb)
	}
}

// triggerRecords runs TriggerRecords and fails the test on error.
func triggerRecords(t *testing.T, s TriggerEngine, name string, limit int) []model.TriggerRecord {
	t.Helper()
	got, err := s.TriggerRecords(t.Context(), name, limit)
	if err != nil {
		t.Fatalf("TriggerRecords(%q, %d): %v", name, limit, err)
	}
	return got
}

// wantRecord runs tx.Record and fails the test on error or an unexpected
// stored.
func wantRecord(t *testing.T, tx store.TriggerTx, r model.TriggerRecord, wantStored bool) {
	t.Helper()
	stored, err := tx.Record(r)
	if err != nil {
		t.Fatalf("Record(%s %s): %v", r.Key, r.Action, err)
	}
	if stored != wantStored {
		t.Fatalf("Record(%s %s): stored %v, want %v", r.Key, r.Action, stored, wantStored)
	}
}

// txCreate runs tx.InstanceCreate and fails the test on error or an
// unexpected existing.
func txCreate(t *testing.T, tx store.TriggerTx, spec model.InstanceSpec, wantExisting bool) model.Instance {
	t.Helper()
	inst, existing, err := tx.InstanceCreate(spec)
	if err != nil {
		t.Fatalf("TriggerTx.InstanceCreate(%s): %v", spec.Name, err)
	}
	if existing != wantExisting {
		t.Fatalf("TriggerTx.InstanceCreate(%s): existing %v, want %v", spec.Name, existing, wantExisting)
	}
	return inst
}

// activeCount runs tx.ActiveInstances and fails the test on error.
func activeCount(t *testing.T, tx store.TriggerTx) int {
	t.Helper()
	n, err := tx.ActiveInstances()
	if err != nil {
		t.Fatalf("ActiveInstances: %v", err)
	}
	return n
}

// endInstance claims a live instance for a worker of its own and advances
// it to the final state at now.
func endInstance(t *testing.T, s TriggerEngine, inst model.Instance, state model.InstanceState, now time.Time) model.Instance {
	t.Helper()
	got := claimInst(t, s, store.InstanceClaimParams{
		Worker: "w.end", Templates: []string{inst.Template}, Default: 1000, LeaseTTL: leaseTTL, Now: now,
	})
	for _, c := range got {
		if c.ID == inst.ID {
			return advance(t, s, adv(c, state), now)
		}
	}
	t.Fatalf("claim by w.end did not return instance %d (got %v)", inst.ID, instIDs(got))
	return model.Instance{}
}
