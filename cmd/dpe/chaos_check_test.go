package main

import (
	"fmt"
	"maps"
	"path"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dpe-engine/dpe/internal/model"
)

// The invariants TestChaos checks (chaos_e2e_test.go), as pure functions
// of what the run recorded and what the core database holds at its end,
// so that they can be tested without processes (TestChaosChecks). Each
// returns its problems as lines naming the ids and names at fault.

// chaosEvent is one entry of the injection log.
type chaosEvent struct {
	at   time.Time
	role string // server, processor, worker, scheduler, folderwatcher, database
	copy string // the copy's name: server-a, proc1, ..., postgres
	what string // kill, start, freeze, thaw, down, up
}

// active reports whether after the event the copy can do its work.
func (e chaosEvent) active() bool {
	switch e.what {
	case "start", "thaw", "up":
		return true
	}
	return false
}

// roleOutage is the longest interval during which a role had no active
// copy (all dead, frozen or down), and how many such intervals there were.
type roleOutage struct {
	longest time.Duration
	from    time.Time // start of the longest one
	count   int
}

// longestOutages replays the injection log from origin (every copy of
// copies, name → role, active then) to until and returns, per role, its
// longest interval without an active copy. Events outside [origin,
// until] are ignored.
func longestOutages(copies map[string]string, events []chaosEvent, origin, until time.Time) map[string]roleOutage {
	activeCopies := map[string]int{}
	for _, role := range copies {
		activeCopies[role]++
	}
	isActive := map[string]bool{}
	for c := range copies {
		isActive[c] = true
	}
	out := map[string]roleOutage{}
	for _, role := range copies {
		out[role] = roleOutage{}
	}
	downSince := map[string]time.Time{}
	closeOutage := func(role string, at time.Time) {
		d := at.Sub(downSince[role])
		o := out[role]
		o.count++
		if d > o.longest {
			o.longest, o.from = d, downSince[role]
		}
		out[role] = o
		delete(downSince, role)
	}
	evs := slices.Clone(events)
	slices.SortStableFunc(evs, func(a, b chaosEvent) int { return a.at.Compare(b.at) })
	for _, e := range evs {
		if e.at.Before(origin) || e.at.After(until) {
			continue
		}
		role, ok := copies[e.copy]
		if !ok || isActive[e.copy] == e.active() {
			continue
		}
		isActive[e.copy] = e.active()
		if e.active() {
			activeCopies[role]++
			if activeCopies[role] == 1 {
				closeOutage(role, e.at)
			}
		} else {
			activeCopies[role]--
			if activeCopies[role] == 0 {
				downSince[role] = e.at
			}
		}
	}
	for role := range downSince {
		closeOutage(role, until)
	}
	return out
}

// checkAcked: every acknowledged start (name → id) exists under its id
// and succeeded.
func checkAcked(acked map[string]int64, byName map[string]model.Instance) []string {
	var problems []string
	for _, name := range slices.Sorted(maps.Keys(acked)) {
		id := acked[name]
		inst, ok := byName[name]
		switch {
		case !ok:
			problems = append(problems, fmt.Sprintf("acknowledged instance %d %q does not exist", id, name))
		case inst.ID != id:
			problems = append(problems, fmt.Sprintf("acknowledged instance %q had id %d, the database has id %d", name, id, inst.ID))
		case inst.State != model.InstanceSucceeded:
			problems = append(problems, fmt.Sprintf("acknowledged instance %d %q ended %s: %s", id, name, inst.State, inst.Error))
		}
	}
	return problems
}

