package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/dpe-engine/dpe/internal/client"
	"github.com/dpe-engine/dpe/internal/eventually"
	"github.com/dpe-engine/dpe/internal/model"
	"github.com/dpe-engine/dpe/internal/server/jobs"
	"github.com/dpe-engine/dpe/internal/testpg"
)

// TestChaos is the fault-injection suite of issue #5: a whole redundant
// plant in real processes, under steady load, while processes are killed
// for a bounded time; then the plant settles and the invariants are
// checked and printed, one line each starting with "CHAOS".
//
// Topology, every client pointed at HAProxy:
//
//	PostgreSQL (a private testpg cluster: it is restarted)
//	  ← server-a, server-b (dpe server, --drain-delay 1s)
//	  ← HAProxy running deploy/haproxy.cfg (server-a active, server-b backup)
//	  ← proc1..proc3  dpe processor, noop and util.* quotas, --lease-ttl 3s
//	    worker1, worker2  dpe worker --mode concurrent --lease-ttl 3s: both
//	      drive instances, so a SIGKILL leaves one active and the dead one's
//	      instance leases (3 s) are taken over; a standby pair would idle
//	      one copy and test only the group lease, which
//	      TestWorkersSurviveSIGKILL covers
//	    sched1, sched2  dpe scheduler --mode concurrent: one schedule
//	      firing chaos-tick every second (misfire: all, so an outage of
//	      both copies starts every missed second afterwards)
//	    watch1, watch2  dpe folderwatcher --mode concurrent on one folder
//	      into which the test drops a file every 500 ms (chaos-file: a
//	      util.checksum of the file)
//	    the test's load client: chaosLoaders goroutines each starting a
//	      chaos-load instance (job, job, set) every second
//
// Faults, during DPE_CHAOS_DURATION (default 45 s; `make chaos` runs 5 m):
// every ~3 s a SIGKILL of a random role's random live copy, restarted
// after 0.5–4.5 s (so two copies of a role are sometimes down together;
// never both servers: a server is killed only while the other one has
// answered /readyz for a while); once PostgreSQL stopped for 2 s
// (testpg.Restart); once the processor holding the most jobs SIGSTOPped
// for three lease TTLs, then SIGCONTed: its jobs must have been run again
// under a newer epoch and nothing it reports for the old one may be taken.
//
// Checked after the plant settled (chaos_check_test.go): (1) every
// acknowledged start exists and succeeded; (2) one instance per fire time
// (no second missed or doubled) and per dropped file; (3) one succeeded
// job row per (instance, job step); (4) no client-visible error; (5) the
// longest time each role had no live copy, and the longest client call.
// Also checked: the fencing of the frozen processor, no role crashing by
// itself, and, sampled at every kill, that no job or instance lease runs
// further ahead than its holder's --lease-ttl. A listing that takes over
// chaosStallAfter records what PostgreSQL's sessions are doing.
//
// DPE_CHAOS_SEED fixes the choice of victims and pauses (the timing of a
// real plant still varies). The processes log at info into memory; when the
// test fails every process's output and the injection log are written to
// a kept directory named in the log.
func TestChaos(t *testing.T) {
	duration := chaosDuration(t)
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv(chaosSeedEnv); s != "" {
		var err error
		if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			t.Fatalf("%s=%q: %v", chaosSeedEnv, s, err)
		}
	}
	haproxy := haproxyBinary(t) // skips, or fails when DPE_TEST_STRICT=1
	pg := testpg.Start(t)       // the same for the PostgreSQL binaries
	r := startChaos(t, haproxy, pg, seed)

	load := startChaosLoad(r.c)
	drops := startDropper(t, r.inbox, r.staging)
	r.warmUp(load)

	r.origin = time.Now()
	until := r.origin.Add(duration)
	t.Logf("CHAOS run: %v of faults, seed %d (%s=%d repeats the victims); 2 servers behind HAProxy (deploy/haproxy.cfg) on a private PostgreSQL, 3 processors, 2 concurrent workers, 2 concurrent schedulers, 2 concurrent folder watchers; %d workflow starts/s, 1 fire/s, %v between files",
		duration, seed, chaosSeedEnv, seed, chaosLoaders, chaosDropEvery)
	r.inject(pg, until)
	load.end()
	files, err := drops.end()
	if err != nil {
		t.Fatal(err)
	}
	injectionsEnd := time.Now()
	r.endInjections()

	r.settle(files)
	settled := time.Since(injectionsEnd)
	r.check(load, files, until, settled)
}

// Settings of TestChaos.
const (
	chaosDurationEnv     = "DPE_CHAOS_DURATION"
	chaosSeedEnv         = "DPE_CHAOS_SEED"
	chaosDefaultDuration = 45 * time.Second
	// chaosMinDuration leaves room for the PostgreSQL restart, the
	// freeze and kills around them.
	chaosMinDuration = 30 * time.Second

	chaosKillEvery = 3 * time.Second // ± a sixth
	chaosPauseMin  = 500 * time.Millisecond
	chaosPauseMax  = 4500 * time.Millisecond
	// chaosServerSolid: a server is killed only while the other one has
	// answered /readyz for at least this long, so that HAProxy (checks
	// every 500 ms, rise 2) has it in service: never both down at once.
	chaosServerSolid = 2 * time.Second
	chaosLeaseTTL    = 3 * time.Second // processors and workers
	chaosFreezeFor   = 3 * chaosLeaseTTL
	chaosDBDown      = 2 * time.Second

	chaosLoaders    = 3           // load goroutines
	chaosStartEvery = time.Second // per load goroutine
	chaosDropEvery  = 500 * time.Millisecond
	// chaosSettle bounds each wait after the faults: the folder watchers
	// catching up, then every instance and job reaching a final state.
	chaosSettle = 5 * time.Minute
	// chaosStallAfter: listings that take longer mean the plant stalls
	// (the PostgreSQL restart costs about 3 s); then what PostgreSQL is
	// doing is recorded (diagnoseStall).
	chaosStallAfter = 5 * time.Second
)

