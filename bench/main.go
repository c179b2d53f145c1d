// Command bench measures dpe end to end (issue #6) and checks the numbers
// against the performance targets.
//
// For each core database it is given (default: a fresh PostgreSQL database
// dpe_bench_<random>, dropped at the end, then a fresh SQLite file) it
// builds cmd/dpe once, starts `dpe server` on it, and runs real processor
// and worker processes over HTTP through these phases:
//
//	baseline    what the database does without dpe: pgbench -N on a
//	            scratch database of the same PostgreSQL server, or a
//	            single-row INSERT loop on SQLite
//	throughput  noop jobs/s end to end: batch submits through the API,
//	            claimed and completed by the processors
//	dispatch    idle-system latency, one job at a time: submit acknowledged
//	            → claim / handler started / finished
//	workflow    instances/s of a 3-step template (job, job, set), start to
//	            succeeded, driven by one `dpe worker`
//	scaling     claims/s and claim latency with a small and a big queue
//	            (bulk-loaded by SQL, kept at depth) and the server's RSS
//	steps       step-to-step latency of a three-step noop workflow, one
//	            instance at a time on an idle system: a step's job
//	            finished_at → the next step's job created_at (server
//	            clock); with -baseline-rev REV also measured on a build
//	            of REV (a temporary git worktree), so one run prints the
//	            before and after
//	pages       (only with -phases pages) the monitor's pages read over
//	            HTTP with a viewer token, as the browser requests them:
//	            on the empty database, then on 100,000 workflow instances
//	            and 1,000,000 jobs bulk-loaded by SQL (-page-instances,
//	            -page-jobs); p50/p99/max per page against p99 ≤ 200 ms
//
// It prints a table and the targets with PASS/FAIL, and writes everything
// as JSON (-out). It does not tune anything: the numbers are what the
// engine does as it is.
//
// How it measures:
//
//   - Dispatch latency starts when the submitter has read the 201 of
//     POST /v1/jobs (client clock) and ends when the processor logs "job
//     started", right before it launches the handler (processor clock,
//     from its debug log: millisecond resolution, so the midpoint of the
//     millisecond is used, ±0.5 ms). Both clocks are this machine's
//     CLOCK_REALTIME. The server's started_at (claim) and finished_at
//     (completion) are reported next to it as lower and upper brackets.
//     A job may be claimed before its submitter reads the ack: such
//     latencies are negative and kept as they are.
//
//   - Completions are counted by SELECT count(*) on the core database
//     every 100 ms (an index-only range on the final state), not through
//     the API, whose list query would distort the big-queue phase.
//
//   - CPU is utime+stime from /proc/PID/stat of the server, the processors
//     and worker, and the PostgreSQL backends of the bench database; peak
//     RSS is VmHWM, reset per phase through /proc/PID/clear_refs.
//
//   - Per-route server time comes from the server's own
//     dpe_http_request_seconds histogram (/metrics), scraped around each
//     phase. The server has no profiling endpoint; this is the breakdown
//     available without changing it.
//
// Usage:
//
//	go run ./bench                 # or: make bench (under 10 minutes)
//	go run ./bench -quick          # short phases, a 100,000-job big queue
//	go run ./bench -db sqlite -phases throughput,dispatch
//	go run ./bench -phases steps -baseline-rev 0248d99
//	go run ./bench -phases pages -db sqlite
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/dpe-engine/dpe/internal/client"
)

// options are the flags.
type options struct {
	dbs         []string
	pgAdmin     string
	processors  int
	quota       int
	batch       int
	duration    time.Duration
	warmup      time.Duration
	baselineDur time.Duration
	dispatch    int
	small, big  int
	out         string
	quick       bool
	keep        bool
	profiles    string
	repo        string
	phases      []string
	steps       int    // instances of the steps phase
	baseRev     string // revision to measure the steps phase on as well
	baseSteps   int    // instances of the baseline's steps phase
	// The pages phase: the plant it loads and the samples per page.
	pageInstances, pageJobs, pageRequests int
}

var allPhases = []string{"baseline", "throughput", "dispatch", "workflow", "scaling", "steps"}

// extraPhases run only when asked for by -phases: pages loads a plant of
// a million jobs per engine (minutes) and stops the engine's server.
var extraPhases = []string{"pages"}

func (o *options) runs(phase string) bool { return slices.Contains(o.phases, phase) }

