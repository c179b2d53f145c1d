package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"
)

// Results is the whole run, as written to the JSON file.
type Results struct {
	Started time.Time       `json:"started"`
	Seconds float64         `json:"seconds"`
	Quick   bool            `json:"quick"`
	Env     Env             `json:"env"`
	Config  Config          `json:"config"`
	Engines []*EngineResult `json:"engines"`
	// BaselineRev and BaselineEngines: the steps phase on a build of an
	// older revision (-baseline-rev), one per engine, for before/after.
	BaselineRev     string          `json:"baseline_revision,omitempty"`
	BaselineEngines []*EngineResult `json:"baseline_engines,omitempty"`
	Targets         []Target        `json:"targets"`
}

// Env is the machine and code the numbers were taken on.
type Env struct {
	GoVersion string `json:"go"`
	CPUs      int    `json:"cpus"`
	LoadAvg   string `json:"loadavg_at_start"`
	Commit    string `json:"commit"`
	Dirty     bool   `json:"dirty"`
	Repo      string `json:"repo"`
}

// Config is the settings of the run.
type Config struct {
	Processors int     `json:"processors"`
	Quota      int     `json:"quota_per_processor"`
	Batch      int     `json:"batch"`
	Duration   float64 `json:"phase_seconds"`
	Warmup     float64 `json:"warmup_seconds"`
	Dispatch   int     `json:"dispatch_jobs"`
	Small      int     `json:"small_depth"`
	Big        int     `json:"big_depth"`
}

func configOf(o *options) Config {
	return Config{Processors: o.processors, Quota: o.quota, Batch: o.batch,
		Duration: o.duration.Seconds(), Warmup: o.warmup.Seconds(), Dispatch: o.dispatch,
		Small: o.small, Big: o.big}
}

// EngineResult is every phase on one core database; a nil phase did not
// run or failed (see Errors).
type EngineResult struct {
	Engine     string      `json:"engine"`
	Database   string      `json:"database"`
	Logs       string      `json:"logs,omitempty"`
	Baseline   *Baseline   `json:"baseline,omitempty"`
	Throughput *Throughput `json:"throughput,omitempty"`
	Dispatch   *Dispatch   `json:"dispatch,omitempty"`
	Workflow   *Workflow   `json:"workflow,omitempty"`
	Scale      []*Scale    `json:"scaling,omitempty"`
	Steps      *Steps      `json:"steps,omitempty"`
	Pages      *Pages      `json:"pages,omitempty"`
	Errors     []string    `json:"errors,omitempty"`
}

func (e *EngineResult) fail(phase string, err error) {
	msg := fmt.Sprintf("%s: %v", phase, err)
	logf("%s: FAILED %s", e.Engine, msg)
	e.Errors = append(e.Errors, msg)
}

// Target is one goal of issue #6 checked against the run.
type Target struct {
	Engine   string  `json:"engine"`
	Goal     string  `json:"goal"`
	Measured string  `json:"measured"`
	Ratio    float64 `json:"ratio"`
	Need     string  `json:"need"` // the condition on Ratio
	Pass     bool    `json:"pass"`
	Note     string  `json:"note,omitempty"`
}