// The templates cannot fail: noop jobs and checksums of files that stay,
// each with far more attempts than kills can use up.
const (
	chaosLoadTemplate = `name: chaos-load
description: TestChaos load - two jobs and a set
steps:
  - {id: first, job: noop, params: {sleep: 1s}, retry: {max_attempts: 25, backoff: 100ms, backoff_max: 1s}}
  - {id: second, job: noop, params: {sleep: 500ms}, retry: {max_attempts: 25, backoff: 100ms, backoff_max: 1s}}
  - {id: done, set: {done: true}}
`
	chaosTickTemplate = `name: chaos-tick
description: TestChaos schedule - one short job per fire
args:
  fire: {type: string, default: ""}
steps:
  - {id: work, job: noop, params: {sleep: 50ms}, retry: {max_attempts: 25, backoff: 100ms, backoff_max: 1s}}
`
	chaosFileTemplate = `name: chaos-file
description: TestChaos folder watcher - checksum of the dropped file
args:
  path: {type: string, required: true}
steps:
  - {id: work, job: util.checksum, params: {path: "${{ args.path }}"}, retry: {max_attempts: 25, backoff: 100ms, backoff_max: 1s}}
  - {id: done, set: {sum: "${{ steps.work.result.checksum }}"}}
`
)

// chaosJobSteps are the job steps of each template: one job row each per
// instance.
var chaosJobSteps = map[string][]string{
	"chaos-load": {"first", "second"},
	"chaos-tick": {"work"},
	"chaos-file": {"work"},
}

// chaosDuration reads DPE_CHAOS_DURATION.
func chaosDuration(t *testing.T) time.Duration {
	t.Helper()
	s := os.Getenv(chaosDurationEnv)
	if s == "" {
		return chaosDefaultDuration
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		t.Fatalf("%s=%q: %v", chaosDurationEnv, s, err)
	}
	if d < chaosMinDuration {
		t.Fatalf("%s=%v: at least %v", chaosDurationEnv, d, chaosMinDuration)
	}
	return d
}

// chaosCopy is one copy of a role: the process that runs now and how to
// start the next one. Only the test goroutine touches it.
type chaosCopy struct {
	role, name string
	args       []string // the command line without --id
	// genIDs: each incarnation gets --id NAME-gN, so leases, job rows and
	// logs tell them apart. Servers keep their name (HAProxy's view).
	genIDs     bool
	addr       string // servers: their own listen address
	gen        int
	id         string // the --id of the current incarnation
	p          *proc
	alive      bool
	frozen     bool
	startedAt  time.Time
	readySince time.Time // servers: first /readyz 200 seen since the start
	restartAt  time.Time // while dead: when to start it again
}

// chaosFreeze is the SIGSTOP of a processor.
type chaosFreeze struct {
	copy           *chaosCopy
	p              *proc
	id             string
	stopAt, contAt time.Time
	held           []model.Job // what the server had it running after the stop
	outMark        int         // length of its output at SIGCONT
}

// chaosRun is the topology and the injection log of one TestChaos. Only
// the test goroutine touches it.
type chaosRun struct {
	t              *testing.T
	dir            string
	inbox, staging string
	rng            *rand.Rand
	c              *client.Client // through HAProxy
	lb             string
	copies         []*chaosCopy
	procs          []*proc // every process started, for the logs
	origin         time.Time
	events         []chaosEvent
	kills          map[string]int
	freeze         *chaosFreeze
	freezeFailed   string
	dbDown, dbUp   time.Time
	dsn            string   // the core database, for stall diagnostics
	stalls         []string // what PostgreSQL was doing when the plant stalled
	crashes        []string
	leases         leaseSamples
}

// leaseSamples is what the listings of running jobs and instances said
// about lease horizons during the faults. The server sets a lease to its
// write time plus the holder's TTL (processors and workers here run with
// chaosLeaseTTL), so no lease may run further ahead of the moment a
// listing came back than that: a longer one lets a holder that hangs keep
// its work past the TTL it asked for.
type leaseSamples struct {
	lists, jobs, instances  int
	longestJob, longestInst time.Duration
	over                    map[string]string // "job 000000042" / "instance 000000007" (sorts) → evidence
	// overJobs counts the job leases in over; progressed those of them
	// that had reported progress and ran at most jobs.DefaultLeaseTTL
	// ahead, the mark of a progress call renewing a lease by the server's
	// default instead of the processor's TTL.
	overJobs, progressed int
}

// note records one lease seen in a listing answered at answered; what
// describes the holder for the evidence.
func (ls *leaseSamples) note(kind string, id int64, until time.Time, answered time.Time, longest *time.Duration, what func() string) {
	ahead := until.Sub(answered)
	*longest = max(*longest, ahead)
	if ahead <= chaosLeaseTTL+500*time.Millisecond { // clock slack: one machine
		return
	}
	if ls.over == nil {
		ls.over = map[string]string{}
	}
	if key := leaseKey(kind, id); ls.over[key] == "" {
		ls.over[key] = fmt.Sprintf("%s %d %s leased until %s, %.1fs ahead", kind, id, what(), until.Format(time.TimeOnly+".000"), ahead.Seconds())
	}
}

// leaseKey is the key of a lease in leaseSamples.over: by kind, then id.
func leaseKey(kind string, id int64) string { return fmt.Sprintf("%s %012d", kind, id) }

