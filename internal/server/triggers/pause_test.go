package triggers_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/dpe-engine/dpe/internal/model"
)

// TestPause: a paused watcher starts nothing and consumes what it sees
// (the mirror moves on, each event recorded as skipped), so resuming
// starts nothing for what happened meanwhile; new events after resume
// start again. Pausing an unknown trigger is not found.
func TestPause(t *testing.T) {
	ctx := context.Background()
	s, clk, _ := setup(t)
	observe := func(items ...model.ObservedItem) model.TriggerResult {
		t.Helper()
		res, err := s.Observe(ctx, "inbox", model.Observation{Kind: model.TriggerFolder, On: on, Incremental: true, Items: items})
		if err != nil {
			t.Fatal(err)
		}
		clk.Advance(time.Second)
		return res
	}
	if a := actions(observe(item("a", "1"))); a["started"] != 1 {
		t.Fatalf("before pause: %v", a)
	}
	tr, err := s.Pause(ctx, "inbox", true)
	if err != nil || !tr.Paused || tr.PausedAt == nil || !tr.PausedAt.Equal(t0.Add(time.Second)) {
		t.Fatalf("pause: %+v %v", tr, err)
	}
	if again, err := s.Pause(ctx, "inbox", true); err != nil || !again.PausedAt.Equal(*tr.PausedAt) {
		t.Fatalf("pausing again moved the pause time: %+v %v", again, err)
	}
	r := observe(item("b", "1"), item("a", "2"))
	if len(r.Records) != 2 || actions(r)["skipped"] != 2 || r.Records[0].Reason != "trigger paused" || r.Records[0].InstanceID != 0 {
		t.Fatalf("while paused: %+v", r.Records)
	}
	if tr, err := s.Pause(ctx, "inbox", false); err != nil || tr.Paused || tr.PausedAt != nil {
		t.Fatalf("resume: %+v %v", tr, err)
	}
	if r := observe(item("b", "1"), item("a", "2")); len(r.Records) != 0 {
		t.Fatalf("after resume, what was seen while paused started: %+v", r.Records)
	}
	if a := actions(observe(item("c", "1"))); a["started"] != 1 {
		t.Fatalf("after resume: %v", a)
	}
	if _, err := s.Pause(ctx, "nothing", true); !errors.Is(err, model.ErrNotFound) {
		t.Fatalf("pause of an unknown trigger: %v", err)
	}
}

// TestScheduleSpec: the config a scheduler sends in its state is kept
// (and replaced by a newer one), shown with the next fire times from now
// (DST-safe), and fire now starts from it; a spec the server cannot read
// is refused and changes nothing.
func TestScheduleSpec(t *testing.T) {
	ctx := context.Background()
	s, _, flows := setup(t)
	fire := func(state string) error {
		_, err := s.Fire(ctx, "nightly", model.FireRequest{Kind: model.TriggerSchedule, Fires: []model.Start{}, State: []byte(state)})
		return err
	}
	if err := fire(`{"last":"2026-11-25T11:00:00Z","spec":{"cron":"30 2 * * *","timezone":"Europe/Berlin","template":"note","args":{"path":"${{ fire_time }}"}}}`); err != nil {
		t.Fatal(err)
	}
	tr, err := s.Get(ctx, "nightly")
	if err != nil || tr.Schedule == nil || tr.Schedule.Timezone != "Europe/Berlin" {
		t.Fatalf("trigger: %+v %v", tr, err)
	}
	want := []string{"2026-11-26T01:30:00Z", "2026-11-27T01:30:00Z", "2026-11-28T01:30:00Z"}
	if len(tr.Next) != 3 || tr.Next[0].Format(time.RFC3339) != want[0] || tr.Next[2].Format(time.RFC3339) != want[2] {
		t.Fatalf("next %v, want %v", tr.Next, want)
	}
	// A newer config replaces it even when last does not move.
	if err := fire(`{"last":"2026-11-25T11:00:00Z","spec":{"cron":"0 * * * *","template":"note","args":{"path":"${{ fire_time }}"}}}`); err != nil {
		t.Fatal(err)
	}
	if tr, _ = s.Get(ctx, "nightly"); tr.Schedule.Cron != "0 * * * *" || tr.Next[0].Format(time.RFC3339) != "2026-11-25T13:00:00Z" {
		t.Fatalf("after the new config: %+v %v", tr.Schedule, tr.Next)
	}
	for _, bad := range []string{
		`{"last":"2026-11-25T12:00:00Z","spec":{"cron":"61 * * * *","template":"note"}}`,
		`{"last":"2026-11-25T12:00:00Z","spec":{"cron":"0 * * * *","timezone":"Mars/Olympus","template":"note"}}`,
		`{"last":"2026-11-25T12:00:00Z","spec":"hourly"}`,
	} {
		if err := fire(bad); !errors.Is(err, model.ErrInvalid) || !strings.Contains(err.Error(), "state.spec") {
			t.Errorf("fire with %s: %v, want invalid state.spec", bad, err)
		}
	}
	if tr, _ = s.Get(ctx, "nightly"); tr.Schedule.Cron != "0 * * * *" || string(tr.State) == "" || strings.Contains(string(tr.State), "12:00:00Z") {
		t.Fatalf("a refused spec changed the state: %s", tr.State)
	}
	res, err := s.FireNow(ctx, "nightly")
	if err != nil || len(res.Records) != 1 || res.Records[0].Action != model.RecordStarted {
		t.Fatalf("fire now: %+v %v", res, err)
	}
	inst, err := flows.GetByName(ctx, res.Records[0].Instance)
	if err != nil || inst.Trigger != "nightly" || !strings.Contains(string(inst.Args), "2026-11-25T12:00:00Z") {
		t.Fatalf("fire now's instance: %+v %v", inst, err)
	}
	if _, err := s.Pause(ctx, "nightly", true); err != nil {
		t.Fatal(err)
	}
	if tr, _ = s.Get(ctx, "nightly"); len(tr.Next) != 0 {
		t.Errorf("a paused schedule lists next fires %v", tr.Next)
	}
	if _, err := s.FireNow(ctx, "nightly"); !errors.Is(err, model.ErrConflict) || !strings.Contains(err.Error(), "paused") {
		t.Errorf("fire now while paused: %v", err)
	}
}
