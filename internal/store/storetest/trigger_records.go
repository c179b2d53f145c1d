package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/dpe-engine/dpe/internal/model"
	"github.com/dpe-engine/dpe/internal/store"
)

// testTriggerRecord covers Record: uniqueness by (trigger, key, action),
// the stored fields and LastEventAt.
func testTriggerRecord(t *testing.T, open TriggerOpener) {
	t.Run("Fields", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		full := model.TriggerRecord{
			Trigger: "in", Key: "created:a.wav@f1", Event: "created", Action: model.RecordStarted,
			InstanceID: 42, Instance: "folder/in/created/a.wav@f1", Reason: "why not", At: at(-time.Hour),
		}
		inTrigger(t, s, "in", at(time.Minute), func(tx store.TriggerTx) {
			wantRecord(t, tx, full, true)
			// At zero is now; the record belongs to the transaction's
			// trigger whatever r.Trigger says.
			wantRecord(t, tx, model.TriggerRecord{Key: "k2", Action: model.RecordSkipped}, true)
			wantRecord(t, tx, model.TriggerRecord{Trigger: "someone-else", Key: "k3", Action: model.RecordBaseline, At: at(2 * time.Minute)}, true)
		})
		sameRecords(t, "TriggerRecords", triggerRecords(t, s, "in", 10), []model.TriggerRecord{
			{Trigger: "in", Key: "k3", Action: model.RecordBaseline, At: at(2 * time.Minute)},
			{Trigger: "in", Key: "k2", Action: model.RecordSkipped, At: at(time.Minute)},
			full,
		})
		if got := triggerRecords(t, s, "someone-else", 10); len(got) != 0 {
			t.Errorf("records of someone-else: %+v, want none", got)
		}
	})

	t.Run("Unique", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		r := func(trigger, key, action, reason string) model.TriggerRecord {
			return model.TriggerRecord{Trigger: trigger, Key: key, Action: action, Reason: reason, At: at(time.Minute)}
		}
		inTrigger(t, s, "a", at(time.Minute), func(tx store.TriggerTx) {
			wantRecord(t, tx, r("a", "k", model.RecordStarted, "first"), true)
			// Same trigger, key and action: not stored, even with other
			// fields, in the same transaction...
			wantRecord(t, tx, r("a", "k", model.RecordStarted, "second"), false)
			// ... while another action or key is another record.
			wantRecord(t, tx, r("a", "k", model.RecordExisting, ""), true)
			wantRecord(t, tx, r("a", "k2", model.RecordStarted, ""), true)
		})
		inTrigger(t, s, "a", at(2*time.Minute), func(tx store.TriggerTx) {
			wantRecord(t, tx, r("a", "k", model.RecordStarted, "third"), false)
		})
		inTrigger(t, s, "b", at(2*time.Minute), func(tx store.TriggerTx) {
			wantRecord(t, tx, r("b", "k", model.RecordStarted, "other trigger"), true)
		})
		sameRecords(t, "records of a", triggerRecords(t, s, "a", 10), []model.TriggerRecord{
			r("a", "k2", model.RecordStarted, ""),
			r("a", "k", model.RecordExisting, ""),
			r("a", "k", model.RecordStarted, "first"),
		})
	})

	t.Run("LastEventAt", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		inTrigger(t, s, "s", at(time.Minute), func(tx store.TriggerTx) {
			if err := tx.SetState([]byte(`{}`)); err != nil {
				t.Fatal(err)
			}
		})
		if got := getTrigger(t, s, "s").LastEventAt; got != nil {
			t.Fatalf("LastEventAt with no record = %v, want nil", *got)
		}
		// A stored record moves it to TriggerDo's now, whatever r.At says.
		inTrigger(t, s, "s", at(5*time.Minute), func(tx store.TriggerTx) {
			wantRecord(t, tx, model.TriggerRecord{Key: "k", Action: model.RecordStarted, At: at(time.Hour)}, true)
		})
		sameTimePtr(t, "LastEventAt after a stored record", getTrigger(t, s, "s").LastEventAt, at(5*time.Minute))
		// A repeat is not an event.
		inTrigger(t, s, "s", at(6*time.Minute), func(tx store.TriggerTx) {
			wantRecord(t, tx, model.TriggerRecord{Key: "k", Action: model.RecordStarted}, false)
		})
		tr := getTrigger(t, s, "s")
		sameTimePtr(t, "LastEventAt after a repeat", tr.LastEventAt, at(5*time.Minute))
		sameTime(t, "UpdatedAt after a repeat", tr.UpdatedAt, at(6*time.Minute))
	})
}

// testTriggerRecords covers TriggerRecords: newest first, limit, one
// trigger or all.
func testTriggerRecords(t *testing.T, open TriggerOpener) {
	t.Parallel()
	s := open(t)
	if got := triggerRecords(t, s, "", 10); len(got) != 0 {
		t.Fatalf("records of an empty store: %+v", got)
	}
	// Records of a and b interleaved, with At out of order: the order is
	// the order recorded, not At.
	var all []model.TriggerRecord
	for i := range 6 {
		name := []string{"a", "b"}[i%2]
		r := model.TriggerRecord{Trigger: name, Key: fmt.Sprintf("k%d", i), Action: model.RecordStarted,
			At: at(time.Duration(10-i) * time.Minute)}
		inTrigger(t, s, name, at(time.Duration(i)*time.Minute), func(tx store.TriggerTx) {
			wantRecord(t, tx, r, true)
		})
		all = append([]model.TriggerRecord{r}, all...)
	}
	only := func(name string) []model.TriggerRecord {
		var out []model.TriggerRecord
		for _, r := range all {
			if r.Trigger == name {
				out = append(out, r)
			}
		}
		return out
	}
	sameRecords(t, "all", triggerRecords(t, s, "", 10), all)
	sameRecords(t, "all, limit 4", triggerRecords(t, s, "", 4), all[:4])
	sameRecords(t, "a", triggerRecords(t, s, "a", 10), only("a"))
	sameRecords(t, "b, limit 2", triggerRecords(t, s, "b", 2), only("b")[:2])
	if got := triggerRecords(t, s, "unknown", 10); len(got) != 0 {
		t.Errorf("records of an unknown trigger: %+v", got)
	}
}
