package storetest

import (
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/dpe-engine/dpe/internal/model"
	"github.com/dpe-engine/dpe/internal/store"
)

// testTriggerDo covers the trigger row TriggerDo creates and updates, and
// SetState.
func testTriggerDo(t *testing.T, open TriggerOpener) {
	t.Run("FirstUse", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		_, err := s.TriggerGet(t.Context(), "nightly")
		wantErr(t, "TriggerGet before first use", err, model.ErrNotFound)

		calls := 0
		triggerDo(t, s, "nightly", model.TriggerSchedule, at(time.Minute), func(tx store.TriggerTx) error {
			calls++
			sameTrigger(t, "Trigger() at first use", tx.Trigger(), newTrigger("nightly", model.TriggerSchedule, at(time.Minute)))
			return nil
		})
		if calls != 1 {
			t.Fatalf("fn ran %d times, want 1", calls)
		}
		sameTrigger(t, "TriggerGet after first use", getTrigger(t, s, "nightly"),
			newTrigger("nightly", model.TriggerSchedule, at(time.Minute)))
	})

	t.Run("UpdatedAtAndKind", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		triggerDo(t, s, "in", model.TriggerFolder, at(time.Minute), func(store.TriggerTx) error { return nil })
		// A later call with another kind changes nothing but UpdatedAt: the
		// kind is the one of the row's creation.
		triggerDo(t, s, "in", model.TriggerTable, at(2*time.Minute), func(tx store.TriggerTx) error {
			if got := tx.Trigger().Kind; got != model.TriggerFolder {
				t.Errorf("Trigger().Kind = %q, want %q", got, model.TriggerFolder)
			}
			return nil
		})
		sameTrigger(t, "after a second TriggerDo", getTrigger(t, s, "in"),
			newTrigger("in", model.TriggerFolder, at(2*time.Minute)))
	})

	t.Run("SetState", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		first := json.RawMessage(`{"last": "2026-11-25T02:00:00Z", "passes": {"p1": 3}}`)
		triggerDo(t, s, "s", model.TriggerSchedule, at(time.Minute), func(tx store.TriggerTx) error {
			return tx.SetState(first)
		})
		want := newTrigger("s", model.TriggerSchedule, at(time.Minute))
		want.State = first
		sameTrigger(t, "after SetState", getTrigger(t, s, "s"), want)

		// The next transaction sees it; a second SetState replaces it whole
		// (no merge), and the last one of a transaction wins.
		triggerDo(t, s, "s", model.TriggerSchedule, at(2*time.Minute), func(tx store.TriggerTx) error {
			sameJSON(t, "Trigger().State", tx.Trigger().State, first)
			if err := tx.SetState(json.RawMessage(`{"n": 1}`)); err != nil {
				return err
			}
			return tx.SetState(json.RawMessage(`{"n": 2}`))
		})
		want.State, want.UpdatedAt = json.RawMessage(`{"n": 2}`), at(2*time.Minute)
		sameTrigger(t, "after a second SetState", getTrigger(t, s, "s"), want)
	})

	t.Run("TriggersAreSeparate", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		triggerDo(t, s, "a", model.TriggerSchedule, at(time.Minute), func(tx store.TriggerTx) error {
			return tx.SetState(json.RawMessage(`{"who": "a"}`))
		})
		triggerDo(t, s, "b", model.TriggerTable, at(2*time.Minute), func(tx store.TriggerTx) error {
			sameTrigger(t, "b at first use", tx.Trigger(), newTrigger("b", model.TriggerTable, at(2*time.Minute)))
			return nil
		})
		want := newTrigger("a", model.TriggerSchedule, at(time.Minute))
		want.State = json.RawMessage(`{"who": "a"}`)
		sameTrigger(t, "a", getTrigger(t, s, "a"), want)
	})
}

// errBoom is the error the rollback tests return from fn.
var errBoom = errors.New("boom")