func parseFlags() (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	dbs := fs.String("db", "postgres,sqlite", "core databases, comma-separated: postgres (a fresh database on -pg), sqlite (a fresh file), sqlite:PATH or a postgres:// DSN used as is")
	fs.StringVar(&o.pgAdmin, "pg", defaultPG(), "PostgreSQL server to create the fresh and the pgbench databases on (env DPE_BENCH_POSTGRES, then DPE_TEST_POSTGRES)")
	fs.IntVar(&o.processors, "processors", 4, "processor processes (and pgbench clients)")
	fs.IntVar(&o.quota, "quota", 32, "noop jobs each processor runs at once")
	fs.IntVar(&o.batch, "batch", 500, "jobs per batch submit")
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "length of each measured phase (and of the baseline)")
	fs.IntVar(&o.dispatch, "dispatch", 1000, "jobs of the dispatch-latency phase")
	fs.IntVar(&o.small, "small", 1000, "small queue depth of the scaling phase")
	fs.IntVar(&o.big, "big", 1_000_000, "big queue depth of the scaling phase")
	fs.StringVar(&o.out, "out", "bench/results.json", "JSON results file")
	fs.BoolVar(&o.quick, "quick", false, "short run: 3s phases, 200 dispatch jobs, a 100,000-job big queue (flags given explicitly win)")
	fs.BoolVar(&o.keep, "keep", false, "keep the temporary directory (binary, logs, SQLite files)")
	fs.StringVar(&o.profiles, "profiles", "", "write the server's CPU profile of each measured phase into this directory (ENGINE-PHASE.pprof; read with go tool pprof)")
	fs.StringVar(&o.repo, "repo", ".", "root of the dpe module to build cmd/dpe from")
	fs.IntVar(&o.steps, "steps", 200, "instances of the steps phase (three-step noop workflows, one at a time)")
	fs.StringVar(&o.baseRev, "baseline-rev", "", "also run the steps phase on cmd/dpe built from this git revision of -repo (e.g. 0248d99), for a before/after in one run")
	fs.IntVar(&o.baseSteps, "baseline-steps", 50, "instances of the baseline revision's steps phase (an old build may take seconds each)")
	fs.IntVar(&o.pageInstances, "page-instances", 100_000, "workflow instances the pages phase loads")
	fs.IntVar(&o.pageJobs, "page-jobs", 1_000_000, "jobs the pages phase loads (those of the instances included)")
	fs.IntVar(&o.pageRequests, "page-requests", 200, "samples of each monitor page in the pages phase")
	phases := fs.String("phases", strings.Join(allPhases, ","), "phases to run, comma-separated (also: pages, not run by default)")
	if err := fs.Parse(os.Args[1:]); err != nil {
		return nil, err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if o.quick {
		if !set["duration"] {
			o.duration = 3 * time.Second
		}
		if !set["dispatch"] {
			o.dispatch = 200
		}
		if !set["big"] {
			o.big = 100_000
		}
	}
	o.warmup = min(2*time.Second, o.duration/3)
	o.baselineDur = max(o.duration, time.Second)
	o.dbs = splitList(*dbs)
	o.phases = splitList(*phases)
	for _, p := range o.phases {
		if !slices.Contains(allPhases, p) && !slices.Contains(extraPhases, p) {
			return nil, fmt.Errorf("-phases: unknown phase %q (have %v)", p, append(slices.Clone(allPhases), extraPhases...))
		}
	}
	if o.processors < 1 || o.quota < 1 || o.batch < 1 || o.dispatch < 1 || o.small < 1 || o.big < 1 || o.steps < 1 || o.baseSteps < 1 {
		return nil, fmt.Errorf("-processors, -quota, -batch, -dispatch, -small, -big, -steps and -baseline-steps must be positive")
	}
	if o.pageInstances < 1 || o.pageJobs < 1 || o.pageRequests < 1 {
		return nil, fmt.Errorf("-page-instances, -page-jobs and -page-requests must be positive")
	}
	return o, nil
}

func defaultPG() string {
	for _, env := range []string{"DPE_BENCH_POSTGRES", "DPE_TEST_POSTGRES"} {
		if v := os.Getenv(env); v != "" {
			return v
		}
	}
	return "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
}