// startChaos starts the topology: servers, HAProxy, templates, then every
// other role.
func startChaos(t *testing.T, haproxy string, pg *testpg.Cluster, seed uint64) *chaosRun {
	t.Helper()
	dir := t.TempDir()
	r := &chaosRun{t: t, dir: dir, inbox: filepath.Join(dir, "inbox"), staging: filepath.Join(dir, "staging"),
		rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), kills: map[string]int{}, dsn: pg.DSN()}
	for _, d := range []string{r.inbox, r.staging} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// Registered after testpg's cleanup, so it runs before it: the
	// processes die before their database.
	t.Cleanup(r.cleanup)

	addrA, addrB, addrLB := freeAddr(t), freeAddr(t), freeAddr(t)
	for _, s := range []struct{ name, addr string }{{"server-a", addrA}, {"server-b", addrB}} {
		r.copies = append(r.copies, &chaosCopy{role: "server", name: s.name, addr: s.addr,
			args: []string{"server", "--db", pg.DSN(), "--listen", s.addr, "--drain-delay", "1s"}})
	}
	for _, c := range r.copies {
		r.start(c)
	}
	for _, c := range r.copies {
		waitReady(t, newClient(t, "http://"+c.addr), 60*time.Second)
	}
	cfg := filepath.Join(dir, "haproxy.cfg")
	if err := os.WriteFile(cfg, []byte(haproxyConfig(t, "haproxy.cfg", addrLB, addrA, addrB)), 0o644); err != nil {
		t.Fatal(err)
	}
	startCmd(t, "haproxy", exec.Command(haproxy, "-db", "-f", cfg))
	r.lb = "http://" + addrLB
	r.c = newClient(t, r.lb)
	waitReady(t, r.c, 30*time.Second)

	for name, body := range map[string]string{"chaos-load": chaosLoadTemplate, "chaos-tick": chaosTickTemplate, "chaos-file": chaosFileTemplate} {
		p := filepath.Join(dir, name+".yaml")
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		if out, errOut, code := runDPE(t, dir, "template", "import", p, "--server", r.lb); code != 0 {
			t.Fatalf("template import %s: %s%s", name, out, errOut)
		}
	}
	conf := filepath.Join(dir, "dpe.yaml")
	if err := os.WriteFile(conf, []byte(`
schedules:
  - name: chaos-tick
    cron: "* * * * * *"
    template: chaos-tick
    args: {fire: "${{ fire_time }}"}
    misfire: all
    misfire_grace: 2s
folder_watchers:
  - name: chaos-inbox
    path: `+r.inbox+`
    include: ["*.mxf"]
    poll: 300ms
    stable_for: 1s
    full_pass_every: 5
    on:
      created: {template: chaos-file, args: {path: "${{ event.path }}"}}
`), 0o644); err != nil {
		t.Fatal(err)
	}

	lease := chaosLeaseTTL.String()
	add := func(role, name string, args ...string) {
		r.copies = append(r.copies, &chaosCopy{role: role, name: name, genIDs: true,
			args: append([]string{role, "--server", r.lb}, args...)})
	}
	for i := 1; i <= 3; i++ {
		add("processor", fmt.Sprintf("proc%d", i), "--lease-ttl", lease, "--grace", "5s", "--allow-path", dir,
			"--quota", "noop=8", "--quota", "util.checksum=4", "--quota", "util.copy=2",
			"--quota", "util.move=2", "--quota", "util.delete=2", "--quota", "util.mkdir=2")
	}
	for i := 1; i <= 2; i++ {
		add("worker", fmt.Sprintf("worker%d", i), "--mode", "concurrent", "--lease-ttl", lease)
	}
	for i := 1; i <= 2; i++ {
		add("scheduler", fmt.Sprintf("sched%d", i), "--config", conf, "--mode", "concurrent")
	}
	for i := 1; i <= 2; i++ {
		add("folderwatcher", fmt.Sprintf("watch%d", i), "--config", conf, "--mode", "concurrent")
	}
	for _, c := range r.copies[2:] {
		r.start(c)
	}
	return r
}

// spawn starts `dpe args...` like startDPE, but the output stays in
// memory until cleanup writes it to files when the test failed (dozens
// of incarnations would drown the test log).
func (r *chaosRun) spawn(name string, args ...string) *proc {
	t := r.t
	t.Helper()
	cmd := exec.Command(dpeBinary(t), args...)
	cmd.Dir = r.dir
	cmd.Env = append(os.Environ(), "DPE_LOG_LEVEL=info")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	p := &proc{t: t, name: name, cmd: cmd, done: make(chan struct{}), line: make(chan string, 1024)}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go p.collect(&wg, stdout, true)
	go p.collect(&wg, stderr, false)
	go func() {
		wg.Wait()
		p.err = cmd.Wait()
		close(p.done)
	}()
	r.procs = append(r.procs, p)
	return p
}

// cleanup kills every process; when the test failed it keeps their
// output and the injection log in a directory it names.
func (r *chaosRun) cleanup() {
	for _, p := range r.procs {
		p.kill()
	}
	if !r.t.Failed() {
		return
	}
	dir, err := os.MkdirTemp("", "dpe-chaos-logs-")
	if err != nil {
		r.t.Logf("CHAOS could not keep the logs: %v", err)
		return
	}
	for _, p := range r.procs {
		_ = os.WriteFile(filepath.Join(dir, p.name+".log"), []byte(p.output()), 0o644)
	}
	_ = os.WriteFile(filepath.Join(dir, "injections.log"), []byte(r.timeline()), 0o644)
	if len(r.stalls) > 0 {
		_ = os.WriteFile(filepath.Join(dir, "stalls.log"), []byte(strings.Join(r.stalls, "\n\n")), 0o644)
	}
	r.t.Logf("CHAOS logs of all %d processes and the injection log kept in %s", len(r.procs), dir)
}

// timeline is the injection log, one event a line, times since origin.
func (r *chaosRun) timeline() string {
	var b strings.Builder
	for _, e := range r.events {
		fmt.Fprintf(&b, "%+9.3fs %-13s %-9s %s\n", e.at.Sub(r.origin).Seconds(), e.role, e.copy, e.what)
	}
	return b.String()
}

func (r *chaosRun) note(c *chaosCopy, what string) {
	r.events = append(r.events, chaosEvent{at: time.Now(), role: c.role, copy: c.name, what: what})
}

// start starts the next incarnation of c.
func (r *chaosRun) start(c *chaosCopy) {
	c.gen++
	c.id = c.name
	if c.genIDs {
		c.id = fmt.Sprintf("%s-g%d", c.name, c.gen)
	}
	c.p = r.spawn(fmt.Sprintf("%s.g%d", c.name, c.gen), append(slices.Clone(c.args), "--id", c.id)...)
	c.alive, c.startedAt, c.readySince, c.restartAt = true, time.Now(), time.Time{}, time.Time{}
	r.note(c, "start")
}

// kill SIGKILLs c and schedules its restart after a random pause.
func (r *chaosRun) kill(c *chaosCopy) {
	c.p.kill()
	c.alive = false
	r.kills[c.role]++
	r.note(c, "kill")
	c.restartAt = time.Now().Add(chaosPauseMin + time.Duration(r.rng.Int64N(int64(chaosPauseMax-chaosPauseMin))))
}

func (r *chaosRun) since(at time.Time) string {
	return fmt.Sprintf("+%.1fs", at.Sub(r.origin).Seconds())
}

