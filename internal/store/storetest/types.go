package storetest

import (
	"errors"
	"maps"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/dpe-engine/dpe/internal/model"
	"github.com/dpe-engine/dpe/internal/store"
)

// typeList runs TypeList and fails the test on error.
func typeList(t *testing.T, s store.Store) []model.TypeLimit {
	t.Helper()
	got, err := s.TypeList(t.Context())
	if err != nil {
		t.Fatalf("TypeList: %v", err)
	}
	return got
}

// testTypes covers TypeEnsure, TypePut and TypeList.
func testTypes(t *testing.T, open Opener) {
	t.Parallel()
	s := open(t)
	if got := typeList(t, s); len(got) != 0 {
		t.Fatalf("fresh store has types %v", got)
	}
	if err := s.TypeEnsure(t.Context(), nil); err != nil {
		t.Fatalf("TypeEnsure(nil): %v", err)
	}
	if err := s.TypeEnsure(t.Context(), []string{"t.b", "t.a", "t.a"}); err != nil {
		t.Fatalf("TypeEnsure: %v", err)
	}
	want := []model.TypeLimit{{Type: "t.a"}, {Type: "t.b"}}
	if got := typeList(t, s); !reflect.DeepEqual(got, want) {
		t.Fatalf("TypeList = %v, want %v (sorted by name)", got, want)
	}

	limit := model.TypeLimit{Type: "t.a", MaxRunning: 3, Rate: 1.5, Burst: 4}
	if err := s.TypePut(t.Context(), limit); err != nil {
		t.Fatalf("TypePut: %v", err)
	}
	if err := s.TypePut(t.Context(), model.TypeLimit{Type: "t.0", MaxRunning: 1}); err != nil {
		t.Fatalf("TypePut of a new type: %v", err)
	}
	want = []model.TypeLimit{{Type: "t.0", MaxRunning: 1}, limit, {Type: "t.b"}}
	if got := typeList(t, s); !reflect.DeepEqual(got, want) {
		t.Fatalf("after TypePut: %v, want %v", got, want)
	}

	// Ensure never clobbers limits.
	if err := s.TypeEnsure(t.Context(), []string{"t.a", "t.c"}); err != nil {
		t.Fatalf("TypeEnsure: %v", err)
	}
	want = []model.TypeLimit{{Type: "t.0", MaxRunning: 1}, limit, {Type: "t.b"}, {Type: "t.c"}}
	if got := typeList(t, s); !reflect.DeepEqual(got, want) {
		t.Fatalf("after TypeEnsure: %v, want %v", got, want)
	}

	// Put replaces the limits (upsert), including back to none.
	if err := s.TypePut(t.Context(), model.TypeLimit{Type: "t.a"}); err != nil {
		t.Fatalf("TypePut: %v", err)
	}
	want[1] = model.TypeLimit{Type: "t.a"}
	if got := typeList(t, s); !reflect.DeepEqual(got, want) {
		t.Fatalf("after clearing limits: %v, want %v", got, want)
	}
}

// testTypeUpdate covers TypeUpdate: fn sees the type as stored, its error
// changes nothing (not even a registration), and concurrent updates do not
// lose each other's changes.
func testTypeUpdate(t *testing.T, open Opener) {
	t.Parallel()
	s := open(t)
	ctx := t.Context()
	refuse := errors.New("refused")
	if _, err := s.TypeUpdate(ctx, "u.new", func(cur model.TypeLimit, exists bool) (model.TypeLimit, error) {
		if exists || cur != (model.TypeLimit{Type: "u.new"}) {
			t.Errorf("a type never registered: fn got %+v exists=%v", cur, exists)
		}
		return cur, refuse
	}); !errors.Is(err, refuse) {
		t.Fatalf("TypeUpdate with fn's error: %v, want it returned", err)
	}
	if got := typeList(t, s); len(got) != 0 {
		t.Fatalf("a refused update registered %v", got)
	}
	if err := s.TypePut(ctx, model.TypeLimit{Type: "u.a", MaxRunning: 4}); err != nil {
		t.Fatal(err)
	}
	got, err := s.TypeUpdate(ctx, "u.a", func(cur model.TypeLimit, exists bool) (model.TypeLimit, error) {
		if !exists || cur.MaxRunning != 4 {
			t.Errorf("fn got %+v exists=%v, want the stored max_running 4", cur, exists)
		}
		cur.Rate, cur.Burst = 10, 10
		return cur, nil
	})
	want := model.TypeLimit{Type: "u.a", MaxRunning: 4, Rate: 10, Burst: 10}
	if err != nil || got != want {
		t.Fatalf("TypeUpdate = %+v, %v; want %+v", got, err, want)
	}
	if l := typeList(t, s); !reflect.DeepEqual(l, []model.TypeLimit{want}) {
		t.Fatalf("TypeList = %v, want %v", l, []model.TypeLimit{want})
	}
	// 20 concurrent read-modify-writes, the first ones on a type not yet
	// registered: none is lost.
	const n = 20
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			if _, err := s.TypeUpdate(ctx, "u.count", func(cur model.TypeLimit, _ bool) (model.TypeLimit, error) {
				cur.MaxRunning++
				return cur, nil
			}); err != nil {
				t.Errorf("TypeUpdate: %v", err)
			}
		})
	}
	wg.Wait()
	if l := typeList(t, s); len(l) != 2 || l[1].Type != "u.count" || l[1].MaxRunning != n {
		t.Fatalf("after %d concurrent increments: %v, want u.count at %d", n, l, n)
	}
}

