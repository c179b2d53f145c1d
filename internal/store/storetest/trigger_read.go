package storetest

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/dpe-engine/dpe/internal/model"
	"github.com/dpe-engine/dpe/internal/store"
)

// testTriggerGetList covers TriggerGet and TriggerList with their Mirrored
// counts.
func testTriggerGetList(t *testing.T, open TriggerOpener) {
	t.Parallel()
	s := open(t)
	_, err := s.TriggerGet(t.Context(), "nope")
	wantErr(t, "TriggerGet of an unknown trigger", err, model.ErrNotFound)
	list, err := s.TriggerList(t.Context())
	if err != nil || len(list) != 0 {
		t.Fatalf("TriggerList of an empty store: %+v, %v", list, err)
	}

	// Names in an order that is not byte order, with mirrors of 3, 0 and 1
	// entries (and an error on one, a record on another).
	want := map[string]model.Trigger{}
	for i, tc := range []struct {
		name, kind string
		mirror     int
	}{
		{"b", model.TriggerFolder, 3},
		{"a", model.TriggerSchedule, 0},
		{"C", model.TriggerTable, 1},
	} {
		now := at(time.Duration(i+1) * time.Minute)
		triggerDo(t, s, tc.name, tc.kind, now, func(tx store.TriggerTx) error {
			var entries []store.MirrorEntry
			for j := range tc.mirror {
				entries = append(entries, mirrorEntry(fmt.Sprintf("k%d", j), "f", ""))
			}
			if err := tx.MirrorPut(entries); err != nil {
				return err
			}
			return tx.SetState(json.RawMessage(fmt.Sprintf(`{"name": %q}`, tc.name)))
		})
		tr := newTrigger(tc.name, tc.kind, now)
		tr.State, tr.Mirrored = json.RawMessage(fmt.Sprintf(`{"name": %q}`, tc.name)), tc.mirror
		want[tc.name] = tr
	}
	inTrigger(t, s, "a", at(time.Hour), func(tx store.TriggerTx) {
		wantRecord(t, tx, model.TriggerRecord{Key: "k", Action: model.RecordStarted}, true)
	})
	a := want["a"]
	a.LastEventAt, a.UpdatedAt = tp(at(time.Hour)), at(time.Hour)
	want["a"] = a
	if err := s.TriggerSetError(t.Context(), "b", model.TriggerFolder, "disk gone", at(2*time.Hour)); err != nil {
		t.Fatalf("TriggerSetError: %v", err)
	}
	b := want["b"]
	b.LastError, b.ErrorAt, b.UpdatedAt = "disk gone", tp(at(2*time.Hour)), at(2*time.Hour)
	want["b"] = b

	for name, w := range want {
		sameTrigger(t, "TriggerGet("+name+")", getTrigger(t, s, name), w)
	}
	list, err = s.TriggerList(t.Context())
	if err != nil {
		t.Fatalf("TriggerList: %v", err)
	}
	order := []string{"C", "a", "b"} // byte order
	if len(list) != len(order) {
		t.Fatalf("TriggerList returned %d triggers, want %d", len(list), len(order))
	}
	for i, name := range order {
		sameTrigger(t, fmt.Sprintf("TriggerList[%d]", i), list[i], want[name])
	}
}

// testTriggerSetError covers TriggerSetError: set, clear, and the row it
// creates for a trigger not used yet.
func testTriggerSetError(t *testing.T, open TriggerOpener) {
	t.Run("CreatesRow", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		// A watcher whose folder is missing reports before its first
		// observation: the row exists from then on, with its kind.
		if err := s.TriggerSetError(t.Context(), "in", model.TriggerFolder, "no such folder", at(time.Minute)); err != nil {
			t.Fatalf("TriggerSetError: %v", err)
		}
		want := newTrigger("in", model.TriggerFolder, at(time.Minute))
		want.LastError, want.ErrorAt = "no such folder", tp(at(time.Minute))
		sameTrigger(t, "after TriggerSetError", getTrigger(t, s, "in"), want)
		// TriggerDo works on it and leaves the error alone.
		triggerDo(t, s, "in", model.TriggerFolder, at(2*time.Minute), func(tx store.TriggerTx) error {
			sameTrigger(t, "Trigger()", tx.Trigger(), want)
			return tx.SetState(json.RawMessage(`{"x": 1}`))
		})
		want.State, want.UpdatedAt = json.RawMessage(`{"x": 1}`), at(2*time.Minute)
		sameTrigger(t, "after TriggerDo", getTrigger(t, s, "in"), want)
	})

	t.Run("ClearCreatesRow", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		if err := s.TriggerSetError(t.Context(), "t", model.TriggerTable, "", at(time.Minute)); err != nil {
			t.Fatalf("TriggerSetError: %v", err)
		}
		sameTrigger(t, "after clearing an unknown trigger", getTrigger(t, s, "t"), newTrigger("t", model.TriggerTable, at(time.Minute)))
	})

	t.Run("SetReplaceClear", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		triggerDo(t, s, "s", model.TriggerSchedule, at(time.Minute), func(tx store.TriggerTx) error {
			if err := tx.MirrorPut([]store.MirrorEntry{mirrorEntry("k", "f", "")}); err != nil {
				return err
			}
			if _, err := tx.Record(model.TriggerRecord{Key: "k", Action: model.RecordStarted}); err != nil {
				return err
			}
			return tx.SetState(json.RawMessage(`{"last": "x"}`))
		})
		want := newTrigger("s", model.TriggerSchedule, at(time.Minute))
		want.State, want.Mirrored, want.LastEventAt = json.RawMessage(`{"last": "x"}`), 1, tp(at(time.Minute))

		// Kind, state, mirror and LastEventAt stay as they are.
		set := func(msg string, now time.Time) {
			t.Helper()
			if err := s.TriggerSetError(t.Context(), "s", model.TriggerTable, msg, now); err != nil {
				t.Fatalf("TriggerSetError(%q): %v", msg, err)
			}
		}
		set("bad cron", at(2*time.Minute))
		want.LastError, want.ErrorAt, want.UpdatedAt = "bad cron", tp(at(2*time.Minute)), at(2*time.Minute)
		sameTrigger(t, "after set", getTrigger(t, s, "s"), want)

		set("still bad", at(3*time.Minute))
		want.LastError, want.ErrorAt, want.UpdatedAt = "still bad", tp(at(3*time.Minute)), at(3*time.Minute)
		sameTrigger(t, "after a second set", getTrigger(t, s, "s"), want)

		set("", at(4*time.Minute))
		want.LastError, want.ErrorAt, want.UpdatedAt = "", nil, at(4*time.Minute)
		sameTrigger(t, "after clear", getTrigger(t, s, "s"), want)
	})
}
