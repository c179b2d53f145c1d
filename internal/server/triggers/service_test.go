package triggers_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/dpe-engine/dpe/internal/clock"
	"github.com/dpe-engine/dpe/internal/model"
	"github.com/dpe-engine/dpe/internal/server/triggers"
	"github.com/dpe-engine/dpe/internal/server/workflows"
	"github.com/dpe-engine/dpe/internal/store/sqlite"
)

var t0 = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

func setup(t *testing.T) (*triggers.Service, *clock.Fake, *workflows.Service) {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "dpe.db"), slog.Default())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	clk := clock.NewFake(t0)
	flows := workflows.New(workflows.Config{Store: st, Clock: clk})
	src := "name: note\nargs:\n  path: {type: string, default: \"\"}\nsteps:\n  - {id: say, log: \"${{ args.path }}\"}\n"
	if _, _, err := flows.Import(context.Background(), []byte(src)); err != nil {
		t.Fatal(err)
	}
	return triggers.New(triggers.Config{Store: st, Flows: flows, Clock: clk}), clk, flows
}

func actions(res model.TriggerResult) map[string]int {
	n := map[string]int{}
	for _, r := range res.Records {
		n[r.Action]++
	}
	return n
}

var on = map[string]model.EventAction{
	"created": {Template: "note", Args: map[string]any{"path": "${{ event.path }}"}},
	"updated": {Template: "note", Args: map[string]any{"path": "${{ event.path }}"}},
	"deleted": {Template: "note", Args: map[string]any{"path": "${{ event.path }}"}},
}

func item(key, fp string) model.ObservedItem {
	return model.ObservedItem{Key: key, Fingerprint: fp, Data: map[string]any{"path": "/in/" + key}}
}

func TestObserve(t *testing.T) {
	ctx := context.Background()
	s, clk, flows := setup(t)
	observe := func(o model.Observation) model.TriggerResult {
		t.Helper()
		o.Kind, o.On = model.TriggerFolder, on
		res, err := s.Observe(ctx, "inbox", o)
		if err != nil {
			t.Fatal(err)
		}
		clk.Advance(time.Second)
		return res
	}
	// A two-page full pass: everything is new.
	r := observe(model.Observation{Pass: "p1", Items: []model.ObservedItem{item("a", "1"), item("b", "1")}})
	r2 := observe(model.Observation{Pass: "p1", Complete: true, Items: []model.ObservedItem{item("c", "1"), {Key: "d", Unstable: true}}})
	if actions(r)["started"] != 2 || actions(r2)["started"] != 1 {
		t.Fatalf("first pass: %v %v", actions(r), actions(r2))
	}
	inst, err := flows.GetByName(ctx, "folder/inbox/created/a@1")
	if err != nil || string(inst.Args) != `{"path":"/in/a"}` || inst.Trigger != "inbox" {
		t.Fatalf("instance of a: %+v %v", inst, err)
	}
	// The same observation again (a concurrent copy, or a retry) starts
	// nothing.
	if r := observe(model.Observation{Incremental: true, Items: []model.ObservedItem{item("a", "1"), item("b", "1")}}); len(r.Records) != 0 {
		t.Fatalf("repeat: %+v", r.Records)
	}
	// b changes and c goes (an incremental delete); a delete of a key the
	// mirror never had (zz) is ignored.
	r = observe(model.Observation{Incremental: true, Items: []model.ObservedItem{item("b", "2"), {Key: "c", Deleted: true}, {Key: "zz", Deleted: true}}})
	if a := actions(r); a["started"] != 2 || len(r.Records) != 2 {
		t.Fatalf("update and delete: %+v", r.Records)
	}
	// A full pass that no longer lists a: deleted; d (unstable before,
	// still unstable) is not deleted.
	r = observe(model.Observation{Pass: "p2", Complete: true, Items: []model.ObservedItem{item("b", "2"), {Key: "d", Unstable: true}}})
	if len(r.Records) != 1 || r.Records[0].Event != "deleted" || r.Records[0].Instance != "folder/inbox/deleted/a@1" {
		t.Fatalf("full pass: %+v", r.Records)
	}
	// Dry run: reports, changes nothing.
	r = observe(model.Observation{Incremental: true, DryRun: true, Items: []model.ObservedItem{item("e", "1")}})
	if len(r.Records) != 1 || r.Records[0].Action != "skipped" {
		t.Fatalf("dry run: %+v", r.Records)
	}
	r = observe(model.Observation{Incremental: true, Items: []model.ObservedItem{item("e", "1")}})
	if actions(r)["started"] != 1 {
		t.Fatalf("after the dry run e is still new: %+v", r.Records)
	}
	// Bad input changes nothing.
	if _, err := s.Observe(ctx, "inbox", model.Observation{Kind: "folder", Incremental: true, On: map[string]model.EventAction{"renamed": {Template: "note"}}}); err == nil {
		t.Fatal("unknown event accepted")
	}
}