// evaluate checks the targets that the phases that ran allow. Each ratio
// is the one the goal is written in: jobs/s ÷ pgbench TPS, instances/s ÷
// jobs/s, claims/s big ÷ small; for absolute goals measured ÷ limit.
func evaluate(res *Results) []Target {
	var ts []Target
	atLeast := func(e, goal, measured string, ratio, need float64, note string) {
		ts = append(ts, Target{e, goal, measured, round3(ratio), fmt.Sprintf("≥ %g", need), ratio >= need, note})
	}
	atMost := func(e, goal, measured string, ratio float64, note string) {
		ts = append(ts, Target{e, goal, measured, round3(ratio), "≤ 1", ratio <= 1, note})
	}
	for _, e := range res.Engines {
		t, d, w := e.Throughput, e.Dispatch, e.Workflow
		switch e.Engine {
		case "postgres":
			if t != nil && e.Baseline != nil && e.Baseline.TPS > 0 {
				atLeast(e.Engine, "noop jobs/s ≥ 2.0 × pgbench -N TPS",
					fmt.Sprintf("%.0f jobs/s vs %.0f tps", t.JobsPerSec, e.Baseline.TPS), t.JobsPerSec/e.Baseline.TPS, 2.0, "")
			}
			if d != nil {
				atMost(e.Engine, "dispatch p50 ≤ 5 ms (idle)", fmt.Sprintf("%.2f ms", d.ToHandler.P50), d.ToHandler.P50/5, "ack → handler started")
				atMost(e.Engine, "dispatch p99 ≤ 25 ms (idle)", fmt.Sprintf("%.2f ms", d.ToHandler.P99), d.ToHandler.P99/25, "ack → handler started")
			}
		case "sqlite":
			if t != nil {
				atLeast(e.Engine, "noop jobs/s ≥ 5,000", fmt.Sprintf("%.0f jobs/s", t.JobsPerSec), t.JobsPerSec/5000, 1, "")
			}
		}
		if w != nil && t != nil && t.JobsPerSec > 0 {
			atLeast(e.Engine, "3-step workflow instances/s ≥ 0.25 × noop jobs/s",
				fmt.Sprintf("%.1f inst/s vs %.0f jobs/s", w.InstancesPerSec, t.JobsPerSec), w.InstancesPerSec/t.JobsPerSec, 0.25, "")
		}
		if st := e.Steps; st != nil && st.StepToJob.N > 0 {
			atMost(e.Engine, "step-to-step p50 ≤ 20 ms", fmt.Sprintf("%.2f ms", st.StepToJob.P50), st.StepToJob.P50/20, "job finished_at → next job created_at")
			atMost(e.Engine, "step-to-step p99 ≤ 100 ms", fmt.Sprintf("%.2f ms", st.StepToJob.P99), st.StepToJob.P99/100, "job finished_at → next job created_at")
		}
		if p := e.Pages; p != nil {
			for _, pt := range p.Pages {
				atMost(e.Engine, "page p99 ≤ 200 ms: "+pt.Page, fmt.Sprintf("%.2f ms", pt.Loaded.P99), pt.Loaded.P99/ms(pageTarget),
					fmt.Sprintf("%s instances, %s jobs", count(p.Load.Instances), count(p.Load.Jobs)))
			}
		}
		if len(e.Scale) == 2 && e.Scale[0].ClaimsPerSec > 0 {
			small, big := e.Scale[0], e.Scale[1]
			note := ""
			if big.Depth != 1_000_000 {
				note = fmt.Sprintf("big queue %d, not 1,000,000", big.Depth)
			}
			atLeast(e.Engine, fmt.Sprintf("claims/s with %s queued ≥ 0.8 × with %s", count(big.Depth), count(small.Depth)),
				fmt.Sprintf("%.0f vs %.0f claims/s", big.ClaimsPerSec, small.ClaimsPerSec), big.ClaimsPerSec/small.ClaimsPerSec, 0.8, note)
			if !big.PeakIsPhase {
				note = strings.TrimPrefix(note+"; peak since server start", "; ")
			}
			atMost(e.Engine, fmt.Sprintf("server RSS ≤ 200 MB with %s queued", count(big.Depth)),
				fmt.Sprintf("%.1f MB", big.ServerPeakRSSMB), big.ServerPeakRSSMB/200, note)
		}
	}
	return ts
}