// checkFireTimes: the instances of a schedule (names
// "schedule/<name>/<RFC 3339 fire time>") are one per fire time, in
// consecutive seconds (misfire: all starts every missed second), and
// succeeded. It returns the fire times found, sorted.
func checkFireTimes(insts []model.Instance, schedule string) ([]time.Time, []string) {
	var problems []string
	prefix := "schedule/" + schedule + "/"
	perTime := map[time.Time][]string{}
	for _, inst := range insts {
		rest, ok := strings.CutPrefix(inst.Name, prefix)
		if !ok {
			continue
		}
		ft, err := time.Parse(time.RFC3339Nano, rest)
		if err != nil {
			problems = append(problems, fmt.Sprintf("instance %d %q: not a fire time: %v", inst.ID, inst.Name, err))
			continue
		}
		ft = ft.UTC()
		perTime[ft] = append(perTime[ft], fmt.Sprintf("%d %q", inst.ID, inst.Name))
		if inst.State != model.InstanceSucceeded {
			problems = append(problems, fmt.Sprintf("schedule instance %d %q ended %s: %s", inst.ID, inst.Name, inst.State, inst.Error))
		}
	}
	times := slices.SortedFunc(maps.Keys(perTime), time.Time.Compare)
	for i, ft := range times {
		if n := len(perTime[ft]); n != 1 {
			problems = append(problems, fmt.Sprintf("fire time %s started %d instances: %s", ft.Format(time.RFC3339), n, strings.Join(perTime[ft], ", ")))
		}
		if ft.Nanosecond() != 0 {
			problems = append(problems, fmt.Sprintf("fire time %s is not on a whole second", ft.Format(time.RFC3339Nano)))
		}
		if i > 0 {
			if d := ft.Sub(times[i-1]); d != time.Second {
				problems = append(problems, fmt.Sprintf("fire times %s and %s are %v apart: %d fire time(s) missed",
					times[i-1].Format(time.RFC3339), ft.Format(time.RFC3339), d, int(d/time.Second)-1))
			}
		}
	}
	return times, problems
}

// checkFiles: every dropped file (base names) started exactly one
// instance of the folder watcher ("folder/<watcher>/created/<rel>@<size:
// mtime>"), which succeeded; no other event and no other file started
// anything.
func checkFiles(dropped []string, insts []model.Instance, watcher string) []string {
	var problems []string
	prefix := "folder/" + watcher + "/"
	perFile := map[string][]string{}
	for _, inst := range insts {
		rest, ok := strings.CutPrefix(inst.Name, prefix)
		if !ok {
			continue
		}
		ev, key, _ := strings.Cut(rest, "/")
		if at := strings.LastIndex(key, "@"); at >= 0 {
			key = key[:at]
		}
		if ev != "created" {
			problems = append(problems, fmt.Sprintf("instance %d %q: event %q (only files were added)", inst.ID, inst.Name, ev))
			continue
		}
		file := path.Base(key)
		perFile[file] = append(perFile[file], fmt.Sprintf("%d %q", inst.ID, inst.Name))
		if inst.State != model.InstanceSucceeded {
			problems = append(problems, fmt.Sprintf("file instance %d %q ended %s: %s", inst.ID, inst.Name, inst.State, inst.Error))
		}
	}
	for _, f := range dropped {
		if n := len(perFile[f]); n != 1 {
			problems = append(problems, fmt.Sprintf("file %s started %d instances: %s", f, n, strings.Join(perFile[f], ", ")))
		}
		delete(perFile, f)
	}
	for _, f := range slices.Sorted(maps.Keys(perFile)) {
		problems = append(problems, fmt.Sprintf("file %s was never dropped but started %s", f, strings.Join(perFile[f], ", ")))
	}
	return problems
}