// warmUp waits until the plant works end to end before the faults begin:
// a load instance and a scheduled one succeeded, a file was seen. It
// fails at once when a role exits by itself (a bad flag, say).
func (r *chaosRun) warmUp(load *chaosLoad) {
	t := r.t
	n := map[string]int{}
	if !eventually.Within(90*time.Second, func() bool {
		r.reapCrashes()
		if len(r.crashes) > 0 {
			t.Fatalf("before any fault: %s", strings.Join(r.crashes, "\n"))
		}
		for _, tpl := range []string{"chaos-load", "chaos-tick", "chaos-file"} {
			q := client.WorkflowQuery{Templates: []string{tpl}, States: []model.InstanceState{model.InstanceSucceeded}, Limit: 1}
			page, err := r.c.ListWorkflows(context.Background(), q)
			if err != nil {
				t.Fatalf("warm-up: list %s: %v", tpl, err)
			}
			n[tpl] = page.Total
		}
		return n["chaos-load"] > 0 && n["chaos-tick"] > 0 && n["chaos-file"] > 0
	}) {
		t.Fatalf("the plant did not work within 90 s before any fault: succeeded instances %v; load errors %v", n, load.errors())
	}
}

// inject runs the faults until until: kills and restarts, one PostgreSQL
// restart, one processor freeze. Everything happens on this goroutine, in
// a 50 ms loop, so the injection log is ordered and testpg is called
// from the test goroutine as it must be.
func (r *chaosRun) inject(pg *testpg.Cluster, until time.Time) {
	d := until.Sub(r.origin)
	nextKill := r.origin.Add(chaosKillEvery / 2)
	dbAt := r.origin.Add(d * 3 / 10)
	freezeAt := r.origin.Add(d * 55 / 100)
	lastFreeze := until.Add(-chaosFreezeFor - 2*time.Second)
	dbDone, freezeDone := false, false
	for now := time.Now(); now.Before(until); now = time.Now() {
		r.reapCrashes()
		for _, c := range r.copies {
			if !c.alive && !c.restartAt.IsZero() && !now.Before(c.restartAt) {
				r.start(c)
			}
		}
		switch f := r.freeze; {
		case f != nil && f.contAt.IsZero() && !now.Before(f.stopAt.Add(chaosFreezeFor)):
			r.thaw()
		case !dbDone && !now.Before(dbAt):
			r.restartDB(pg)
			dbDone = true
		case !freezeDone && !now.Before(freezeAt):
			if r.tryFreeze() {
				freezeDone = true
			} else if freezeAt = now.Add(time.Second); freezeAt.After(lastFreeze) {
				freezeDone = true
				r.freezeFailed = "no processor held a job at any of the freeze attempts"
			}
		case !now.Before(nextKill):
			began := time.Now()
			r.runningJobs() // lease samples
			r.sampleInstanceLeases()
			if took := time.Since(began); took > chaosStallAfter {
				r.diagnoseStall(fmt.Sprintf("two listings through HAProxy took %.1fs at %s", took.Seconds(), r.since(began)))
			}
			r.killOne()
			jitter := time.Duration(r.rng.Int64N(int64(chaosKillEvery/3))) - chaosKillEvery/6
			nextKill = now.Add(chaosKillEvery + jitter)
		}
		time.Sleep(50 * time.Millisecond) // the injection clock's tick
	}
}

// endInjections thaws a frozen processor and starts every dead copy.
func (r *chaosRun) endInjections() {
	if f := r.freeze; f != nil && f.contAt.IsZero() {
		r.thaw()
	}
	for _, c := range r.copies {
		if !c.alive {
			r.start(c)
		}
	}
}

// reapCrashes notes copies that exited although nobody killed them: an
// engine crash. They are started again after a second.
func (r *chaosRun) reapCrashes() {
	for _, c := range r.copies {
		if !c.alive {
			continue
		}
		select {
		case <-c.p.done:
		default:
			continue
		}
		out := c.p.output()
		lines := strings.Split(strings.TrimSpace(out), "\n")
		r.crashes = append(r.crashes, fmt.Sprintf("%s (%s) exited by itself at %s: %v; last lines: %s",
			c.p.name, c.id, r.since(time.Now()), c.p.err, strings.Join(lines[max(0, len(lines)-8):], " | ")))
		c.alive = false
		r.note(c, "crash")
		c.restartAt = time.Now().Add(time.Second)
	}
}

// killOne SIGKILLs a random live copy of a random role. A frozen
// processor, a thawed one that has not yet shown its fencing (logged a
// refusal; at most 30 s) and a server whose peer is not solidly serving
// are spared.
func (r *chaosRun) killOne() {
	byRole := map[string][]*chaosCopy{}
	for _, c := range r.copies {
		switch {
		case !c.alive || c.frozen, r.freeze != nil && c.p == r.freeze.p && !r.fenceShown():
			continue
		case c.role == "server" && !r.peerServing(c):
			continue
		}
		byRole[c.role] = append(byRole[c.role], c)
	}
	if len(byRole) == 0 {
		return
	}
	roles := slices.Sorted(maps.Keys(byRole))
	cands := byRole[roles[r.rng.IntN(len(roles))]]
	r.kill(cands[r.rng.IntN(len(cands))])
}

// peerServing reports whether the server other than c has answered
// /readyz 200 for at least chaosServerSolid (HAProxy has it in service).
func (r *chaosRun) peerServing(c *chaosCopy) bool {
	for _, o := range r.copies {
		if o.role != "server" || o == c {
			continue
		}
		if !o.alive {
			return false
		}
		hc := &http.Client{Timeout: time.Second}
		resp, err := hc.Get("http://" + o.addr + "/readyz")
		if err != nil {
			o.readySince = time.Time{}
			return false
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			o.readySince = time.Time{}
			return false
		}
		if o.readySince.IsZero() {
			o.readySince = time.Now()
		}
		return time.Since(o.readySince) >= chaosServerSolid
	}
	return false
}

// restartDB stops PostgreSQL for chaosDBDown (plus the time a fast stop
// and a start take).
func (r *chaosRun) restartDB(pg *testpg.Cluster) {
	db := &chaosCopy{role: "database", name: "postgres"}
	r.dbDown = time.Now()
	r.note(db, "down")
	pg.Restart(chaosDBDown)
	r.dbUp = time.Now()
	r.note(db, "up")
}

// runningJobs lists the running jobs (nil when the list fails: the caller
// tries again later) and samples their lease horizons.
func (r *chaosRun) runningJobs() []model.Job {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var out []model.Job
	for j, err := range r.c.AllJobs(ctx, client.JobQuery{States: []model.JobState{model.JobRunning}, Limit: 1000}) {
		if err != nil {
			return nil
		}
		out = append(out, j)
	}
	r.sampleLeases(out, time.Now())
	return out
}