// count writes n with thousands separators.
func count(n int) string {
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// printReport writes the human-readable tables.
func printReport(out io.Writer, res *Results) {
	c := res.Config
	fmt.Fprintf(out, "\ndpe bench — %s, %d CPUs, load %s at start, commit %s%s; %d processors × noop=%d, batch %d, %gs phases%s\n",
		res.Env.GoVersion, res.Env.CPUs, res.Env.LoadAvg, res.Env.Commit, map[bool]string{true: " (dirty tree)"}[res.Env.Dirty],
		c.Processors, c.Quota, c.Batch, c.Duration, map[bool]string{true: " (-quick)"}[res.Quick])
	for _, e := range res.Engines {
		fmt.Fprintf(out, "\n== %s (%s)\n", e.Engine, e.Database)
		tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
		row := func(cols ...string) { fmt.Fprintln(tw, strings.Join(cols, "\t")) }
		if b := e.Baseline; b != nil && b.TPS > 0 {
			row("baseline", b.What, fmt.Sprintf("%.0f tps", b.TPS))
		}
		if t := e.Throughput; t != nil {
			row("throughput", fmt.Sprintf("noop end to end (%s jobs in %.1f s)", count(int(t.Jobs)), t.Seconds), fmt.Sprintf("%.0f jobs/s", t.JobsPerSec))
			row("", "server CPU per 1,000 jobs", fmt.Sprintf("%.3f s", t.ServerCPUPer1000))
			usageRows(row, t.Usage)
		}
		if d := e.Dispatch; d != nil {
			lat := func(what string, l Latency) {
				row("", what, fmt.Sprintf("%.2f / %.2f / %.2f ms", l.P50, l.P99, l.Max))
			}
			row("dispatch", fmt.Sprintf("idle, %d jobs one at a time, %s rows in jobs", d.Jobs, count(int(d.TableRows))), "p50 / p99 / max")
			lat("submit round trip (sent → ack)", d.Submit)
			lat("ack → claim (server started_at)", d.ToClaim)
			lat("ack → handler started (processor log, ±0.5 ms)", d.ToHandler)
			lat("ack → finished (server finished_at)", d.ToFinish)
			lat("claim (started_at) → handler started", d.ClaimToHandler)
			if d.BeforeAck > 0 {
				row("", "handler started before the ack was read", fmt.Sprintf("%d jobs", d.BeforeAck))
			}
		}
		if w := e.Workflow; w != nil {
			row("workflow", fmt.Sprintf("3-step instances (%s in %.1f s, %d failed)", count(int(w.Instances)), w.Seconds, w.Failed), fmt.Sprintf("%.1f inst/s", w.InstancesPerSec))
			row("", "server CPU per 100 instances", fmt.Sprintf("%.3f s", w.ServerCPUPer100))
			usageRows(row, w.Usage)
		}
		for _, s := range e.Scale {
			row("scaling", fmt.Sprintf("%s queued, %s rows in jobs (loaded in %.1f s)", count(s.Depth), count(int(s.TableRows)), s.LoadSeconds), fmt.Sprintf("%.0f claims/s", s.ClaimsPerSec))
			row("", "probe claim p50 / p99 / max", fmt.Sprintf("%.2f / %.2f / %.2f ms (n=%d)", s.Probe.P50, s.Probe.P99, s.Probe.Max, s.Probe.N))
			if rt := findRoute(s.Routes, "POST /v1/claims"); rt != nil {
				row("", "server time per claim call (all callers)", fmt.Sprintf("%.2f ms mean (%d calls)", rt.MeanMS, rt.Count))
			}
			row("", "server CPU per 1,000 jobs", fmt.Sprintf("%.3f s", s.ServerCPUPer1000))
			usageRows(row, s.Usage)
		}
		if st := e.Steps; st != nil {
			stepsRows(row, st)
		}
		if p := e.Pages; p != nil {
			pagesRows(row, p)
		}
		for _, msg := range e.Errors {
			row("ERROR", msg, "")
		}
		tw.Flush()
		if st := e.Steps; st != nil && len(st.Routes) > 0 {
			fmt.Fprintf(out, "\n   server time by route, steps phase (long polls wait by design)\n")
			tw = tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
			fmt.Fprintln(tw, "   route\tcalls\tmean ms\ttotal s\t")
			for _, rt := range st.Routes {
				fmt.Fprintf(tw, "   %s\t%d\t%.2f\t%.2f\t\n", rt.Route, rt.Count, rt.MeanMS, rt.TotalS)
			}
			tw.Flush()
		}
		if t := e.Throughput; t != nil && len(t.Routes) > 0 {
			fmt.Fprintf(out, "\n   server time by route, throughput phase (handler time incl. waits; long polls wait by design)\n")
			tw = tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
			fmt.Fprintln(tw, "   route\tcalls\tmean ms\ttotal s\t")
			for _, rt := range t.Routes {
				fmt.Fprintf(tw, "   %s\t%d\t%.2f\t%.2f\t\n", rt.Route, rt.Count, rt.MeanMS, rt.TotalS)
			}
			tw.Flush()
		}
	}
	if len(res.BaselineEngines) > 0 {
		fmt.Fprintf(out, "\n== step-to-step latency, before (%s) and after (%s), same run\n", res.BaselineRev, res.Env.Commit)
		tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "engine\trevision\tinstances\tstep p50\tstep p99\tstep max\tinstance p50\t")
		line := func(e *EngineResult) {
			if e.Steps == nil {
				msg, _, _ := strings.Cut(strings.Join(e.Errors, "; "), "\n")
				fmt.Fprintf(tw, "%s\tERROR %s\t\t\t\t\t\t\n", e.Engine, msg)
				return
			}
			s := e.Steps
			fmt.Fprintf(tw, "%s\t%s\t%d\t%.2f ms\t%.2f ms\t%.2f ms\t%.2f ms\t\n", e.Engine, s.Revision, s.Instances, s.StepToJob.P50, s.StepToJob.P99, s.StepToJob.Max, s.Instance.P50)
		}
		for i, e := range res.BaselineEngines {
			line(e)
			if i < len(res.Engines) {
				line(res.Engines[i])
			}
		}
		tw.Flush()
	}
	if len(res.Targets) > 0 {
		fmt.Fprintf(out, "\ntargets (issue #6)\n")
		tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "engine\tgoal\tmeasured\tratio\tneed\tresult\t")
		for _, t := range res.Targets {
			result := "FAIL"
			if t.Pass {
				result = "PASS"
			}
			if t.Note != "" {
				result += " (" + t.Note + ")"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%.3f\t%s\t%s\t\n", t.Engine, t.Goal, t.Measured, t.Ratio, t.Need, result)
		}
		tw.Flush()
	}
	fmt.Fprintln(out)
}

