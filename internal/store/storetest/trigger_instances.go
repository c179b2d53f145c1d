package storetest

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/dpe-engine/dpe/internal/model"
	"github.com/dpe-engine/dpe/internal/store"
)

// testTriggerInstances covers TriggerTx.InstanceCreate: InstanceCreate's
// semantics inside the trigger's transaction, with Trigger recorded.
func testTriggerInstances(t *testing.T, open TriggerOpener) {
	t.Run("CreateVisibleAfterCommit", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		spec := model.InstanceSpec{
			Template: "w", Version: 1, Name: "schedule/nightly/2026-11-25T02:00:00Z", Priority: 3,
			Args: json.RawMessage(`{"fire_time": "2026-11-25T02:00:00Z"}`), Trigger: "nightly",
		}
		var created model.Instance
		inTrigger(t, s, "nightly", at(time.Minute), func(tx store.TriggerTx) {
			created = txCreate(t, tx, spec, false)
			// A second create in the same transaction finds the first.
			again := txCreate(t, tx, spec, true)
			sameInstance(t, "second create in the transaction", again, created)
		})
		want := newInstance(created.ID, spec, at(time.Minute))
		want.Trigger = "nightly"
		sameInstance(t, "created", created, want)
		sameInstance(t, "InstanceGet", getInst(t, s, created.ID), want)
		byName, err := s.InstanceGetByName(t.Context(), spec.Name)
		if err != nil {
			t.Fatalf("InstanceGetByName: %v", err)
		}
		sameInstance(t, "InstanceGetByName", byName, want)
		page, err := s.InstanceList(t.Context(), model.InstanceFilter{})
		if err != nil || len(page.Items) != 1 {
			t.Fatalf("InstanceList: %+v, %v", page, err)
		}
		sameInstance(t, "InstanceList", page.Items[0], want)

		// Another copy of the trigger fires the same event later: existing.
		inTrigger(t, s, "nightly", at(2*time.Minute), func(tx store.TriggerTx) {
			again := txCreate(t, tx, spec, true)
			sameInstance(t, "create from a second TriggerDo", again, want)
		})
		// Claims and advances read it back with its trigger too.
		claimed := claimAll(t, s, "w1", at(3*time.Minute))
		if len(claimed) != 1 || claimed[0].Trigger != "nightly" {
			t.Fatalf("claimed %+v, want the instance with Trigger nightly", claimed)
		}
		ended := advance(t, s, adv(claimed[0], model.InstanceSucceeded), at(4*time.Minute))
		if ended.Trigger != "nightly" {
			t.Errorf("advanced instance Trigger = %q, want nightly", ended.Trigger)
		}
	})

	t.Run("CreateSemantics", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		putTemplate(t, s, tmpl("w", 0, "one"), T0, true)
		putTemplate(t, s, tmpl("w", 0, "two"), T0, true)
		// A live instance holding concurrency key k.
		createInst(t, s, model.InstanceSpec{Template: "w", Version: 1, Name: "holder", ConcurrencyKey: "k",
			ConcurrencyPolicy: model.ConcurrencySkip}, T0)
		inTrigger(t, s, "t", at(time.Minute), func(tx store.TriggerTx) {
			// Version 0 takes the latest stored version.
			latest := txCreate(t, tx, model.InstanceSpec{Template: "w", Name: "latest", Trigger: "t"}, false)
			if latest.Version != 2 {
				t.Errorf("Version = %d, want 2 (the latest)", latest.Version)
			}
			// Policy skip with the key busy is a conflict...
			_, _, err := tx.InstanceCreate(model.InstanceSpec{Template: "w", Version: 1, Name: "skipped", Trigger: "t",
				ConcurrencyKey: "k", ConcurrencyPolicy: model.ConcurrencySkip})
			wantErr(t, "create with a busy concurrency key", err, model.ErrConflict)
			// ... after which the transaction goes on, as the trigger
			// service records the skip and handles the next event.
			txCreate(t, tx, model.InstanceSpec{Template: "w", Version: 1, Name: "after-skip", Trigger: "t"}, false)
			wantRecord(t, tx, model.TriggerRecord{Key: "skipped", Action: model.RecordSkipped}, true)
		})
		for _, name := range []string{"latest", "after-skip"} {
			if in, err := s.InstanceGetByName(t.Context(), name); err != nil || in.Trigger != "t" {
				t.Errorf("InstanceGetByName(%s) = %+v, %v; want it with Trigger t", name, in, err)
			}
		}
		_, err := s.InstanceGetByName(t.Context(), "skipped")
		wantErr(t, "the skipped instance", err, model.ErrNotFound)
		if got := triggerRecords(t, s, "t", 10); len(got) != 1 {
			t.Errorf("records after the skip: %+v, want 1", got)
		}
	})

	t.Run("ExistingKeepsItsTrigger", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		// An instance started by hand (no trigger) and one by trigger a:
		// trigger b finds them as they are.
		manual := createInst(t, s, model.InstanceSpec{Template: "w", Version: 1, Name: "manual"}, T0)
		inTrigger(t, s, "a", at(time.Minute), func(tx store.TriggerTx) {
			txCreate(t, tx, model.InstanceSpec{Template: "w", Version: 1, Name: "by-a", Trigger: "a"}, false)
		})
		inTrigger(t, s, "b", at(2*time.Minute), func(tx store.TriggerTx) {
			got := txCreate(t, tx, model.InstanceSpec{Template: "w", Version: 1, Name: "manual", Trigger: "b"}, true)
			sameInstance(t, "manual instance found by b", got, manual)
			if got := txCreate(t, tx, model.InstanceSpec{Template: "w", Version: 1, Name: "by-a", Trigger: "b"}, true); got.Trigger != "a" {
				t.Errorf("instance of a found by b: Trigger %q, want a", got.Trigger)
			}
			if n := activeCount(t, tx); n != 0 {
				t.Errorf("b's ActiveInstances = %d, want 0", n)
			}
		})
	})
}