// sampleLeases records the lease horizons of running jobs listed at
// answered (leaseSamples).
func (r *chaosRun) sampleLeases(running []model.Job, answered time.Time) {
	ls := &r.leases
	ls.lists++
	for _, j := range running {
		if j.LeaseUntil == nil {
			continue
		}
		ls.jobs++
		ahead := j.LeaseUntil.Sub(answered)
		if ls.over[leaseKey("job", j.ID)] == "" && ahead > chaosLeaseTTL+500*time.Millisecond {
			ls.overJobs++
			if j.Progress > 0 && ahead <= jobs.DefaultLeaseTTL+500*time.Millisecond {
				ls.progressed++
			}
		}
		ls.note("job", j.ID, *j.LeaseUntil, answered, &ls.longestJob, func() string {
			return fmt.Sprintf("(%s, instance %d step %s, epoch %d on %s, progress %d%%, seen at %s)",
				j.Type, j.InstanceID, j.Step, j.Epoch, j.Processor, j.Progress, r.since(answered))
		})
	}
}

// sampleInstanceLeases lists the running instances and records their
// workers' lease horizons (leaseSamples).
func (r *chaosRun) sampleInstanceLeases() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	page, err := r.c.ListWorkflows(ctx, client.WorkflowQuery{States: []model.InstanceState{model.InstanceRunning}, Limit: 1000})
	if err != nil {
		return // a sample missed; the next kill tick takes another
	}
	answered := time.Now()
	ls := &r.leases
	ls.lists++
	for _, i := range page.Items {
		if i.LeaseUntil == nil {
			continue
		}
		ls.instances++
		ls.note("instance", i.ID, *i.LeaseUntil, answered, &ls.longestInst, func() string {
			return fmt.Sprintf("(%q, epoch %d on %s, seen at %s)", i.Name, i.Epoch, i.Worker, r.since(answered))
		})
	}
}

// tryFreeze SIGSTOPs the live processor that runs the most jobs and
// records what the server has it running once the stop took hold. It
// reports false (and lets the processor go on) when there is none.
func (r *chaosRun) tryFreeze() bool {
	perProc := map[string]int{}
	for _, j := range r.runningJobs() {
		perProc[j.Processor]++
	}
	var best *chaosCopy
	for _, c := range r.copies {
		if c.role == "processor" && c.alive && perProc[c.id] > 0 && (best == nil || perProc[c.id] > perProc[best.id]) {
			best = c
		}
	}
	if best == nil {
		return false
	}
	if err := best.p.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		r.t.Logf("CHAOS SIGSTOP %s: %v", best.id, err)
		return false
	}
	f := &chaosFreeze{copy: best, p: best.p, id: best.id, stopAt: time.Now()}
	best.frozen = true
	r.note(best, "freeze")
	// Calls it made just before the stop land first; what is running for
	// it after that stays running until its leases expire.
	time.Sleep(500 * time.Millisecond)
	for _, j := range r.runningJobs() {
		if j.Processor == f.id {
			f.held = append(f.held, j)
		}
	}
	if len(f.held) == 0 {
		_ = best.p.cmd.Process.Signal(syscall.SIGCONT)
		best.frozen = false
		r.note(best, "thaw")
		return false
	}
	r.freeze = f
	return true
}

// fenceShown reports whether the thawed processor logged a refusal of its
// stale work, or had 30 s to.
func (r *chaosRun) fenceShown() bool {
	f := r.freeze
	if f.contAt.IsZero() {
		return false
	}
	return time.Since(f.contAt) > 30*time.Second || staleLogRe.MatchString(f.p.output()[f.outMark:])
}

// thaw SIGCONTs the frozen processor.
func (r *chaosRun) thaw() {
	f := r.freeze
	f.outMark = len(f.p.output())
	_ = f.p.cmd.Process.Signal(syscall.SIGCONT)
	f.contAt = time.Now()
	f.copy.frozen = false
	r.note(f.copy, "thaw")
}

// instances lists every instance matching q, all pages.
func (r *chaosRun) instances(q client.WorkflowQuery) []model.Instance {
	r.t.Helper()
	q.Limit = 1000
	var out []model.Instance
	for {
		page, err := r.c.ListWorkflows(context.Background(), q)
		if err != nil {
			r.t.Fatalf("list instances %+v: %v", q, err)
		}
		out = append(out, page.Items...)
		if page.Next == "" || len(page.Items) == 0 {
			return out
		}
		q.After = page.Next
	}
}

// settle waits, bounded, until the folder watchers have seen every file,
// stops the trigger roles (so nothing new starts), then waits until no
// instance is pending or running and no job queued or running.
func (r *chaosRun) settle(files []string) {
	t := r.t
	n := 0
	if !eventually.Within(chaosSettle, func() bool {
		n = len(r.instances(client.WorkflowQuery{Templates: []string{"chaos-file"}}))
		return n >= len(files)
	}) {
		t.Errorf("CHAOS settle: %d file instances for %d files %v after the faults", n, len(files), chaosSettle)
	}
	for _, c := range r.copies {
		if c.alive && (c.role == "scheduler" || c.role == "folderwatcher") {
			if err := c.p.stop(30 * time.Second); err != nil {
				t.Logf("CHAOS %s stopped: %v", c.id, err)
			}
			c.alive = false
			r.note(c, "stop")
		}
	}
	ctx := context.Background()
	var insts model.Page[model.Instance]
	pend := &model.Page[model.Job]{}
	if !eventually.Within(chaosSettle, func() bool {
		page, err := r.c.ListWorkflows(ctx, client.WorkflowQuery{States: []model.InstanceState{model.InstancePending, model.InstanceRunning}, Limit: 10})
		if err != nil {
			t.Fatalf("list instances: %v", err)
		}
		insts = *page
		pend, err = r.c.ListJobs(ctx, client.JobQuery{States: []model.JobState{model.JobQueued, model.JobRunning}, Limit: 10})
		if err != nil {
			t.Fatalf("list jobs: %v", err)
		}
		return insts.Total == 0 && pend.Total == 0
	}) {
		var stuck []string
		for _, i := range insts.Items {
			stuck = append(stuck, fmt.Sprintf("instance %d %q %s current %v worker %q epoch %d lease %v", i.ID, i.Name, i.State, i.Current, i.Worker, i.Epoch, i.LeaseUntil))
		}
		for _, j := range pend.Items {
			stuck = append(stuck, fmt.Sprintf("job %d (instance %d step %s) %s attempt %d/%d on %q epoch %d lease %v", j.ID, j.InstanceID, j.Step, j.State, j.Attempt, j.MaxAttempts, j.Processor, j.Epoch, j.LeaseUntil))
		}
		r.diagnoseStall("the plant did not settle")
		t.Errorf("CHAOS settle: FAIL: %d instances pending or running and %d jobs queued or running %v after the faults: %s",
			insts.Total, pend.Total, chaosSettle, strings.Join(stuck, "; "))
	}
}