// testTriggerDoRollback covers fn's error and ErrRollback: everything the
// transaction did is undone, the trigger row of a first use included.
func testTriggerDoRollback(t *testing.T, open TriggerOpener) {
	for _, tc := range []struct {
		name    string
		ret     error
		wantErr error // nil: TriggerDo must succeed
	}{
		{"Error", errBoom, errBoom},
		{"WrappedError", fmt.Errorf("observe: %w", errBoom), errBoom},
		{"ErrRollback", store.ErrRollback, nil},
		{"WrappedErrRollback", fmt.Errorf("dry run: %w", store.ErrRollback), nil},
	} {
		// check runs a transaction that changes everything it can, then
		// returns tc.ret.
		check := func(t *testing.T, s TriggerEngine, name string, now time.Time) {
			t.Helper()
			err := s.TriggerDo(t.Context(), name, model.TriggerFolder, now, func(tx store.TriggerTx) error {
				if err := tx.SetState(json.RawMessage(`{"changed": true}`)); err != nil {
					return err
				}
				if err := tx.MirrorPut([]store.MirrorEntry{mirrorEntry("new", "f1", ""), mirrorEntry("kept", "f2", "")}); err != nil {
					return err
				}
				if err := tx.MirrorTouch([]string{"touched"}); err != nil {
					return err
				}
				if err := tx.MirrorDelete([]string{"deleted"}); err != nil {
					return err
				}
				if _, _, err := tx.InstanceCreate(model.InstanceSpec{Template: "w", Version: 1, Name: name + "/rolled-back", Trigger: name}); err != nil {
					return err
				}
				if _, err := tx.Record(model.TriggerRecord{Trigger: name, Key: "k-rolled-back", Action: model.RecordStarted, At: now}); err != nil {
					return err
				}
				return tc.ret
			})
			if tc.wantErr == nil && err != nil {
				t.Fatalf("TriggerDo returning %v: %v, want nil", tc.ret, err)
			}
			if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Fatalf("TriggerDo returning %v: %v, want %v", tc.ret, err, tc.wantErr)
			}
		}

		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := open(t)
			// Existing state: a trigger with a mirror, an instance and a
			// record.
			triggerDo(t, s, "in", model.TriggerFolder, at(time.Minute), func(tx store.TriggerTx) error {
				if err := tx.SetState(json.RawMessage(`{"changed": false}`)); err != nil {
					return err
				}
				if err := tx.MirrorPut([]store.MirrorEntry{
					mirrorEntry("kept", "f0", `{"size": 1}`), mirrorEntry("touched", "f0", ""), mirrorEntry("deleted", "f0", ""),
				}); err != nil {
					return err
				}
				txCreate(t, tx, model.InstanceSpec{Template: "w", Version: 1, Name: "in/before", Trigger: "in"}, false)
				wantRecord(t, tx, model.TriggerRecord{Trigger: "in", Key: "k0", Action: model.RecordStarted, At: at(time.Minute)}, true)
				return nil
			})
			before := getTrigger(t, s, "in")
			recsBefore := triggerRecords(t, s, "", 100)

			check(t, s, "in", at(2*time.Minute))

			sameTrigger(t, "trigger after the rollback", getTrigger(t, s, "in"), before)
			sameRecords(t, "records after the rollback", triggerRecords(t, s, "", 100), recsBefore)
			_, err := s.InstanceGetByName(t.Context(), "in/rolled-back")
			wantErr(t, "instance created in the rolled-back transaction", err, model.ErrNotFound)
			if p, err := s.InstanceList(t.Context(), model.InstanceFilter{}); err != nil || p.Total != 1 {
				t.Errorf("instances after the rollback: %d, %v; want 1", p.Total, err)
			}
			sameEntries(t, "mirror after the rollback",
				mirrorAll(t, s, "in", at(3*time.Minute), "new", "kept", "touched", "deleted"),
				[]store.MirrorEntry{
					seenAt(mirrorEntry("deleted", "f0", ""), at(time.Minute)),
					seenAt(mirrorEntry("kept", "f0", `{"size": 1}`), at(time.Minute)),
					seenAt(mirrorEntry("touched", "f0", ""), at(time.Minute)),
				})
			// The record's key is free again: the rolled-back one was never
			// stored.
			inTrigger(t, s, "in", at(4*time.Minute), func(tx store.TriggerTx) {
				wantRecord(t, tx, model.TriggerRecord{Key: "k-rolled-back", Action: model.RecordStarted}, true)
			})
		})

		t.Run(tc.name+"AtFirstUse", func(t *testing.T) {
			t.Parallel()
			s := open(t)
			check(t, s, "fresh", at(time.Minute))
			_, err := s.TriggerGet(t.Context(), "fresh")
			wantErr(t, "TriggerGet after a rolled-back first use", err, model.ErrNotFound)
			list, err := s.TriggerList(t.Context())
			if err != nil || len(list) != 0 {
				t.Fatalf("TriggerList after a rolled-back first use: %v, %v; want none", list, err)
			}
			if got := triggerRecords(t, s, "", 100); len(got) != 0 {
				t.Errorf("records after a rolled-back first use: %v", got)
			}
		})
	}

	t.Run("ErrorKeepsStoreUsable", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		// A failed transaction must release whatever it held: the next
		// TriggerDo and plain writes go through.
		for i := range 3 {
			err := s.TriggerDo(t.Context(), "s", model.TriggerSchedule, at(time.Duration(i)*time.Minute), func(tx store.TriggerTx) error {
				return errBoom
			})
			wantErr(t, "TriggerDo", err, errBoom)
		}
		createInst(t, s, model.InstanceSpec{Template: "w", Version: 1, Name: "after"}, at(time.Hour))
		triggerDo(t, s, "s", model.TriggerSchedule, at(time.Hour), func(store.TriggerTx) error { return nil })
		sameTrigger(t, "after failures", getTrigger(t, s, "s"), newTrigger("s", model.TriggerSchedule, at(time.Hour)))
	})
}

// testTriggerDoConcurrent checks that TriggerDo serializes the copies of a
// trigger: 20 goroutines increment a counter in its state 10 times each,
// starting before the trigger exists.
func testTriggerDoConcurrent(t *testing.T, open TriggerOpener) {
	t.Run("StateCounter", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		const goroutines, increments = 20, 10
		var wg sync.WaitGroup
		errs := make(chan error, goroutines)
		for g := range goroutines {
			wg.Go(func() {
				for i := range increments {
					now := at(time.Duration(g*increments+i) * time.Millisecond)
					err := s.TriggerDo(t.Context(), "counter", model.TriggerSchedule, now, func(tx store.TriggerTx) error {
						var st struct {
							N int `json:"n"`
						}
						if err := json.Unmarshal(tx.Trigger().State, &st); err != nil {
							return fmt.Errorf("state %s: %w", tx.Trigger().State, err)
						}
						st.N++
						b, _ := json.Marshal(st)
						return tx.SetState(b)
					})
					if err != nil {
						errs <- fmt.Errorf("goroutine %d, increment %d: %w", g, i, err)
						return
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		sameJSON(t, "counter state", getTrigger(t, s, "counter").State, json.RawMessage(fmt.Sprintf(`{"n": %d}`, goroutines*increments)))
	})
}
