package main

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dpe-engine/dpe/internal/client"
	"github.com/dpe-engine/dpe/internal/config"
	"github.com/dpe-engine/dpe/internal/eventually"
	"github.com/dpe-engine/dpe/internal/model"
	"github.com/dpe-engine/dpe/internal/testdb"
	"github.com/dpe-engine/dpe/internal/testpg"
)

// The redundancy tests (issue #5) put the seed's recommendations under
// load with real processes: HAProxy in fail-over configuration in front of
// two servers (deploy/haproxy.cfg), and a core database that restarts.
// Both submit jobs from several goroutines for loadFor and require that no
// submit fails, that every acknowledged job exists exactly once and ends
// succeeded. Each prints a line starting with "REDUNDANCY" that can be
// quoted as it is.

const (
	loadFor     = 10 * time.Second      // how long the clients submit
	loadWorkers = 4                     // submitting goroutines
	loadEvery   = 25 * time.Millisecond // per goroutine: 160 jobs/s in all
	// leaseTTL of the test processors: long enough to ride out the
	// outages here on heartbeats, short enough that a job whose claim
	// answer was lost is re-run within the test.
	leaseTTL = "10s"
)

// TestHAProxyFailover: two servers on one PostgreSQL database behind a
// real HAProxy running deploy/haproxy.cfg (active + backup), then
// deploy/haproxy-active-active.cfg; clients and two processors talk only
// to HAProxy. server-a (the active one) is SIGKILLed mid-run. No submit
// may fail; the longest submit is the fail-over pause a client sees.
func TestHAProxyFailover(t *testing.T) {
	haproxy := haproxyBinary(t)
	t.Run("active-backup", func(t *testing.T) { haproxyFailover(t, haproxy, "haproxy.cfg", true) })
	t.Run("active-active", func(t *testing.T) { haproxyFailover(t, haproxy, "haproxy-active-active.cfg", false) })
}

// haproxyFailover runs TestHAProxyFailover with deploy/<cfgName>; with
// backup, server-a must answer everything before the kill.
func haproxyFailover(t *testing.T, haproxy, cfgName string, backup bool) {
	dsn := testdb.Postgres(t)
	dir := t.TempDir()
	addrA, addrB, addrLB := freeAddr(t), freeAddr(t), freeAddr(t)
	srvA := startDPE(t, "server-a", dir, "server", "--db", dsn, "--listen", addrA, "--id", "server-a", "--drain-delay", "1s")
	srvB := startDPE(t, "server-b", dir, "server", "--db", dsn, "--listen", addrB, "--id", "server-b", "--drain-delay", "1s")
	waitReady(t, newClient(t, "http://"+addrA), 60*time.Second)
	waitReady(t, newClient(t, "http://"+addrB), 60*time.Second)

	cfg := filepath.Join(dir, "haproxy.cfg")
	if err := os.WriteFile(cfg, []byte(haproxyConfig(t, cfgName, addrLB, addrA, addrB)), 0o644); err != nil {
		t.Fatal(err)
	}
	startCmd(t, "haproxy", exec.Command(haproxy, "-db", "-f", cfg))
	lb := "http://" + addrLB
	c := newClient(t, lb)
	waitReady(t, c, 30*time.Second)
	if id := answeringServer(t, c); backup && id != "server-a" {
		t.Fatalf("HAProxy sends requests to %s, want the active server-a", id)
	}
	procs := startProcessors(t, dir, lb)

	l := startLoad(c)
	waitSucceeded(t, c, 300, 60*time.Second)
	srvA.kill()
	killedAt := time.Now()
	l.wait()

	if id := answeringServer(t, c); id != "server-b" {
		t.Errorf("after the kill HAProxy sends requests to %s, want server-b", id)
	}
	checkJobs(t, c, l)
	pause, at := l.longestSubmit()
	t.Logf("REDUNDANCY haproxy-failover (deploy/%s): %d submits in %v, %d errors, %d took over 250ms; longest submit (the fail-over pause) %v, ended at +%v; server-a SIGKILLed at +%v",
		cfgName, l.submits, loadFor, len(l.errs), l.slow, pause.Round(time.Millisecond), l.since(at), l.since(killedAt))
	logProblems(t, append(procs, srvB)...)
}