func splitList(s string) []string {
	var out []string
	for v := range strings.SplitSeq(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}

func main() {
	o, err := parseFlags()
	if err != nil {
		if err == flag.ErrHelp {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(2)
	}
	if err := benchmark(o); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// benchmark runs every engine, prints the report and writes the JSON. A
// phase that fails is recorded and the others still run.
func benchmark(o *options) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	tmp, err := os.MkdirTemp("", "dpe-bench-")
	if err != nil {
		return err
	}
	if o.keep {
		logf("keeping %s", tmp)
	} else {
		defer os.RemoveAll(tmp)
	}
	started := time.Now()
	logf("building cmd/dpe")
	bin, err := buildDPE(ctx, o.repo, tmp)
	if err != nil {
		return err
	}
	res := &Results{Started: started, Quick: o.quick, Env: environment(o.repo), Config: configOf(o)}
	var baseBin string
	if o.baseRev != "" && o.runs("steps") {
		logf("building cmd/dpe of %s (baseline)", o.baseRev)
		if baseBin, res.BaselineRev, err = buildRevision(ctx, o.repo, o.baseRev, tmp); err != nil {
			return err
		}
	}
	for _, spec := range o.dbs {
		res.Engines = append(res.Engines, runEngine(ctx, o, bin, tmp, spec, res.Env.Commit))
		if ctx.Err() != nil {
			break
		}
		if baseBin != "" {
			// The same phase on the baseline build, right after, on a
			// fresh database of the same engine.
			bo := *o
			bo.phases, bo.steps = []string{"steps"}, o.baseSteps
			res.BaselineEngines = append(res.BaselineEngines, runEngine(ctx, &bo, baseBin, tmp, spec, res.BaselineRev))
			if ctx.Err() != nil {
				break
			}
		}
	}
	res.Seconds = round3(time.Since(started).Seconds())
	res.Targets = evaluate(res)
	printReport(os.Stdout, res)
	if err := writeJSON(o.out, res); err != nil {
		return err
	}
	logf("results written to %s (%.0fs in all)", o.out, res.Seconds)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return nil
}

// runEngine runs the phases on one core database.
func runEngine(ctx context.Context, o *options, bin, tmp, spec, rev string) *EngineResult {
	er := &EngineResult{Engine: spec}
	db, err := openCoreDB(ctx, spec, o.pgAdmin, tmp)
	if err != nil {
		er.fail("setup", err)
		return er
	}
	defer func() {
		if err := db.drop(); err != nil {
			logf("drop %s: %v", db.name, err)
		}
	}()
	er.Engine, er.Database = db.engine, db.name
	if db.engine == "sqlite" {
		er.Database = db.path
	}
	dir, err := os.MkdirTemp(tmp, db.engine+"-")
	if err != nil {
		er.fail("setup", err)
		return er
	}
	if o.keep {
		er.Logs = dir
	}
	logf("%s: starting the server on %s", db.engine, er.Database)
	cl, err := startServer(ctx, bin, dir, db.dsn)
	if err != nil {
		er.fail("setup", err)
		return er
	}
	defer cl.close()
	if err := db.connect(); err != nil {
		er.fail("setup", err)
		return er
	}
	c, err := client.New(client.Config{URLs: []string{cl.url}})
	if err != nil {
		er.fail("setup", err)
		return er
	}
	defer c.Close()
	r := &run{o: o, db: db, cl: cl, c: c}

	phase := func(name string, f func() error) {
		if !o.runs(name) || ctx.Err() != nil {
			return
		}
		logf("%s: %s", db.engine, name)
		t := time.Now()
		if err := f(); err != nil {
			er.fail(name, err)
			cl.stopWorkers()
			return
		}
		logf("%s: %s done in %.1fs", db.engine, name, time.Since(t).Seconds())
	}
	// The baseline first, while the database is small and quiet.
	phase("baseline", func() (err error) {
		var b Baseline
		if db.engine == "postgres" {
			b, err = pgbenchBaseline(ctx, o.pgAdmin, o.processors, o.baselineDur)
		} else {
			b, err = sqliteBaseline(ctx, dir, o.baselineDur)
		}
		er.Baseline = &b
		return err
	})
	phase("throughput", func() (err error) { er.Throughput, err = r.throughput(ctx); return err })
	phase("dispatch", func() (err error) { er.Dispatch, err = r.dispatch(ctx); return err })
	phase("workflow", func() (err error) { er.Workflow, err = r.workflow(ctx); return err })
	phase("steps", func() (err error) { er.Steps, err = r.steps(ctx, o.steps, rev); return err })
	phase("scaling", func() error {
		for _, depth := range []int{o.small, o.big} {
			s, err := r.scale(ctx, depth)
			if err != nil {
				return fmt.Errorf("depth %d: %w", depth, err)
			}
			er.Scale = append(er.Scale, s)
		}
		return nil
	})
	// Last: it stops the server the other phases share.
	phase("pages", func() (err error) { er.Pages, err = r.pages(ctx); return err })
	return er
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s bench: %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

// environment records what the numbers were taken on.
func environment(repo string) Env {
	e := Env{GoVersion: runtime.Version(), CPUs: runtime.NumCPU()}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		e.LoadAvg = strings.Join(strings.Fields(string(b))[:3], " ")
	}
	if out, err := exec.Command("git", "-C", repo, "rev-parse", "--short", "HEAD").Output(); err == nil {
		e.Commit = strings.TrimSpace(string(out))
	}
	if out, err := exec.Command("git", "-C", repo, "status", "--porcelain").Output(); err == nil {
		e.Dirty = len(strings.TrimSpace(string(out))) > 0
	}
	if abs, err := filepath.Abs(repo); err == nil {
		e.Repo = abs
	}
	return e
}