// testTriggerActiveInstances covers ActiveInstances: the non-final
// instances of this trigger only.
func testTriggerActiveInstances(t *testing.T, open TriggerOpener) {
	t.Parallel()
	s := open(t)
	spec := func(trigger, name string) model.InstanceSpec {
		return model.InstanceSpec{Template: "w-" + name, Version: 1, Name: name, Trigger: trigger}
	}
	var mine []model.Instance
	inTrigger(t, s, "s", at(time.Minute), func(tx store.TriggerTx) {
		if n := activeCount(t, tx); n != 0 {
			t.Errorf("ActiveInstances before any = %d, want 0", n)
		}
		for _, name := range []string{"s1", "s2", "s3", "s4"} {
			mine = append(mine, txCreate(t, tx, spec("s", name), false))
		}
		// The transaction's own instances count.
		if n := activeCount(t, tx); n != 4 {
			t.Errorf("ActiveInstances after creating 4 = %d, want 4", n)
		}
	})
	// Instances of another trigger and of none do not count.
	inTrigger(t, s, "other", at(time.Minute), func(tx store.TriggerTx) {
		txCreate(t, tx, spec("other", "o1"), false)
	})
	createInst(t, s, model.InstanceSpec{Template: "w-m", Version: 1, Name: "m1"}, at(time.Minute))

	// s1 runs (still active); s2 succeeds, s3 fails, s4 is canceled.
	claimed := claimInst(t, s, store.InstanceClaimParams{Worker: "w1", Templates: []string{"w-s1"}, Default: 10,
		LeaseTTL: leaseTTL, Now: at(2 * time.Minute)})
	if len(claimed) != 1 {
		t.Fatalf("claim of s1: %v", instIDs(claimed))
	}
	wantInstState(t, "s1", advance(t, s, adv(claimed[0], model.InstanceRunning), at(2*time.Minute)), model.InstanceRunning)
	endInstance(t, s, mine[1], model.InstanceSucceeded, at(2*time.Minute))
	endInstance(t, s, mine[2], model.InstanceFailed, at(2*time.Minute))
	if _, err := s.InstanceCancel(t.Context(), mine[3].ID, at(2*time.Minute)); err != nil {
		t.Fatalf("InstanceCancel: %v", err)
	}
	endInstance(t, s, mine[3], model.InstanceCanceled, at(3*time.Minute))

	inTrigger(t, s, "s", at(4*time.Minute), func(tx store.TriggerTx) {
		if n := activeCount(t, tx); n != 1 {
			t.Errorf("ActiveInstances with one running and three final = %d, want 1", n)
		}
	})
	inTrigger(t, s, "other", at(4*time.Minute), func(tx store.TriggerTx) {
		if n := activeCount(t, tx); n != 1 {
			t.Errorf("other's ActiveInstances = %d, want 1", n)
		}
	})
}