// usageRows prints where a phase's CPU went and the server's memory.
func usageRows(row func(...string), u Usage) {
	cpu := fmt.Sprintf("server %.1f s, processors/worker %.1f s", u.CPU.Server, u.CPU.Clients)
	if u.CPU.Database > 0 {
		cpu += fmt.Sprintf(", PostgreSQL backends %.1f s", u.CPU.Database)
	}
	row("", "CPU during the phase", cpu+fmt.Sprintf("; machine %.0f%% busy", u.CPU.MachineBusy*100))
	peak := "phase peak"
	if !u.PeakIsPhase {
		peak = "peak since start"
	}
	row("", "server RSS", fmt.Sprintf("%.1f MB %s, %.1f MB at end", u.ServerPeakRSSMB, peak, u.ServerRSSMB))
}

func findRoute(rs []RouteTime, route string) *RouteTime {
	for i := range rs {
		if rs[i].Route == route {
			return &rs[i]
		}
	}
	return nil
}

// writeJSON writes res to path, creating its directory.
func writeJSON(path string, res *Results) error {
	b, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// stepsRows prints the steps phase of one engine.
func stepsRows(row func(...string), st *Steps) {
	row("steps", fmt.Sprintf("3 noop steps, %d instances one at a time (%d failed), revision %s", st.Instances, st.Failed, st.Revision), "p50 / p99 / max")
	row("", "job finished_at → next step's job created_at", fmt.Sprintf("%.2f / %.2f / %.2f ms (n=%d)", st.StepToJob.P50, st.StepToJob.P99, st.StepToJob.Max, st.StepToJob.N))
	row("", "slowest step changes", fmt.Sprint(st.Slowest, " ms"))
	row("", "start acknowledged → instance finished", fmt.Sprintf("%.2f / %.2f / %.2f ms", st.Instance.P50, st.Instance.P99, st.Instance.Max))
}
