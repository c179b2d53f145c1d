package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dpe-engine/dpe/internal/client"
	"github.com/dpe-engine/dpe/internal/eventually"
	"github.com/dpe-engine/dpe/internal/model"
	"github.com/dpe-engine/dpe/internal/testdb"
)

// noteTemplate is what the trigger tests start: no jobs, so instances
// stay pending (no worker runs) and are simply counted.
const noteTemplate = `name: note
args:
  fire: {type: string, default: ""}
  path: {type: string, default: ""}
  event: {type: string, default: ""}
steps:
  - {id: say, log: "${{ args.event }} ${{ args.path }} ${{ args.fire }}"}
`

// triggerStack starts a server on a fresh PostgreSQL database and imports
// the note template; it returns the server URL, a client and a work dir.
func triggerStack(t *testing.T) (string, *client.Client, string) {
	t.Helper()
	dsn := testdb.Postgres(t)
	dir := t.TempDir()
	addr := freeAddr(t)
	srvURL := "http://" + addr
	startDPE(t, "server", dir, "server", "--db", dsn, "--listen", addr)
	c := newClient(t, srvURL)
	waitReady(t, c, 60*time.Second)
	tpl := filepath.Join(dir, "note.yaml")
	if err := os.WriteFile(tpl, []byte(noteTemplate), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, errOut, code := runDPE(t, dir, "template", "import", tpl, "--server", srvURL); code != 0 {
		t.Fatalf("import: %s%s", out, errOut)
	}
	return srvURL, c, dir
}

// instancesOf lists every instance of the note template, by name.
func instancesOf(t *testing.T, c *client.Client) map[string]model.Instance {
	t.Helper()
	out := map[string]model.Instance{}
	after := ""
	for {
		page, err := c.ListWorkflows(context.Background(), client.WorkflowQuery{Templates: []string{"note"}, Limit: 1000, After: after})
		if err != nil {
			t.Fatal(err)
		}
		for _, i := range page.Items {
			if _, dup := out[i.Name]; dup {
				t.Fatalf("instance name %s listed twice", i.Name)
			}
			out[i.Name] = i
		}
		if page.Next == "" {
			return out
		}
		after = page.Next
	}
}

// waitCount waits until cond holds for the note instances.
func waitCount(t *testing.T, c *client.Client, timeout time.Duration, what string, cond func(map[string]model.Instance) bool) map[string]model.Instance {
	t.Helper()
	return eventually.Value(t, timeout, func() (instanceSet, error) { return instancesOf(t, c), nil },
		func(m instanceSet) bool { return cond(m) }, what)
}

// instanceSet prints as its size in a failure message, not as every
// instance.
type instanceSet map[string]model.Instance

func (s instanceSet) String() string { return fmt.Sprintf("%d note instances", len(s)) }

// activeCopy returns the holder of trigger name's standby lease ("" for
// none).
func activeCopy(t *testing.T, c *client.Client, name string) string {
	t.Helper()
	list, err := c.ListTriggers(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range list {
		if x.Name == name {
			return x.Active
		}
	}
	return ""
}

// letWatchersPass proves that the folder watchers of inbox have polled
// for at least d since the call, by an event rather than a sleep: it
// drops marker files one after another and waits for the created
// instance of each, until d has passed. It returns how many markers it
// dropped (each one created instance more of watcher).
func letWatchersPass(t *testing.T, c *client.Client, inbox, watcher string, d time.Duration) int {
	t.Helper()
	start := time.Now()
	n := 0
	for n == 0 || time.Since(start) < d {
		if err := os.WriteFile(filepath.Join(inbox, fmt.Sprintf("zz-marker-%d.txt", n)), []byte("marker"), 0o644); err != nil {
			t.Fatal(err)
		}
		n++
		waitCount(t, c, time.Minute, fmt.Sprintf("the created instance of marker %d", n), func(m map[string]model.Instance) bool {
			k := 0
			for name := range m {
				if strings.Contains(name, watcher+"/created/") && strings.Contains(name, "zz-marker-") {
					k++
				}
			}
			return k >= n
		})
	}
	return n
}

func writeConfig(t *testing.T, dir, body string) string {
	t.Helper()
	p := filepath.Join(dir, fmt.Sprintf("dpe-%d.yaml", time.Now().UnixNano()))
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// fireTimes extracts the fire times of schedule instances, sorted.
func fireTimes(t *testing.T, got map[string]model.Instance, schedule string) []time.Time {
	t.Helper()
	var out []time.Time
	for name := range got {
		rest, ok := strings.CutPrefix(name, "schedule/"+schedule+"/")
		if !ok {
			continue
		}
		ft, err := time.Parse(time.RFC3339, rest)
		if err != nil {
			t.Fatalf("instance %s: %v", name, err)
		}
		out = append(out, ft)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Before(out[j]) })
	return out
}

// checkEverySecond fails unless times are consecutive seconds, one each.
func checkEverySecond(t *testing.T, times []time.Time) {
	t.Helper()
	if len(times) < 2 {
		t.Fatalf("only %d fires", len(times))
	}
	for i := 1; i < len(times); i++ {
		if d := times[i].Sub(times[i-1]); d != time.Second {
			t.Fatalf("fires %s and %s are %s apart: a fire time was missed or doubled", times[i-1].Format(time.TimeOnly), times[i].Format(time.TimeOnly), d)
		}
	}
}

// TestSchedulersExactlyOnce: two concurrent schedulers with a per-second
// schedule produce exactly one instance per fire time; then a standby pair
// whose leader is SIGKILLed keeps firing after the takeover with no missed
// and no doubled fire time.
func TestSchedulersExactlyOnce(t *testing.T) {
	srvURL, c, dir := triggerStack(t)
	cfg := writeConfig(t, dir, `
schedules:
  - name: tick
    cron: "* * * * * *"
    template: note
    args: {fire: "${{ fire_time }}"}
    misfire: once
    misfire_grace: 10s
`)
	a := startDPE(t, "sched-a", dir, "scheduler", "--server", srvURL, "--config", cfg, "--mode", "concurrent", "--id", "a")
	b := startDPE(t, "sched-b", dir, "scheduler", "--server", srvURL, "--config", cfg, "--mode", "concurrent", "--id", "b")
	// Wait for fires, not for a time: 18 consecutive fire times.
	waitCount(t, c, time.Minute, "18 fire times of the concurrent pair", func(m map[string]model.Instance) bool {
		return len(fireTimes(t, m, "tick")) >= 18
	})
	if err := a.stop(10 * time.Second); err != nil {
		t.Errorf("scheduler a: %v", err)
	}
	if err := b.stop(10 * time.Second); err != nil {
		t.Errorf("scheduler b: %v", err)
	}
	times := fireTimes(t, instancesOf(t, c), "tick")
	checkEverySecond(t, times)
	t.Logf("concurrent pair: %d fire times, one instance each", len(times))

	// Standby pair on the same schedule: continues from the stored last
	// fire time; the leader is SIGKILLed mid-run.
	standby := func(id string) *proc {
		return startDPE(t, "standby-"+id, dir, "scheduler", "--server", srvURL, "--config", cfg, "--mode", "standby", "--lease-ttl", "2s", "--id", id)
	}
	procs := map[string]*proc{"s0": standby("s0"), "s1": standby("s1")}
	// One of the pair takes the lease (the concurrent pair held none)
	// and fires under it: a fire time after the pair started.
	pairStarted := time.Now().Truncate(time.Second)
	leader := eventually.Value(t, 30*time.Second, func() (string, error) { return activeCopy(t, c, "tick"), nil },
		func(id string) bool { return procs[id] != nil }, "one of the standby pair to hold the tick lease")
	waitCount(t, c, 30*time.Second, "a fire of the standby pair", func(m map[string]model.Instance) bool {
		ts := fireTimes(t, m, "tick")
		return len(ts) > 0 && ts[len(ts)-1].After(pairStarted.Add(time.Second))
	})
	killedAt := time.Now()
	procs[leader].kill()
	t.Logf("SIGKILLed the active scheduler %s", leader)
	// The other copy takes over (lease TTL 2 s) and fires past the kill.
	waitCount(t, c, 30*time.Second, "fires of the standby 5 s past the kill", func(m map[string]model.Instance) bool {
		ts := fireTimes(t, m, "tick")
		return len(ts) > 0 && !ts[len(ts)-1].Before(killedAt.Add(5*time.Second))
	})
	for id, p := range procs {
		if id != leader {
			_ = p.stop(10 * time.Second)
		}
	}
	times = fireTimes(t, instancesOf(t, c), "tick")
	checkEverySecond(t, times)
	last := times[len(times)-1]
	if last.Before(killedAt.Add(5 * time.Second)) {
		t.Fatalf("last fire %s: the standby did not take over (killed at %s)", last, killedAt)
	}
	t.Logf("after the takeover: %d consecutive fire times, last %s", len(times), last.Format(time.TimeOnly))
}

// countEvents counts the note instances of a watcher by event; watcher is
// "name" for a folder watcher or "table/name" for a table watcher.
func countEvents(got map[string]model.Instance, watcher string) map[string]int {
	if !strings.Contains(watcher, "/") {
		watcher = "folder/" + watcher
	}
	n := map[string]int{}
	for name := range got {
		rest, ok := strings.CutPrefix(name, watcher+"/")
		if !ok {
			continue
		}
		ev, _, _ := strings.Cut(rest, "/")
		n[ev]++
	}
	return n
}

func folderConfig(name, dir, mode string) string {
	return `
folder_watchers:
  - name: ` + name + `
    path: ` + dir + `
    poll: 300ms
    stable_for: 1s
    full_pass_every: 5
    on:
      created: {template: note, args: {path: "${{ event.path }}", event: created}}
      updated: {template: note, args: {path: "${{ event.path }}", event: updated}}
      deleted: {template: note, args: {path: "${{ event.path }}", event: deleted}}
`
}

// TestFolderWatchersExactlyOnce: two concurrent watchers on one folder;
// 1,000 files created (ten written slowly over seconds), 200 updated, 300
// deleted: exactly one instance per event, none for a half-written file.
func TestFolderWatchersExactlyOnce(t *testing.T) {
	srvURL, c, dir := triggerStack(t)
	inbox := filepath.Join(dir, "inbox")
	if err := os.MkdirAll(inbox, 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := writeConfig(t, dir, folderConfig("inbox", inbox, "concurrent"))
	for _, id := range []string{"a", "b"} {
		startDPE(t, "watcher-"+id, dir, "folderwatcher", "--server", srvURL, "--config", cfg, "--mode", "concurrent", "--id", id)
	}
	file := func(i int) string { return filepath.Join(inbox, fmt.Sprintf("f%04d.wav", i)) }
	// Ten files written slowly, in ten chunks 300 ms apart.
	slowDone := make(chan error, 1)
	go func() {
		for chunk := range 10 {
			for i := 990; i < 1000; i++ {
				f, err := os.OpenFile(file(i), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
				if err != nil {
					slowDone <- err
					return
				}
				_, err = f.WriteString(strings.Repeat(strconv.Itoa(chunk), 1000))
				f.Close()
				if err != nil {
					slowDone <- err
					return
				}
			}
			time.Sleep(300 * time.Millisecond)
		}
		slowDone <- nil
	}()
	for i := range 990 {
		if err := os.WriteFile(file(i), []byte("take "+strconv.Itoa(i)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := <-slowDone; err != nil {
		t.Fatal(err)
	}
	got := waitCount(t, c, 2*time.Minute, "1000 created", func(m map[string]model.Instance) bool {
		return countEvents(m, "inbox")["created"] >= 1000
	})
	// The slow files started once, with their final size.
	for name := range got {
		for i := 990; i < 1000; i++ {
			if strings.Contains(name, fmt.Sprintf("/f%04d.wav@", i)) && !strings.Contains(name, "@10000:") {
				t.Errorf("instance %s: started for a half-written file (final size 10000)", name)
			}
		}
	}
	for i := range 200 {
		if err := os.WriteFile(file(i), []byte("take "+strconv.Itoa(i)+" revised"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	waitCount(t, c, time.Minute, "200 updated", func(m map[string]model.Instance) bool {
		return countEvents(m, "inbox")["updated"] >= 200
	})
	for i := 700; i < 1000; i++ {
		if err := os.Remove(file(i)); err != nil {
			t.Fatal(err)
		}
	}
	waitCount(t, c, time.Minute, "300 deleted", func(m map[string]model.Instance) bool {
		return countEvents(m, "inbox")["deleted"] >= 300
	})
	// Several full passes later (full_pass_every 5 at 300 ms: one each
	// 1.5 s) nothing more has started but the markers that prove it.
	markers := letWatchersPass(t, c, inbox, "inbox", 4*time.Second)
	n := countEvents(instancesOf(t, c), "inbox")
	if n["created"] != 1000+markers || n["updated"] != 200 || n["deleted"] != 300 {
		t.Fatalf("events %v, want created 1000 (+%d markers), updated 200, deleted 300", n, markers)
	}
}

// TestFolderWatcherStandbyTakeover: a standby pair whose active copy is
// SIGKILLed while files arrive still starts exactly one instance per file.
func TestFolderWatcherStandbyTakeover(t *testing.T) {
	srvURL, c, dir := triggerStack(t)
	inbox := filepath.Join(dir, "drop")
	if err := os.MkdirAll(inbox, 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := writeConfig(t, dir, folderConfig("drop", inbox, "standby"))
	procs := map[string]*proc{}
	for _, id := range []string{"s0", "s1"} {
		procs[id] = startDPE(t, "watcher-"+id, dir, "folderwatcher", "--server", srvURL, "--config", cfg, "--mode", "standby", "--lease-ttl", "2s", "--id", id)
	}
	const total = 400
	killed := false
	for i := range total {
		if err := os.WriteFile(filepath.Join(inbox, fmt.Sprintf("clip%04d.mxf", i)), []byte("essence "+strconv.Itoa(i)), 0o644); err != nil {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Millisecond)
		if i == total/2 && !killed {
			list, err := c.ListTriggers(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			for _, tr := range list {
				if tr.Name == "drop" && procs[tr.Active] != nil {
					procs[tr.Active].kill()
					killed = true
					t.Logf("SIGKILLed the active watcher %s after %d files", tr.Active, i+1)
				}
			}
		}
	}
	if !killed {
		t.Fatal("no active watcher found to kill")
	}
	waitCount(t, c, 2*time.Minute, "all created", func(m map[string]model.Instance) bool {
		return countEvents(m, "drop")["created"] >= total
	})
	markers := letWatchersPass(t, c, inbox, "drop", 3*time.Second)
	if n := countEvents(instancesOf(t, c), "drop"); n["created"] != total+markers || n["deleted"] != 0 || n["updated"] != 0 {
		t.Fatalf("events %v, want exactly %d created (+%d markers)", n, total, markers)
	}
}