// testProcessors covers ProcessorUpsert and ProcessorList.
func testProcessors(t *testing.T, open Opener) {
	t.Parallel()
	s := open(t)
	p2 := model.Processor{
		ID: "p2", Host: "farm-2", Labels: map[string]string{"site": "berlin", "gpu": "yes"},
		Quota: map[string]int{"q.x": 2, "q.y": 1}, Draining: true, Started: at(-time.Hour),
		ProcessorPresence: model.ProcessorPresence{
			Unavailable: map[string]string{"q.z": "ffmpeg not found"},
			Version:     "9.8.7", Used: map[string]int{"q.x": 1, "q.y": 0}, Every: model.Duration(1500 * time.Millisecond),
		},
	}
	p1 := model.Processor{ID: "p1", Host: "farm-1", Quota: map[string]int{"q.x": 4}}
	upsert := func(p model.Processor, now time.Time) {
		t.Helper()
		if err := s.ProcessorUpsert(t.Context(), p, now); err != nil {
			t.Fatalf("ProcessorUpsert(%s): %v", p.ID, err)
		}
	}
	list := func(since time.Time) []model.Processor {
		t.Helper()
		got, err := s.ProcessorList(t.Context(), since)
		if err != nil {
			t.Fatalf("ProcessorList: %v", err)
		}
		return got
	}
	same := func(what string, got, want model.Processor, lastSeen time.Time, running map[string]int) {
		t.Helper()
		if got.ID != want.ID || got.Host != want.Host || got.Draining != want.Draining ||
			!maps.Equal(got.Labels, want.Labels) || !maps.Equal(got.Quota, want.Quota) ||
			!samePresence(got.ProcessorPresence, want.ProcessorPresence) {
			t.Errorf("%s = %+v, want %+v", what, got, want)
		}
		sameTime(t, what+" LastSeen", got.LastSeen, lastSeen)
		sameTime(t, what+" Started", got.Started, want.Started)
		total := 0
		for _, n := range running {
			total += n
		}
		if got.Running != total || !maps.Equal(got.RunningByType, running) {
			t.Errorf("%s Running = %d %v, want %d %v", what, got.Running, got.RunningByType, total, running)
		}
	}

	upsert(p2, T0)
	upsert(p1, at(time.Minute))
	got := list(at(-time.Second))
	if len(got) != 2 {
		t.Fatalf("ProcessorList: %d processors, want 2", len(got))
	}
	same("p1", got[0], p1, at(time.Minute), nil)
	same("p2", got[1], p2, T0, nil)
	if got := list(at(30 * time.Second)); len(got) != 1 || got[0].ID != "p1" {
		t.Fatalf("seen since +30s: %v, want p1 only", got)
	}

	names := func() []string {
		var out []string
		for _, l := range typeList(t, s) {
			out = append(out, l.Type)
		}
		return out
	}
	if got := names(); !slices.Equal(got, []string{"q.x", "q.y"}) {
		t.Errorf("types after upserts: %v, want the quota types", got)
	}

	// Labels are the user's alone: keys that the engines once reserved for
	// the presence are labels like any other, and a presence is not one.
	odd := model.Processor{ID: "p3", Labels: map[string]string{
		"\u2400version": "mine", "\u2400unavailable:q.x": "mine too", "\u2400every": "soon",
	}, ProcessorPresence: model.ProcessorPresence{Version: "1.0.0", Used: map[string]int{"q.x": 0}}}
	upsert(odd, at(-time.Minute))
	if got := list(at(-time.Minute)); len(got) != 3 {
		t.Fatalf("ProcessorList: %d processors, want 3", len(got))
	} else {
		same("p3 with reserved-looking labels", got[2], odd, at(-time.Minute), nil)
	}

	// Upsert replaces what the processor says about itself.
	p2b := model.Processor{ID: "p2", Host: "farm-2b", Labels: map[string]string{"site": "paris"}, Quota: map[string]int{"q.z": 1}}
	upsert(p2b, at(2*time.Minute))

	insertN(t, s, T0, "q.x", 5)
	insertN(t, s, T0, "q.z", 1)
	claimN(t, s, "q.x", "p1", 2, at(2*time.Minute))
	mine := claimN(t, s, "q.x", "p2", 2, at(2*time.Minute))
	claimN(t, s, "q.z", "p2", 1, at(2*time.Minute))
	complete(t, s, model.Completion{ID: mine[0].ID, Epoch: mine[0].Epoch}, at(2*time.Minute))

	got = list(at(30 * time.Second))
	if len(got) != 2 {
		t.Fatalf("ProcessorList: %d processors, want 2", len(got))
	}
	same("p1 (2 running)", got[0], p1, at(time.Minute), map[string]int{"q.x": 2})
	same("p2 after upsert (2 running)", got[1], p2b, at(2*time.Minute), map[string]int{"q.x": 1, "q.z": 1})
	if got := names(); !slices.Equal(got, []string{"q.x", "q.y", "q.z"}) {
		t.Errorf("types: %v, want q.x q.y q.z", got)
	}
}