// checkJobRows: every instance of a template in steps has exactly one job
// row per job step (steps[template]), in state succeeded, and no job row
// belongs to another step or to no known instance. It also returns how
// many rows ran more than once (a lease that expired: a processor killed
// or frozen, a claim answer lost).
func checkJobRows(insts []model.Instance, jobs []model.Job, steps map[string][]string) (reruns int, problems []string) {
	type key struct {
		inst int64
		step string
	}
	rows := map[key][]model.Job{}
	for _, j := range jobs {
		rows[key{j.InstanceID, j.Step}] = append(rows[key{j.InstanceID, j.Step}], j)
		if j.Attempt > 1 {
			reruns++
		}
	}
	for _, inst := range insts {
		want, ok := steps[inst.Template]
		if !ok {
			continue
		}
		for _, step := range want {
			k := key{inst.ID, step}
			got := rows[k]
			delete(rows, k)
			if len(got) != 1 {
				var ids []string
				for _, j := range got {
					ids = append(ids, fmt.Sprintf("job %d %s epoch %d", j.ID, j.State, j.Epoch))
				}
				problems = append(problems, fmt.Sprintf("instance %d %q step %s has %d job rows, want 1: %v", inst.ID, inst.Name, step, len(got), ids))
				continue
			}
			if j := got[0]; j.State != model.JobSucceeded {
				problems = append(problems, fmt.Sprintf("instance %d %q step %s: job %d ended %s (attempt %d/%d): %s", inst.ID, inst.Name, step, j.ID, j.State, j.Attempt, j.MaxAttempts, j.Error))
			}
		}
	}
	for k, js := range rows {
		for _, j := range js {
			problems = append(problems, fmt.Sprintf("job %d (instance %d, step %q, %s) belongs to no checked instance step", j.ID, k.inst, k.step, j.State))
		}
	}
	slices.Sort(problems)
	return reruns, problems
}

// clipList joins at most n problems, saying how many were left out.
func clipList(problems []string, n int) string {
	if len(problems) <= n {
		return strings.Join(problems, "; ")
	}
	return strings.Join(problems[:n], "; ") + fmt.Sprintf("; ... and %d more", len(problems)-n)
}