// TestPostgresRestart: one server and two processors on a private
// PostgreSQL cluster (package testpg: the shared one must not be
// restarted), which is stopped, kept down for 2 s and started again
// mid-run. No submit may fail, no acknowledged job may be lost, and the
// server's /readyz must say 503 during the outage and 200 after it.
func TestPostgresRestart(t *testing.T) {
	pg := testpg.Start(t)
	dir := t.TempDir()
	addr := freeAddr(t)
	url := "http://" + addr
	srv := startDPE(t, "server", dir, "server", "--db", pg.DSN(), "--listen", addr)
	c := newClient(t, url)
	waitReady(t, c, 60*time.Second)
	procs := startProcessors(t, dir, url)
	ready := pollReady(t, url)

	l := startLoad(c)
	waitSucceeded(t, c, 300, 60*time.Second)
	stopAt := time.Now()
	pg.Restart(2 * time.Second)
	upAt := time.Now()
	l.wait()
	checkJobs(t, c, l)

	trace := ready.stop()
	t.Logf("/readyz answers (time since the load began, status): %s", trace.format(l.start))
	if !trace.saw(http.StatusServiceUnavailable, stopAt, upAt) {
		t.Errorf("/readyz never answered 503 while PostgreSQL was down")
	}
	if !trace.saw(http.StatusOK, upAt, time.Now()) || trace.last() != http.StatusOK {
		t.Errorf("/readyz did not come back to 200 after PostgreSQL restarted")
	}
	pause, at := l.longestSubmit()
	t.Logf("REDUNDANCY postgres-restart: %d submits in %v, %d errors, %d took over 250ms; longest submit %v, ended at +%v; PostgreSQL down from +%v to +%v (%v)",
		l.submits, loadFor, len(l.errs), l.slow, pause.Round(time.Millisecond), l.since(at), l.since(stopAt), l.since(upAt), upAt.Sub(stopAt).Round(time.Millisecond))
	logProblems(t, append(procs, srv)...)
}

// startProcessors starts two noop processors against url.
func startProcessors(t *testing.T, dir, url string) []*proc {
	t.Helper()
	var ps []*proc
	for _, id := range []string{"p1", "p2"} {
		ps = append(ps, startDPE(t, id, dir, "processor", "--server", url, "--id", id, "--quota", "noop=8", "--lease-ttl", leaseTTL, "--allow-path", dir))
	}
	return ps
}

// answeringServer is the id of the server that answers GET /v1/status.
func answeringServer(t *testing.T, c *client.Client) string {
	t.Helper()
	s, err := c.Status(context.Background())
	if err != nil {
		t.Fatalf("status: %v", err)
	}
	return s.Server.ID
}

// waitSucceeded waits until at least n jobs succeeded: the load is under
// way and processors work it.
func waitSucceeded(t *testing.T, c *client.Client, n int, timeout time.Duration) {
	t.Helper()
	eventually.Value(t, timeout, func() (int, error) {
		p, err := c.ListJobs(context.Background(), client.JobQuery{States: []model.JobState{model.JobSucceeded}, Limit: 1})
		return p.Total, err
	}, func(total int) bool { return total >= n }, fmt.Sprintf("%d jobs to succeed (last seen: how many did)", n))
}