func TestObserveBaseline(t *testing.T) {
	ctx := context.Background()
	s, _, _ := setup(t)
	base := func(o model.Observation) model.TriggerResult {
		t.Helper()
		o.Kind, o.On, o.FirstStart = model.TriggerTable, on, "baseline"
		res, err := s.Observe(ctx, "music", o)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	r := base(model.Observation{Pass: "p", Items: []model.ObservedItem{item("1", "v1")}})
	r2 := base(model.Observation{Pass: "p", Complete: true, Items: []model.ObservedItem{item("2", "v1")}})
	if actions(r)["started"]+actions(r2)["started"] != 0 || actions(r)["baseline"] != 1 {
		t.Fatalf("baseline pass started something: %+v %+v", r.Records, r2.Records)
	}
	r = base(model.Observation{Incremental: true, Items: []model.ObservedItem{item("3", "v1"), item("1", "v2")}})
	if a := actions(r); a["started"] != 2 {
		t.Fatalf("after the baseline: %+v", r.Records)
	}
}

func TestFire(t *testing.T) {
	ctx := context.Background()
	s, _, flows := setup(t)
	fire := func(req model.FireRequest) model.TriggerResult {
		t.Helper()
		res, err := s.Fire(ctx, "tick", req)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	start := func(ft string) model.Start {
		return model.Start{Key: ft, Instance: model.InstanceSpec{Template: "note", Name: "schedule/tick/" + ft, Args: json.RawMessage(`{"path":"${{ fire_time }}"}`)},
			Data: map[string]any{"fire_time": ft}}
	}
	last := func(ft string) json.RawMessage { return json.RawMessage(`{"last":"` + ft + `"}`) }
	r := fire(model.FireRequest{Fires: []model.Start{start("2026-11-25T12:00:00Z")}, State: last("2026-11-25T12:00:00Z")})
	if actions(r)["started"] != 1 {
		t.Fatalf("fire: %+v", r.Records)
	}
	inst, _ := flows.GetByName(ctx, "schedule/tick/2026-11-25T12:00:00Z")
	if string(inst.Args) != `{"path":"2026-11-25T12:00:00Z"}` {
		t.Fatalf("args %s", inst.Args)
	}
	// A second copy firing the same time: existing, even with overlap skip.
	r = fire(model.FireRequest{Fires: []model.Start{start("2026-11-25T12:00:00Z")}, Overlap: "skip", State: last("2026-11-25T11:59:00Z")})
	if actions(r)["existing"] != 1 {
		t.Fatalf("second copy: %+v", r.Records)
	}
	if string(r.Trigger.State) != `{"last":"2026-11-25T12:00:00Z"}` {
		t.Fatalf("last went backwards: %s", r.Trigger.State)
	}
	// Overlap skip while the first instance is not final.
	r = fire(model.FireRequest{Fires: []model.Start{start("2026-11-25T12:01:00Z")}, Overlap: "skip"})
	if actions(r)["overlap"] != 1 {
		t.Fatalf("overlap: %+v", r.Records)
	}
	// Throttle wait stops at the throttled fire and stores no state.
	r = fire(model.FireRequest{Fires: []model.Start{start("2026-11-25T12:02:00Z"), start("2026-11-25T12:03:00Z")},
		Throttle: 1, ThrottleMode: "wait", State: last("2026-11-25T12:03:00Z")})
	if len(r.Records) != 1 || r.Records[0].Action != "throttled" || string(r.Trigger.State) != `{"last":"2026-11-25T12:00:00Z"}` {
		t.Fatalf("throttle wait: %+v state %s", r.Records, r.Trigger.State)
	}
	// A skip is recorded, not started.
	sk := start("2026-11-25T12:04:00Z")
	sk.Skip, sk.Reason = true, "misfire: skipped"
	if r = fire(model.FireRequest{Fires: []model.Start{sk}}); actions(r)["skipped"] != 1 {
		t.Fatalf("skip: %+v", r.Records)
	}
	// A fire of an unknown template is recorded as failed, others go on.
	bad := start("2026-11-25T12:05:00Z")
	bad.Instance.Template = "nope"
	if r = fire(model.FireRequest{Fires: []model.Start{bad, start("2026-11-25T12:06:00Z")}}); actions(r)["failed"] != 1 || actions(r)["started"] != 1 {
		t.Fatalf("bad template: %+v", r.Records)
	}
}

// TestObserveStalePage covers two copies of a concurrent watcher: copy A
// reads an item, copy B reads it after a change and reports it, then A's
// page arrives. A's page said which change number it knew before its
// read (ReadAfter); the server must neither start an event for A's older
// version nor let it undo B's, and must tell A to read the item again.
func TestObserveStalePage(t *testing.T) {
	ctx := context.Background()
	at := func(n int64) *int64 { return &n }
	cases := []struct {
		name      string
		stale     model.ObservedItem
		readAfter *int64 // nil: A sends none (compared as before)
		// knewB: A read after B's answer (ReadAfter = B's Seq).
		knewB       bool
		wantStarted int
		wantDefer   []string
		wantFP      string // the mirror's fingerprint of "a" afterwards
	}{
		{name: "older version deferred", stale: item("a", "1"), readAfter: at(1), wantDefer: []string{"a"}, wantFP: "2"},
		{name: "stale delete deferred", stale: model.ObservedItem{Key: "a", Fingerprint: "1", Deleted: true}, readAfter: at(1), wantDefer: []string{"a"}, wantFP: "2"},
		{name: "same version is no change", stale: item("a", "2"), readAfter: at(1), wantFP: "2"},
		{name: "read after B's report is compared", stale: item("a", "3"), knewB: true, wantStarted: 1, wantFP: "3"},
		{name: "no read_after: compared (old watchers)", stale: item("a", "1"), wantStarted: 1, wantFP: "1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, clk, _ := setup(t)
			observe := func(o model.Observation) model.TriggerResult {
				t.Helper()
				o.Kind, o.On, o.Incremental = model.TriggerFolder, on, true
				res, err := s.Observe(ctx, "inbox", o)
				if err != nil {
					t.Fatal(err)
				}
				clk.Advance(time.Second)
				return res
			}
			first := observe(model.Observation{Items: []model.ObservedItem{item("a", "1")}})
			if first.Seq != 1 || actions(first)["started"] != 1 {
				t.Fatalf("first report: seq %d, %v", first.Seq, actions(first))
			}
			// B read after the change and reports it.
			b := observe(model.Observation{ReadAfter: at(first.Seq), Items: []model.ObservedItem{item("a", "2")}})
			if b.Seq != 2 || actions(b)["started"] != 1 {
				t.Fatalf("B's report: seq %d, %v", b.Seq, actions(b))
			}
			o := model.Observation{ReadAfter: tc.readAfter, Items: []model.ObservedItem{tc.stale}, State: json.RawMessage(`{"cursor": 7}`)}
			if tc.knewB {
				o.ReadAfter = at(b.Seq)
			}
			res := observe(o)
			if got := actions(res)["started"]; got != tc.wantStarted {
				t.Errorf("started %d, want %d (records %+v)", got, tc.wantStarted, res.Records)
			}
			if len(res.Deferred) != len(tc.wantDefer) || (len(tc.wantDefer) > 0 && res.Deferred[0] != tc.wantDefer[0]) {
				t.Errorf("deferred %v, want %v", res.Deferred, tc.wantDefer)
			}
			var st map[string]json.RawMessage
			_ = json.Unmarshal(res.Trigger.State, &st)
			if stored := st["cursor"] != nil; stored == (len(tc.wantDefer) > 0) {
				t.Errorf("state stored = %v with %d deferred: a page with deferred items must not move the cursor, others must", stored, len(res.Deferred))
			}
			// What the mirror holds now: a report of wantFP is no change.
			again := observe(model.Observation{ReadAfter: at(res.Seq), Items: []model.ObservedItem{item("a", tc.wantFP)}})
			if len(again.Records) != 0 || len(again.Deferred) != 0 {
				t.Errorf("mirror does not hold %q: a report of it gave %+v deferred %v", tc.wantFP, again.Records, again.Deferred)
			}
		})
	}
}