// check checks and prints the invariants.
func (r *chaosRun) check(load *chaosLoad, files []string, until time.Time, settled time.Duration) {
	t := r.t
	ctx := context.Background()
	verdict := func(problems []string) string {
		if len(problems) == 0 {
			return "PASS"
		}
		return "FAIL"
	}
	report := func(line string, problems []string) {
		t.Logf("%s: %s", line, verdict(problems))
		if len(problems) > 0 {
			t.Errorf("%s: %d problems: %s", strings.SplitN(line, ":", 2)[0], len(problems), clipList(problems, 20))
		}
	}

	// The fencing probe comes first: if the server took a stale
	// completion, the job rows checked below show the damage.
	r.checkFreeze(ctx, report)

	all := r.instances(client.WorkflowQuery{})
	byName := map[string]model.Instance{}
	perTemplate := map[string]int{}
	for _, i := range all {
		byName[i.Name] = i
		perTemplate[i.Template]++
	}
	var jobRows []model.Job
	for j, err := range r.c.AllJobs(ctx, client.JobQuery{Limit: 1000}) {
		if err != nil {
			t.Fatalf("list jobs: %v", err)
		}
		jobRows = append(jobRows, j)
	}

	t.Logf("CHAOS injections: %d SIGKILLs (%s); PostgreSQL stopped %s..%s (%.1fs); %d crashes; settled %.1fs after the faults",
		sumValues(r.kills), formatCounts(r.kills), r.since(r.dbDown), r.since(r.dbUp), r.dbUp.Sub(r.dbDown).Seconds(), len(r.crashes), settled.Seconds())
	report(fmt.Sprintf("CHAOS crashes: %d roles exited without being killed", len(r.crashes)), r.crashes)
	if len(r.stalls) > 0 {
		// Not a failure by itself (a loaded machine is slow too); the
		// invariants say whether it cost anything. The evidence is kept.
		t.Logf("CHAOS stalls: %d; what PostgreSQL was doing then:\n%s", len(r.stalls), strings.Join(r.stalls, "\n"))
	} else {
		t.Logf("CHAOS stalls: none (no listing took over %v)", chaosStallAfter)
	}

	// (1) Every acknowledged start exists and succeeded; nothing started
	// that no call asked for.
	acked, errored := load.results()
	p1 := checkAcked(acked, byName)
	for _, i := range all {
		if _, ok := acked[i.Name]; i.Template == "chaos-load" && !ok && !errored[i.Name] {
			p1 = append(p1, fmt.Sprintf("instance %d %q exists but no start asked for it", i.ID, i.Name))
		}
	}
	report(fmt.Sprintf("CHAOS (1) submissions: %d workflow starts acknowledged through HAProxy, %d chaos-load instances in the core DB, every acknowledged one exists and succeeded",
		len(acked), perTemplate["chaos-load"]), p1)

	// (2) Every trigger event started exactly one instance.
	times, p2 := checkFireTimes(all, "chaos-tick")
	if least := int(until.Sub(r.origin)/time.Second) / 2; len(times) < least {
		p2 = append(p2, fmt.Sprintf("only %d fire times for %v of faults", len(times), until.Sub(r.origin).Round(time.Second)))
	}
	p2 = append(p2, checkFiles(files, all, "chaos-inbox")...)
	span := "none"
	if len(times) > 0 {
		span = times[0].Format(time.TimeOnly) + ".." + times[len(times)-1].Format(time.TimeOnly)
	}
	report(fmt.Sprintf("CHAOS (2) triggers: schedule chaos-tick %d fire times %s, one succeeded instance each, no second missed or doubled; folder chaos-inbox %d files dropped, %d instances, one succeeded per file",
		len(times), span, len(files), perTemplate["chaos-file"]), p2)

	// (3) One job row per (instance, job step), succeeded.
	reruns, p3 := checkJobRows(all, jobRows, chaosJobSteps)
	report(fmt.Sprintf("CHAOS (3) job steps: %d job rows for %d instances, exactly one per (instance, step), each succeeded once; %d rows ran more than one attempt (leases that expired)",
		len(jobRows), len(all), reruns), p3)

	// Lease horizons: no running job's lease ran further ahead than its
	// processor's TTL.
	ls := r.leases
	var pl []string
	for _, k := range slices.Sorted(maps.Keys(ls.over)) {
		pl = append(pl, ls.over[k])
	}
	diagnosis := ""
	if ls.overJobs > 0 && ls.progressed == ls.overJobs {
		diagnosis = fmt.Sprintf(" (each of those %d job leases had reported progress and ran up to the server's default %v ahead: "+
			"POST /v1/jobs/{id}/progress renews a lease by jobs.DefaultLeaseTTL, not by the processor's --lease-ttl; internal/server/jobs/lease.go, Service.Progress)",
			ls.overJobs, jobs.DefaultLeaseTTL)
	}
	report(fmt.Sprintf("CHAOS leases: %d listings during the faults: %d job leases, the longest %.1fs ahead; %d instance leases, the longest %.1fs ahead (processor and worker --lease-ttl %v); %d beyond the TTL%s",
		ls.lists, ls.jobs, ls.longestJob.Seconds(), ls.instances, ls.longestInst.Seconds(), chaosLeaseTTL, len(ls.over), diagnosis), pl)

	// (4) Client-visible errors.
	calls, errs, slow, longest, longestEnd := load.stats()
	report(fmt.Sprintf("CHAOS (4) client-visible errors: %d of %d workflow starts (target 0)", len(errs), calls), errs)

	// (5) Longest time without an active copy, and the longest client
	// call.
	roles := map[string]string{"postgres": "database"}
	for _, c := range r.copies {
		roles[c.name] = c.role
	}
	outs := longestOutages(roles, r.events, r.origin, until)
	var parts []string
	for _, role := range []string{"server", "processor", "worker", "scheduler", "folderwatcher", "database"} {
		o := outs[role]
		s := fmt.Sprintf("%s %.2fs", role, o.longest.Seconds())
		if o.count > 0 {
			s += fmt.Sprintf(" (%d× none, longest from %s)", o.count, r.since(o.from))
		}
		parts = append(parts, s)
	}
	var p5 []string
	if o := outs["server"]; o.count > 0 {
		p5 = append(p5, fmt.Sprintf("both servers were down at once for %v from %s", o.longest, r.since(o.from)))
	}
	report(fmt.Sprintf("CHAOS (5) longest time without an active copy: %s; longest single client call %.2fs (ended %s), %d calls over 250ms",
		strings.Join(parts, ", "), longest.Seconds(), r.since(longestEnd), slow), p5)

	if t.Failed() {
		t.Logf("CHAOS injection log:\n%s", r.timeline())
	}
}