// checkJobs waits until no job is queued or running, then requires that
// every acknowledged job exists, once, and succeeded, and that no submit
// failed. Jobs run more than once are reported, not failed: each had a
// lease that expired (a claim answer lost on the way, or heartbeats that
// could not get through) and ran again after it.
func checkJobs(t *testing.T, c *client.Client, l *load) {
	t.Helper()
	for _, e := range l.errs {
		t.Errorf("client-visible error: %s", e)
	}
	ctx := context.Background()
	eventually.Value(t, 3*time.Minute, func() (int, error) {
		p, err := c.ListJobs(ctx, client.JobQuery{States: []model.JobState{model.JobQueued, model.JobRunning}, Limit: 1})
		return p.Total, err
	}, func(total int) bool { return total == 0 }, "no job queued or running after the load (last seen: how many were)")
	all := map[int64]model.Job{}
	for j, err := range c.AllJobs(ctx, client.JobQuery{Limit: 1000}) {
		if err != nil {
			t.Fatalf("list jobs: %v", err)
		}
		all[j.ID] = j
	}
	bad := 0
	for _, id := range l.acked {
		j, ok := all[id]
		switch {
		case !ok:
			t.Errorf("acknowledged job %d does not exist", id)
		case j.State != model.JobSucceeded:
			t.Errorf("acknowledged job %d ended %s: %s", id, j.State, j.Error)
		default:
			continue
		}
		if bad++; bad == 20 {
			t.Fatalf("giving up after %d bad jobs", bad)
		}
	}
	if len(all) != len(l.acked) {
		t.Errorf("%d jobs in the core database, %d acknowledged: duplicates or unacknowledged jobs", len(all), len(l.acked))
	}
	var rerun []string
	for _, j := range all {
		if j.Attempt > 1 {
			rerun = append(rerun, fmt.Sprintf("job %d attempt %d epoch %d on %s", j.ID, j.Attempt, j.Epoch, j.Processor))
		}
	}
	slices.Sort(rerun)
	t.Logf("%d of %d acknowledged jobs succeeded; %d ran more than once (lease expired: claim answer lost or heartbeats failed): %v",
		len(l.acked)-bad, len(l.acked), len(rerun), rerun[:min(len(rerun), 10)])
}

// logProblems logs, per process, how often each WARN and ERROR message
// came: what the roles saw of the outage (warnings of calls that were
// retried are expected).
func logProblems(t *testing.T, ps ...*proc) {
	t.Helper()
	msgRe := regexp.MustCompile(`level=(WARN|ERROR) msg=("(?:[^"\\]|\\.)*"|\S+)`)
	for _, p := range ps {
		counts := map[string]int{}
		for line := range strings.Lines(p.output()) {
			if m := msgRe.FindStringSubmatch(line); m != nil {
				counts[m[1]+" "+strings.Trim(m[2], `"`)]++
			}
		}
		var parts []string
		for _, k := range slices.Sorted(maps.Keys(counts)) {
			parts = append(parts, fmt.Sprintf("%s ×%d", k, counts[k]))
		}
		t.Logf("%s logged: %s", p.name, cmp.Or(strings.Join(parts, "; "), "no warnings or errors"))
	}
}

// haproxyBinary finds haproxy, or skips the test (fails when strict).
func haproxyBinary(t *testing.T) string {
	t.Helper()
	for _, p := range []string{"haproxy", "/usr/sbin/haproxy", "/usr/local/sbin/haproxy"} {
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	msg := "haproxy not installed: skipping the HAProxy fail-over test (apt-get install haproxy)"
	if os.Getenv(testdb.EnvStrict) == "1" {
		t.Fatal(msg + "; " + testdb.EnvStrict + "=1 makes this a failure")
	}
	t.Skip(msg)
	return ""
}

// haproxyConfig is deploy/<name> made runnable here: its defaults,
// frontend and backend sections as they are, with the bind address and
// the addresses of dpe-a and dpe-b replaced, under a global section for a
// foreground process of an unprivileged test (no chroot, user, daemon or
// syslog). The test fails when the file no longer has those lines.
func haproxyConfig(t *testing.T, name, listen, a, b string) string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("../../deploy", name))
	if err != nil {
		t.Fatal(err)
	}
	s := string(raw)
	i := strings.Index(s, "\ndefaults")
	if i < 0 {
		t.Fatal("deploy/" + name + " has no defaults section")
	}
	s = "global\n    maxconn 1024\n" + s[i:]
	for _, r := range []struct{ re, addr string }{
		{`(?m)^(\s*bind\s+)\S+`, listen},
		{`(?m)^(\s*server\s+dpe-a\s+)\S+`, a},
		{`(?m)^(\s*server\s+dpe-b\s+)\S+`, b},
	} {
		re := regexp.MustCompile(r.re)
		if !re.MatchString(s) {
			t.Fatalf("deploy/%s: no line matches %s", name, r.re)
		}
		s = re.ReplaceAllString(s, "${1}"+r.addr)
	}
	return s
}

