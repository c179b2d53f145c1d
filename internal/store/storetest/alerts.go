package storetest

import (
	"slices"
	"testing"
	"time"

	"github.com/dpe-engine/dpe/internal/model"
	"github.com/dpe-engine/dpe/internal/store"
)

// AlertEngine is a store with alerts and workflow instances.
type AlertEngine interface {
	store.WorkflowStore
	store.AlertStore
}

// RunAlerts runs the conformance suite of store.AlertStore:
//   - AlertPut inserts, and replaces by key every field, deliveries
//     included; AlertList reads them back most recently updated first.
//   - AlertList filters: Open (pending, firing, or a notification owed),
//     Rule, UpdatedSince, Limit.
//   - AlertPurge deletes only settled alerts updated before the time.
//   - InstanceFailedSince returns failed instances finished at or after
//     the time, oldest finish first, at most limit.
func RunAlerts(t *testing.T, open func(t *testing.T) AlertEngine) {
	t.Helper()
	t.Run("PutList", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		ctx := t.Context()
		fired := at(time.Minute)
		firing := model.Alert{
			Key: "nocopy/trigger/sched", Rule: "nocopy", Kind: model.AlertGroupInactive, Subject: "trigger/sched",
			State: model.AlertFiring, Summary: "no active copy", Since: T0, FiredAt: &fired, Notify: "firing",
			Deliveries: []model.AlertDelivery{{Receiver: "ops", Notification: "firing", Attempts: 2, NextAt: tp(at(2 * time.Minute)), LastError: "503"}},
			UpdatedAt:  at(time.Minute),
		}
		pending := model.Alert{Key: "noproc/x", Rule: "noproc", Kind: model.AlertNoProcessor, Subject: "x",
			State: model.AlertPending, Since: T0, UpdatedAt: at(2 * time.Minute)}
		resolved := model.Alert{Key: "nocopy/worker/a", Rule: "nocopy", Kind: model.AlertGroupInactive, Subject: "worker/a",
			State: model.AlertResolved, Since: T0, FiredAt: &fired, ResolvedAt: tp(at(3 * time.Minute)), UpdatedAt: at(3 * time.Minute)}
		for _, a := range []model.Alert{firing, pending, resolved} {
			if err := s.AlertPut(ctx, a); err != nil {
				t.Fatalf("AlertPut(%s): %v", a.Key, err)
			}
		}
		list := func(f model.AlertFilter) []string {
			t.Helper()
			got, err := s.AlertList(ctx, f)
			if err != nil {
				t.Fatalf("AlertList(%+v): %v", f, err)
			}
			keys := []string{}
			for _, a := range got {
				keys = append(keys, a.Key)
			}
			return keys
		}
		for _, c := range []struct {
			name string
			f    model.AlertFilter
			want []string
		}{
			{"all", model.AlertFilter{}, []string{resolved.Key, pending.Key, firing.Key}},
			{"open", model.AlertFilter{Open: true}, []string{pending.Key, firing.Key}},
			{"rule", model.AlertFilter{Rule: "nocopy"}, []string{resolved.Key, firing.Key}},
			{"since", model.AlertFilter{UpdatedSince: at(2 * time.Minute)}, []string{resolved.Key, pending.Key}},
			{"limit", model.AlertFilter{Limit: 1}, []string{resolved.Key}},
		} {
			if got := list(c.f); !slices.Equal(got, c.want) {
				t.Errorf("AlertList %s = %v, want %v", c.name, got, c.want)
			}
		}
		got, err := s.AlertList(ctx, model.AlertFilter{Rule: "nocopy", Open: true})
		if err != nil || len(got) != 1 {
			t.Fatalf("AlertList open nocopy = %v, %v", got, err)
		}
		a := got[0]
		if a.Kind != firing.Kind || a.State != firing.State || a.Subject != firing.Subject || a.Summary != firing.Summary ||
			a.Notify != "firing" || !a.Since.Equal(T0) || a.FiredAt == nil || !a.FiredAt.Equal(fired) || a.ResolvedAt != nil ||
			!a.UpdatedAt.Equal(at(time.Minute)) {
			t.Fatalf("read back %+v, want %+v", a, firing)
		}
		if len(a.Deliveries) != 1 || a.Deliveries[0].Attempts != 2 || a.Deliveries[0].LastError != "503" ||
			a.Deliveries[0].NextAt == nil || !a.Deliveries[0].NextAt.Equal(at(2*time.Minute)) {
			t.Fatalf("deliveries read back %+v", a.Deliveries)
		}

		// Replace by key: the notification is sent, the alert settles.
		a.Notify = ""
		a.Deliveries[0].SentAt, a.Deliveries[0].NextAt, a.Deliveries[0].Attempts = tp(at(4*time.Minute)), nil, 3
		a.State, a.ResolvedAt, a.UpdatedAt = model.AlertResolved, tp(at(4*time.Minute)), at(4*time.Minute)
		if err := s.AlertPut(ctx, a); err != nil {
			t.Fatalf("AlertPut replace: %v", err)
		}
		if got := list(model.AlertFilter{Open: true}); !slices.Equal(got, []string{pending.Key}) {
			t.Fatalf("open after settling = %v", got)
		}
		got, _ = s.AlertList(ctx, model.AlertFilter{Limit: 1})
		if got[0].Key != a.Key || got[0].Deliveries[0].SentAt == nil || got[0].Deliveries[0].NextAt != nil || got[0].ResolvedAt == nil {
			t.Fatalf("replaced alert read back %+v", got[0])
		}

		// Purge: settled and old only.
		n, err := s.AlertPurge(ctx, at(4*time.Minute))
		if err != nil || n != 1 {
			t.Fatalf("AlertPurge = %d, %v; want 1 (the alert resolved at 3m)", n, err)
		}
		if got := list(model.AlertFilter{}); !slices.Equal(got, []string{a.Key, pending.Key}) {
			t.Fatalf("after purge = %v", got)
		}
	})
	t.Run("InstanceFailedSince", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		spec := func(name string) model.InstanceSpec {
			return model.InstanceSpec{Template: "w", Version: 1, Name: name}
		}
		late := endInst(t, s, spec("late"), model.InstanceFailed, at(3*time.Minute))
		early := endInst(t, s, spec("early"), model.InstanceFailed, at(time.Minute))
		endInst(t, s, spec("ok"), model.InstanceSucceeded, at(2*time.Minute))
		endInst(t, s, spec("old"), model.InstanceFailed, at(-time.Minute))
		parkInst(t, s, spec("live"), "w1", T0)
		got, err := s.InstanceFailedSince(t.Context(), T0, 10)
		if err != nil {
			t.Fatalf("InstanceFailedSince: %v", err)
		}
		if ids := instIDs(got); !slices.Equal(ids, []int64{early.ID, late.ID}) {
			t.Fatalf("InstanceFailedSince(T0) = %v, want [%d %d]", ids, early.ID, late.ID)
		}
		if got[0].Name != "early" || got[0].FinishedAt == nil || !got[0].FinishedAt.Equal(at(time.Minute)) {
			t.Fatalf("first = %+v", got[0])
		}
		got, err = s.InstanceFailedSince(t.Context(), at(time.Minute), 1)
		if err != nil || !slices.Equal(instIDs(got), []int64{early.ID}) {
			t.Fatalf("InstanceFailedSince(1m, limit 1) = %v, %v; want the one finished at 1m", instIDs(got), err)
		}
	})
}