// diagnoseStall records what the core database's sessions are doing: the
// open transactions, oldest first, with what blocks them and the dpe
// process that owns each connection. At most five are kept.
func (r *chaosRun) diagnoseStall(why string) {
	if len(r.stalls) >= 5 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	report := func(format string, args ...any) {
		r.stalls = append(r.stalls, fmt.Sprintf("%s: %s", why, fmt.Sprintf(format, args...)))
	}
	conn, err := pgx.Connect(ctx, r.dsn)
	if err != nil {
		report("cannot connect to PostgreSQL: %v", err)
		return
	}
	defer conn.Close(context.Background())
	rows, err := conn.Query(ctx, `
SELECT pid, coalesce(client_port, 0), coalesce(state, ''), coalesce(wait_event_type || '/' || wait_event, ''),
	coalesce(extract(epoch FROM now() - xact_start), 0)::float8,
	coalesce(extract(epoch FROM now() - state_change), 0)::float8,
	pg_blocking_pids(pid)::text, left(regexp_replace(query, '\s+', ' ', 'g'), 240)
FROM pg_stat_activity
WHERE datname = $1 AND pid <> pg_backend_pid() AND xact_start IS NOT NULL
ORDER BY xact_start`, testpg.Database)
	if err != nil {
		report("pg_stat_activity: %v", err)
		return
	}
	owners := r.socketOwners()
	var b strings.Builder
	n := 0
	for rows.Next() {
		var (
			pid, port                     int
			state, wait, blockedBy, query string
			xact, inState                 float64
		)
		if err := rows.Scan(&pid, &port, &state, &wait, &xact, &inState, &blockedBy, &query); err != nil {
			report("pg_stat_activity: %v", err)
			return
		}
		n++
		fmt.Fprintf(&b, "\n  pid %d (%s, port %d): %s for %.1fs, transaction %.1fs old, waits %q, blocked by %s: %s",
			pid, cmp.Or(owners[port], "?"), port, state, inState, xact, wait, blockedBy, query)
	}
	if err := rows.Err(); err != nil {
		report("pg_stat_activity: %v", err)
		return
	}
	report("%d open transactions%s", n, b.String())
}

// socketOwners maps the local TCP ports of the live dpe processes'
// sockets to the processes' names (Linux /proc; empty elsewhere), so a
// PostgreSQL session names its server.
func (r *chaosRun) socketOwners() map[int]string {
	inodePort := map[string]int{}
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n")[1:] {
			fields := strings.Fields(line)
			if len(fields) < 10 {
				continue
			}
			_, hexPort, ok := strings.Cut(fields[1], ":")
			port, err := strconv.ParseInt(hexPort, 16, 32)
			if !ok || err != nil {
				continue
			}
			inodePort[fields[9]] = int(port)
		}
	}
	out := map[int]string{}
	for _, c := range r.copies {
		if !c.alive || c.p.cmd.Process == nil {
			continue
		}
		fdDir := fmt.Sprintf("/proc/%d/fd", c.p.cmd.Process.Pid)
		fds, err := os.ReadDir(fdDir)
		if err != nil {
			continue
		}
		for _, fd := range fds {
			link, err := os.Readlink(filepath.Join(fdDir, fd.Name()))
			if inode, ok := strings.CutPrefix(link, "socket:["); err == nil && ok {
				if port, ok := inodePort[strings.TrimSuffix(inode, "]")]; ok {
					out[port] = c.p.name
				}
			}
		}
	}
	return out
}

// staleLogRe matches what a processor logs when the server fences it off.
var staleLogRe = regexp.MustCompile(`(?i)lease lost|newer epoch|stale|conflict|409`)