// load submits noop jobs through one client from loadWorkers goroutines,
// each every loadEvery, for loadFor, and records what the callers saw.
type load struct {
	start time.Time
	wg    sync.WaitGroup

	mu       sync.Mutex
	submits  int
	slow     int // submits that took over 250ms
	acked    []int64
	errs     []string
	longest  time.Duration
	longEnds time.Time
}

// startLoad starts the submitting goroutines; wait ends them.
func startLoad(c *client.Client) *load {
	l := &load{start: time.Now()}
	for range loadWorkers {
		l.wg.Go(func() { l.submitLoop(c) })
	}
	return l
}

func (l *load) submitLoop(c *client.Client) {
	tick := time.NewTicker(loadEvery)
	defer tick.Stop()
	spec := model.JobSpec{Type: "noop", Params: []byte(`{"sleep":"20ms"}`)}
	for range tick.C {
		if time.Since(l.start) >= loadFor {
			return
		}
		// The client's own Deadline (30 s) bounds the call and its retries.
		began := time.Now()
		j, err := c.SubmitJob(context.Background(), spec)
		took := time.Since(began)
		l.mu.Lock()
		l.submits++
		if err != nil {
			l.errs = append(l.errs, fmt.Sprintf("+%v after %v: %v", l.since(began), took.Round(time.Millisecond), err))
		} else {
			l.acked = append(l.acked, j.ID)
		}
		if took > 250*time.Millisecond {
			l.slow++
		}
		if took > l.longest {
			l.longest, l.longEnds = took, time.Now()
		}
		l.mu.Unlock()
	}
}

// wait waits for the submitting goroutines to end.
func (l *load) wait() { l.wg.Wait() }

// longestSubmit is the longest single submit and when it ended.
func (l *load) longestSubmit() (time.Duration, time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.longest, l.longEnds
}

// since is t relative to the start of the load, for logs.
func (l *load) since(t time.Time) time.Duration { return t.Sub(l.start).Round(time.Millisecond) }

// readyTrace is what a server's /readyz answered over time: one entry per
// change (status 0: no answer).
type readyTrace []readyChange

type readyChange struct {
	at     time.Time
	status int
}

// saw reports whether /readyz answered status at some time in [from, to]
// (a change before from that still held at from counts).
func (tr readyTrace) saw(status int, from, to time.Time) bool {
	for i, c := range tr {
		end := to
		if i+1 < len(tr) {
			end = tr[i+1].at
		}
		if c.status == status && !c.at.After(to) && !end.Before(from) {
			return true
		}
	}
	return false
}

func (tr readyTrace) last() int {
	if len(tr) == 0 {
		return 0
	}
	return tr[len(tr)-1].status
}

// format lists the changes with their times relative to origin.
func (tr readyTrace) format(origin time.Time) string {
	var b strings.Builder
	for i, c := range tr {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "+%v %d", c.at.Sub(origin).Round(10*time.Millisecond), c.status)
	}
	return b.String()
}

// readyPoller asks a server's /readyz every 100 ms in the background.
type readyPoller struct {
	stopc chan struct{}
	done  chan struct{}
	trace readyTrace
}