// TestChaosChecks tests the invariant checks of TestChaos on made-up
// records, so that a check that cannot fail is caught without a chaos run.
func TestChaosChecks(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }

	t.Run("outages", func(t *testing.T) {
		copies := map[string]string{"w1": "worker", "w2": "worker", "s": "single", "p1": "processor"}
		events := []chaosEvent{
			{at(1), "worker", "w1", "kill"},
			{at(2), "worker", "w2", "kill"}, // both workers dead from 2 to 3.5
			{at(3.5), "worker", "w1", "start"},
			{at(4), "worker", "w2", "start"},
			{at(5), "single", "s", "kill"},
			{at(6), "single", "s", "start"}, // 1 s
			{at(7), "single", "s", "kill"},
			{at(9.5), "single", "s", "start"}, // 2.5 s, the longest
			{at(8), "processor", "p1", "freeze"},
			{at(12), "processor", "p1", "thaw"},   // after until: closed at until
			{at(0.5), "worker", "w1", "start"},    // already active: no change
			{at(20), "worker", "w1", "kill"},      // after until: ignored
			{at(1), "nobody", "x", "kill"},        // unknown copy: ignored
			{at(-1), "processor", "p1", "freeze"}, // before origin: ignored
		}
		got := longestOutages(copies, events, t0, at(10))
		want := map[string]roleOutage{
			"worker":    {longest: 1500 * time.Millisecond, from: at(2), count: 1},
			"single":    {longest: 2500 * time.Millisecond, from: at(7), count: 2},
			"processor": {longest: 2 * time.Second, from: at(8), count: 1},
		}
		for role, w := range want {
			if g := got[role]; g != w {
				t.Errorf("%s: %+v, want %+v", role, g, w)
			}
		}
	})

	t.Run("fire times", func(t *testing.T) {
		inst := func(id int64, name string, st model.InstanceState) model.Instance {
			return model.Instance{ID: id, Name: name, State: st}
		}
		ok := []model.Instance{
			inst(1, "schedule/tick/2026-01-02T03:04:05Z", model.InstanceSucceeded),
			inst(2, "schedule/tick/2026-01-02T03:04:06Z", model.InstanceSucceeded),
			inst(3, "schedule/tick/2026-01-02T03:04:07Z", model.InstanceSucceeded),
			inst(4, "schedule/other/2026-01-02T03:04:09Z", model.InstanceFailed),
			inst(5, "load-1", model.InstanceFailed),
		}
		times, problems := checkFireTimes(ok, "tick")
		if len(times) != 3 || len(problems) != 0 {
			t.Errorf("good fires: %d times, problems %v", len(times), problems)
		}
		bad := append(ok,
			inst(6, "schedule/tick/2026-01-02T04:04:07+01:00", model.InstanceSucceeded), // 03:04:07Z again
			inst(7, "schedule/tick/2026-01-02T03:04:10Z", model.InstanceRunning),        // 08, 09 missed
		)
		_, problems = checkFireTimes(bad, "tick")
		if len(problems) != 3 || !strings.Contains(clipList(problems, 5), "started 2 instances") ||
			!strings.Contains(clipList(problems, 5), "2 fire time(s) missed") || !strings.Contains(clipList(problems, 5), "ended running") {
			t.Errorf("bad fires: problems %v", problems)
		}
	})

	t.Run("files", func(t *testing.T) {
		insts := []model.Instance{
			{ID: 1, Name: "folder/in/created/a.mxf@5:1", State: model.InstanceSucceeded},
			{ID: 2, Name: "folder/in/created/b.mxf@5:1", State: model.InstanceSucceeded},
			{ID: 3, Name: "folder/in/created/b.mxf@6:2", State: model.InstanceSucceeded},
			{ID: 4, Name: "folder/in/deleted/a.mxf@5:1", State: model.InstanceSucceeded},
			{ID: 5, Name: "folder/in/created/x.mxf@1:1", State: model.InstanceSucceeded},
			{ID: 6, Name: "folder/other/created/c.mxf@1:1", State: model.InstanceSucceeded},
		}
		problems := checkFiles([]string{"a.mxf", "b.mxf", "c.mxf"}, insts, "in")
		if len(problems) != 4 {
			t.Errorf("problems %v, want b twice, c never, a deleted, x not dropped", problems)
		}
		if p := checkFiles([]string{"a.mxf"}, insts[:1], "in"); len(p) != 0 {
			t.Errorf("good files: %v", p)
		}
	})

	t.Run("job rows", func(t *testing.T) {
		insts := []model.Instance{{ID: 1, Template: "two", Name: "i1"}, {ID: 2, Template: "two", Name: "i2"}, {ID: 3, Template: "none"}}
		jobs := []model.Job{
			{ID: 10, InstanceID: 1, Step: "a", State: model.JobSucceeded},
			{ID: 11, InstanceID: 1, Step: "b", State: model.JobSucceeded, Attempt: 2},
			{ID: 12, InstanceID: 2, Step: "a", State: model.JobSucceeded},
			{ID: 13, InstanceID: 2, Step: "a", State: model.JobSucceeded}, // twice
			{ID: 14, InstanceID: 2, Step: "b", State: model.JobFailed},
			{ID: 15, InstanceID: 9, Step: "a", State: model.JobSucceeded}, // unknown instance
		}
		steps := map[string][]string{"two": {"a", "b"}}
		reruns, problems := checkJobRows(insts, jobs, steps)
		if reruns != 1 || len(problems) != 3 {
			t.Errorf("reruns %d, problems %v", reruns, problems)
		}
		if _, p := checkJobRows(insts[:1], jobs[:2], steps); len(p) != 0 {
			t.Errorf("good rows: %v", p)
		}
	})

	t.Run("acked", func(t *testing.T) {
		byName := map[string]model.Instance{
			"a": {ID: 1, Name: "a", State: model.InstanceSucceeded},
			"b": {ID: 2, Name: "b", State: model.InstanceFailed},
			"c": {ID: 4, Name: "c", State: model.InstanceSucceeded},
		}
		problems := checkAcked(map[string]int64{"a": 1, "b": 2, "c": 3, "d": 5}, byName)
		if len(problems) != 3 {
			t.Errorf("problems %v, want b failed, c other id, d missing", problems)
		}
	})
}