// checkFreeze checks the fencing of the frozen processor: every job it
// held ran again under a newer epoch (or had its report land before the
// stop), the server took nothing from it for the old epoch after the
// thaw, it saw the server's refusal, and a completion under the old epoch
// sent now is refused with 409.
func (r *chaosRun) checkFreeze(ctx context.Context, report func(string, []string)) {
	f := r.freeze
	if f == nil {
		report("CHAOS fencing: no processor frozen", []string{cmp.Or(r.freezeFailed, "the freeze never happened")})
		return
	}
	var problems []string
	rerun, landed, probes, refused := 0, 0, 0, 0
	by := map[string]int{}
	var held []string
	for _, h := range f.held {
		desc := fmt.Sprintf("%d@%d", h.ID, h.Epoch)
		if h.LeaseUntil != nil {
			desc += fmt.Sprintf(" lease +%.1fs", h.LeaseUntil.Sub(f.stopAt).Seconds())
		}
		held = append(held, desc)
		j, err := r.c.GetJob(ctx, h.ID)
		if err != nil {
			problems = append(problems, fmt.Sprintf("job %d: %v", h.ID, err))
			continue
		}
		switch {
		case j.State != model.JobSucceeded:
			problems = append(problems, fmt.Sprintf("job %d held by the frozen %s ended %s: %s", j.ID, f.id, j.State, j.Error))
		case j.Epoch > h.Epoch:
			rerun++
			by[j.Processor]++
		case j.FinishedAt != nil && j.FinishedAt.Before(f.contAt):
			landed++ // its report was on the wire when the stop hit
			continue
		default:
			lease := "none"
			if h.LeaseUntil != nil {
				lease = fmt.Sprintf("%s (%.1fs after the stop)", h.LeaseUntil.Format(time.TimeOnly+".000"), h.LeaseUntil.Sub(f.stopAt).Seconds())
			}
			finished := "?"
			if j.FinishedAt != nil {
				finished = r.since(*j.FinishedAt)
			}
			problems = append(problems, fmt.Sprintf("job %d (%s, instance %d step %s) was never run again: the server took the frozen %s's completion under its epoch %d at %s, after the thaw at %s; at the stop its lease ran until %s though the processor's --lease-ttl is %v",
				j.ID, j.Type, j.InstanceID, j.Step, f.id, h.Epoch, finished, r.since(f.contAt), lease, chaosLeaseTTL))
			continue
		}
		if j.Epoch <= h.Epoch {
			continue
		}
		// The probe: what the frozen processor would send for its old
		// run, sent now. Anything but 409 is a broken fence.
		probes++
		_, err = r.c.Complete(ctx, model.Completion{ID: h.ID, Epoch: h.Epoch, Result: []byte(`{"stale_probe":true}`)})
		if errors.Is(err, model.ErrConflict) {
			refused++
		} else {
			problems = append(problems, fmt.Sprintf("job %d: a completion under the stale epoch %d (now %d) was answered %v, want 409", h.ID, h.Epoch, j.Epoch, err))
		}
	}
	after := f.p.output()[f.outMark:]
	fenced := 0
	for line := range strings.Lines(after) {
		if staleLogRe.MatchString(line) {
			fenced++
		}
	}
	if fenced == 0 && rerun > 0 {
		problems = append(problems, fmt.Sprintf("%s logged no refusal after SIGCONT (held %v); its output after the thaw: %q", f.id, held, clip(after, 2000)))
	}
	report(fmt.Sprintf("CHAOS fencing: %s SIGSTOPped %s..%s (%.1fs, lease TTL %v) while the server had it running %d jobs [%s] (job@epoch, lease left at the stop); %d re-run under a newer epoch (by %s), %d reported before the stop took hold; stale completion probes answered 409: %d/%d; %d refusal lines in its log after SIGCONT",
		f.id, r.since(f.stopAt), r.since(f.contAt), f.contAt.Sub(f.stopAt).Seconds(), chaosLeaseTTL, len(f.held), strings.Join(held, ", "),
		rerun, formatCounts(by), landed, refused, probes, fenced), problems)
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// formatCounts writes counts by name as "a 2, b 1", sorted by name.
func formatCounts(m map[string]int) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
	}
	return cmp.Or(strings.Join(parts, ", "), "none")
}

func sumValues(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// chaosLoad starts chaos-load instances through one client from
// chaosLoaders goroutines, each every chaosStartEvery, and records what
// the callers saw.
type chaosLoad struct {
	c    *client.Client
	stop chan struct{}
	wg   sync.WaitGroup

	mu         sync.Mutex
	calls      int
	acked      map[string]int64 // name → id
	errored    map[string]bool  // names whose start failed
	errs       []string
	slow       int // calls over 250ms
	longest    time.Duration
	longestEnd time.Time
}

func startChaosLoad(c *client.Client) *chaosLoad {
	l := &chaosLoad{c: c, stop: make(chan struct{}), acked: map[string]int64{}, errored: map[string]bool{}}
	for g := range chaosLoaders {
		l.wg.Go(func() { l.run(g) })
	}
	return l
}

func (l *chaosLoad) run(g int) {
	// Spread the goroutines over the interval: a steady rate.
	select {
	case <-l.stop:
		return
	case <-time.After(time.Duration(g) * chaosStartEvery / chaosLoaders):
	}
	tick := time.NewTicker(chaosStartEvery)
	defer tick.Stop()
	for seq := 1; ; seq++ {
		name := fmt.Sprintf("load-%d-%05d", g, seq)
		began := time.Now()
		// The client's Deadline (30 s) bounds the call with its retries.
		inst, err := l.c.StartWorkflow(context.Background(), model.InstanceSpec{Template: "chaos-load", Name: name})
		took := time.Since(began)
		l.mu.Lock()
		l.calls++
		switch {
		case err != nil:
			l.errored[name] = true
			l.errs = append(l.errs, fmt.Sprintf("start %s at %s after %v: %v", name, began.Format(time.TimeOnly+".000"), took.Round(time.Millisecond), err))
		case inst.Name != name || inst.ID == 0:
			l.errored[name] = true
			l.errs = append(l.errs, fmt.Sprintf("start %s answered instance %d %q", name, inst.ID, inst.Name))
		default:
			l.acked[name] = inst.ID
		}
		if took > 250*time.Millisecond {
			l.slow++
		}
		if took > l.longest {
			l.longest, l.longestEnd = took, time.Now()
		}
		l.mu.Unlock()
		select {
		case <-l.stop:
			return
		case <-tick.C:
		}
	}
}

// end stops the load and waits for the calls in flight.
func (l *chaosLoad) end() {
	close(l.stop)
	l.wg.Wait()
}

func (l *chaosLoad) errors() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.errs)
}

func (l *chaosLoad) results() (map[string]int64, map[string]bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return maps.Clone(l.acked), maps.Clone(l.errored)
}

func (l *chaosLoad) stats() (calls int, errs []string, slow int, longest time.Duration, longestEnd time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.calls, slices.Clone(l.errs), l.slow, l.longest, l.longestEnd
}

// dropper drops a file into the watched folder every chaosDropEvery:
// written in a staging directory, then renamed in, so no watcher sees it
// half-written.
type dropper struct {
	stop  chan struct{}
	done  chan struct{}
	files []string // read after done
	err   error
}

func startDropper(t *testing.T, inbox, staging string) *dropper {
	d := &dropper{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(d.done)
		tick := time.NewTicker(chaosDropEvery)
		defer tick.Stop()
		for i := 1; ; i++ {
			name := fmt.Sprintf("clip-%05d.mxf", i)
			tmp := filepath.Join(staging, name)
			if err := os.WriteFile(tmp, []byte(fmt.Sprintf("essence %d\n", i)), 0o644); err != nil {
				d.err = err
				return
			}
			if err := os.Rename(tmp, filepath.Join(inbox, name)); err != nil {
				d.err = err
				return
			}
			d.files = append(d.files, name)
			select {
			case <-d.stop:
				return
			case <-tick.C:
			}
		}
	}()
	t.Cleanup(func() {
		select {
		case <-d.stop:
		default:
			close(d.stop)
		}
		<-d.done
	})
	return d
}

// end stops dropping and returns the files dropped.
func (d *dropper) end() ([]string, error) {
	close(d.stop)
	<-d.done
	if d.err != nil {
		return d.files, fmt.Errorf("drop files: %w", d.err)
	}
	return d.files, nil
}