// PresenceUpgrade is what the presence migrations (postgres 0011, sqlite
// 0012) are tested with: processors as an older engine stored them, the
// presence riding in their labels under reserved keys, and what each must
// read as after the upgrade (an unreadable used count is dropped, as the
// old reader dropped it).
var PresenceUpgrade = struct {
	Stored []struct{ ID, Labels string }
	Want   []model.Processor
}{
	Stored: []struct{ ID, Labels string }{
		{"full", `{"site":"berlin","␀unavailable:media.probe":"ffmpeg not found","␀unavailable:media.transcode":"ffmpeg not found",` +
			`"␀used:q.x":"2","␀used:q.y":"0","␀used:q.bad":"two","␀version":"1.2.3","␀every":"1.5s"}`},
		{"reserved-only", `{"␀version":"0.9.0"}`},
		{"plain", `{"gpu":"yes"}`},
		{"bare", `{}`},
	},
	Want: []model.Processor{
		{ID: "bare"},
		{ID: "full", Labels: map[string]string{"site": "berlin"}, ProcessorPresence: model.ProcessorPresence{
			Unavailable: map[string]string{"media.probe": "ffmpeg not found", "media.transcode": "ffmpeg not found"},
			Used:        map[string]int{"q.x": 2, "q.y": 0}, Version: "1.2.3", Every: model.Duration(1500 * time.Millisecond),
		}},
		{ID: "plain", Labels: map[string]string{"gpu": "yes"}},
		{ID: "reserved-only", ProcessorPresence: model.ProcessorPresence{Version: "0.9.0"}},
	},
}

// SamePresence fails t unless got lists the processors of want, in order,
// with the same labels and presence (other fields are not compared): for
// migration tests, which check that presence moved out of the labels.
func SamePresence(t testing.TB, got, want []model.Processor) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d processors %+v, want %d %+v", len(got), got, len(want), want)
	}
	for i, w := range want {
		g := got[i]
		if g.ID != w.ID || !maps.Equal(g.Labels, w.Labels) || !samePresence(g.ProcessorPresence, w.ProcessorPresence) {
			t.Errorf("processor %d = %s labels %v presence %+v, want %s labels %v presence %+v",
				i, g.ID, g.Labels, g.ProcessorPresence, w.ID, w.Labels, w.ProcessorPresence)
		}
	}
}

// samePresence reports whether a and b say the same (an empty map is no map).
func samePresence(a, b model.ProcessorPresence) bool {
	return maps.Equal(a.Unavailable, b.Unavailable) && maps.Equal(a.Used, b.Used) &&
		a.Version == b.Version && a.Every == b.Every
}