// pollReady starts polling base+"/readyz"; stop ends it and returns the
// trace.
func pollReady(t *testing.T, base string) *readyPoller {
	t.Helper()
	p := &readyPoller{stopc: make(chan struct{}), done: make(chan struct{})}
	hc := &http.Client{Timeout: 3 * time.Second}
	go func() {
		defer close(p.done)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			status := 0
			if resp, err := hc.Get(base + "/readyz"); err == nil {
				status = resp.StatusCode
				resp.Body.Close()
			}
			if len(p.trace) == 0 || p.trace.last() != status {
				p.trace = append(p.trace, readyChange{time.Now(), status})
			}
			select {
			case <-p.stopc:
				return
			case <-tick.C:
			}
		}
	}()
	t.Cleanup(func() { p.stop() })
	return p
}

// stop ends the polling (once) and returns the trace.
func (p *readyPoller) stop() readyTrace {
	select {
	case <-p.stopc:
	default:
		close(p.stopc)
	}
	<-p.done
	return p.trace
}

// TestDeployExamples keeps deploy/ honest: both HAProxy configurations
// pass `haproxy -c`, the example config file loads, and every systemd unit
// restarts its role and gives it longer to stop than its own grace.
func TestDeployExamples(t *testing.T) {
	// The folder watcher's folder must exist: let it be a temporary one.
	example, err := os.ReadFile("../../deploy/dpe.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	example = []byte(strings.ReplaceAll(string(example), "/data/inbox", t.TempDir()))
	if _, err := config.Parse("deploy/dpe.example.yaml", example); err != nil {
		t.Errorf("%v", err)
	}
	for _, role := range []string{"server", "processor", "worker", "scheduler", "folderwatcher", "tablewatcher"} {
		checkUnit(t, role)
	}
	haproxy := haproxyBinary(t)
	for _, f := range []string{"haproxy.cfg", "haproxy-active-active.cfg"} {
		out, err := exec.Command(haproxy, "-c", "-f", filepath.Join("../../deploy", f)).CombinedOutput()
		if err != nil || strings.Contains(string(out), "WARNING") {
			t.Errorf("haproxy -c -f deploy/%s: %v\n%s", f, err, out)
		}
	}
}

// checkUnit checks deploy/systemd/dpe-ROLE.service.
func checkUnit(t *testing.T, role string) {
	t.Helper()
	name := "deploy/systemd/dpe-" + role + ".service"
	b, err := os.ReadFile("../../" + name)
	if err != nil {
		t.Error(err)
		return
	}
	unit := string(b)
	for _, want := range []string{"Restart=always\n", "RestartSec=1\n", "KillSignal=SIGTERM\n", "EnvironmentFile=/etc/dpe/env\n", "ExecStart=/usr/local/bin/dpe " + role + " "} {
		if !strings.Contains(unit, want) {
			t.Errorf("%s lacks %q", name, strings.TrimSpace(want))
		}
	}
	// The command line, with its continuation lines.
	cmdline := regexp.MustCompile(`(?m)^ExecStart=(?:.*\\\n)*.*$`).FindString(unit)
	dur := func(text, re string) time.Duration {
		m := regexp.MustCompile(re).FindStringSubmatch(text)
		if m == nil {
			return 0
		}
		d, err := time.ParseDuration(m[1])
		if err != nil {
			t.Errorf("%s: %s: %v", name, re, err)
		}
		return d
	}
	stop := dur(unit, `(?m)^TimeoutStopSec=(\S+)$`)
	grace := dur(cmdline, `--drain-delay (\S+)`) + dur(cmdline, `--shutdown-grace (\S+)`) + dur(cmdline, `--grace (\S+)`)
	if grace == 0 && (role == "server" || role == "processor") {
		t.Errorf("%s: no grace found on the command line %q", name, cmdline)
	}
	if stop <= grace {
		t.Errorf("%s: TimeoutStopSec=%v is not longer than the role's grace %v", name, stop, grace)
	}
}
