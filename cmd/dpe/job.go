package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/dpe-engine/dpe/internal/client"
	"github.com/dpe-engine/dpe/internal/jobtype"
	"github.com/dpe-engine/dpe/internal/model"
)

func runJob(ctx context.Context, e *env, args []string) error {
	sub := map[string]func(context.Context, *env, []string) error{
		"submit": jobSubmit, "list": jobList, "show": jobShow, "cancel": jobCancel, "priority": jobPriority, "retry": jobRetry,
	}
	if len(args) == 0 {
		return usagef("want a subcommand: submit, list, show, cancel, priority or retry")
	}
	f, ok := sub[args[0]]
	if !ok {
		return usagef("unknown subcommand %q: want submit, list, show, cancel, priority or retry", args[0])
	}
	return f(ctx, e, args[1:])
}

func jobSubmit(ctx context.Context, e *env, args []string) error {
	fs, g := newCommand("job submit", e)
	params := newKV("param")
	fs.Var(params, "param", "KEY=VALUE parameter (repeatable); values are typed by the job type, else read as JSON when they parse")
	paramsJSON := fs.String("params-json", "", "parameters as one JSON object (merged under --param)")
	priority := fs.Int("priority", 0, "priority 0..1000, higher first")
	maxAttempts := fs.Int("max-attempts", 0, "attempts before the job fails (default 3)")
	timeout := fs.Duration("timeout", 0, "time limit of one attempt (0: none)")
	selector := newKV("selector")
	fs.Var(selector, "selector", "KEY=VALUE label a processor must have (repeatable)")
	wait := fs.Bool("wait", false, "wait for the job to end; exit non-zero unless it succeeded")
	count := fs.Int("count", 1, "submit N identical jobs (in batches) and print how many were acknowledged")
	pos, err := g.parse(args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("want exactly one job TYPE, got %d arguments", len(pos))
	}
	if *count < 1 {
		return usagef("--count: want at least 1, got %d", *count)
	}
	if *wait && *count > 1 {
		return usagef("--wait works with one job, not --count %d", *count)
	}
	p, err := buildParams(pos[0], params, *paramsJSON)
	if err != nil {
		return err
	}
	spec := model.JobSpec{Type: pos[0], Params: p, Priority: *priority, MaxAttempts: *maxAttempts,
		Timeout: model.Duration(*timeout), Selector: selector.m}
	c, err := g.client()
	if err != nil {
		return err
	}
	if *count > 1 {
		return submitMany(ctx, e, c, spec, *count)
	}
	jp, err := c.SubmitJob(ctx, spec)
	if err != nil {
		return err
	}
	j := *jp
	if !*wait {
		if g.json() {
			return printJSON(e.stdout, j)
		}
		fmt.Fprintf(e.stdout, "job %d submitted (%s)\n", j.ID, j.State)
		return nil
	}
	return waitJobOutcome(ctx, e, g, c, j.ID)
}

// waitJobOutcome waits for the job to end (progress on stderr), prints
// its outcome, and returns notGreenError unless it succeeded: the --wait
// of job submit and job retry.
func waitJobOutcome(ctx context.Context, e *env, g *globals, c *client.Client, id int64) error {
	var view progressView
	if !g.json() {
		view = newProgressView(e.stderr)
	}
	j, err := waitJob(ctx, c, id, view)
	if err != nil {
		return err
	}
	if g.json() {
		if err := printJSON(e.stdout, j); err != nil {
			return err
		}
	} else {
		printJobOutcome(e, j)
	}
	if j.State != model.JobSucceeded {
		return notGreenError{fmt.Sprintf("job %d ended %s: %s", j.ID, j.State, j.Error)}
	}
	return nil
}

// submitMany submits count copies of spec in batches.
func submitMany(ctx context.Context, e *env, c *client.Client, spec model.JobSpec, count int) error {
	const batch = 1000
	acked := 0
	for acked < count {
		n := min(batch, count-acked)
		specs := make([]model.JobSpec, n)
		for i := range specs {
			specs[i] = spec
		}
		out, err := c.SubmitJobs(ctx, specs)
		if err != nil {
			fmt.Fprintf(e.stdout, "%d jobs acknowledged\n", acked)
			return err
		}
		acked += len(out)
	}
	fmt.Fprintf(e.stdout, "%d jobs acknowledged\n", acked)
	return nil
}

// buildParams merges --params-json and --param into a JSON object. A
// --param value is a string when the job type declares the parameter a
// string, else JSON when it parses as JSON, else a string.
func buildParams(jobType string, kv *kvFlag, raw string) (json.RawMessage, error) {
	m := map[string]any{}
	if raw != "" {
		dec := json.NewDecoder(strings.NewReader(raw))
		dec.UseNumber()
		if err := dec.Decode(&m); err != nil {
			return nil, usagef("--params-json: want a JSON object: %v", err)
		}
	}
	specs := map[string]jobtype.Param{}
	if spec, ok := jobtype.Builtins()[jobType]; ok {
		for _, p := range spec.Params {
			specs[p.Name] = p
		}
	}
	for _, k := range kv.keys {
		v := kv.m[k]
		p, known := specs[k]
		if known && p.Path && v != "" && !filepath.IsAbs(v) && !strings.HasPrefix(v, "loc:") {
			abs, err := filepath.Abs(v)
			if err != nil {
				return nil, fmt.Errorf("--param %s: %w", k, err)
			}
			v = abs
		}
		if known && (p.Kind == jobtype.KindString || p.Kind == jobtype.KindDuration) {
			m[k] = v
			continue
		}
		var js any
		if err := json.Unmarshal([]byte(v), &js); err == nil {
			m[k] = js
		} else {
			m[k] = v
		}
	}
	b, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("encode params: %w", err)
	}
	return b, nil
}

// waitJob polls the job until it is final, showing its progress (percent
// and message) on view unless it is nil.
func waitJob(ctx context.Context, c *client.Client, id int64, view progressView) (model.Job, error) {
	var j model.Job
	err := poll(ctx, func() (bool, error) {
		jp, err := c.GetJob(ctx, id)
		if err != nil {
			return false, err
		}
		j = *jp
		if view != nil {
			view.update(jobProgress(j, time.Now()))
		}
		return j.State.Final(), nil
	})
	if err != nil && view != nil {
		view.abort()
	}
	return j, err
}

func printJobOutcome(e *env, j model.Job) {
	took := ""
	if j.StartedAt != nil && j.FinishedAt != nil {
		took = " in " + formatDuration(j.FinishedAt.Sub(*j.StartedAt))
	}
	fmt.Fprintf(e.stdout, "job %d %s%s\n", j.ID, j.State, took)
	width := outputWidth(e.stdout)
	if j.Error != "" {
		writeLabeled(e.stdout, "", "error", j.Error, width)
	}
	writeResult(e.stdout, j.Result, width)
}

func jobList(ctx context.Context, e *env, args []string) error {
	fs, g := newCommand("job list", e)
	state := fs.String("state", "", "only these states (comma-separated)")
	typ := fs.String("type", "", "only these job types (comma-separated)")
	wf := fs.String("workflow", "", "only jobs of this workflow instance (ID or NAME, as workflow show takes)")
	limit := fs.Int("limit", 50, "page size")
	after := fs.String("after", "", "cursor: the 'next' of the previous page")
	pos, err := g.parse(args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("unexpected argument %q", pos[0])
	}
	q := client.JobQuery{Types: splitComma(*typ), Limit: *limit, After: *after}
	for _, s := range splitComma(*state) {
		q.States = append(q.States, model.JobState(s))
	}
	c, err := g.client()
	if err != nil {
		return err
	}
	if *wf != "" {
		if q.Workflow, err = instanceID(ctx, c, *wf); err != nil {
			return err
		}
	}
	page, err := c.ListJobs(ctx, q)
	if err != nil {
		return err
	}
	if g.json() {
		return printJSON(e.stdout, page)
	}
	t := newTable(e.stdout, "ID", "TYPE", "STATE", "PRIO", "ATTEMPT", "PROGRESS", "PROCESSOR", "CREATED")
	for _, j := range page.Items {
		t.row(j.ID, j.Type, j.State, j.Priority, fmt.Sprintf("%d/%d", j.Attempt, j.MaxAttempts),
			fmt.Sprintf("%d%%", j.Progress), dash(j.Processor), j.CreatedAt.Local().Format(time.DateTime))
	}
	t.flush()
	fmt.Fprintf(e.stdout, "%d of %d", len(page.Items), page.Total)
	if page.Next != "" {
		fmt.Fprintf(e.stdout, "; next page: --after %s", page.Next)
	}
	fmt.Fprintln(e.stdout)
	return nil
}

// splitComma splits a comma-separated flag value, dropping blanks.
func splitComma(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// jobByID parses "dpe job VERB ID" and returns the id.
func jobByID(pos []string) (int64, error) {
	if len(pos) != 1 {
		return 0, usagef("want exactly one job ID")
	}
	id, err := strconv.ParseInt(pos[0], 10, 64)
	if err != nil || id <= 0 {
		return 0, usagef("job ID: want a positive integer, got %q", pos[0])
	}
	return id, nil
}

func jobShow(ctx context.Context, e *env, args []string) error {
	return jobAction(ctx, e, "show", args)
}

func jobCancel(ctx context.Context, e *env, args []string) error {
	return jobAction(ctx, e, "cancel", args)
}

func jobPriority(ctx context.Context, e *env, args []string) error {
	return jobAction(ctx, e, "priority", args)
}

// jobAction runs show, cancel or priority on one job and prints it.
func jobAction(ctx context.Context, e *env, verb string, args []string) error {
	_, g := newCommand("job "+verb, e)
	pos, err := g.parse(args)
	if err != nil {
		return err
	}
	var prio int
	if verb == "priority" {
		if len(pos) != 2 {
			return usagef("want: dpe job priority ID N")
		}
		if prio, err = strconv.Atoi(pos[1]); err != nil {
			return usagef("priority: want an integer, got %q", pos[1])
		}
		pos = pos[:1]
	}
	id, err := jobByID(pos)
	if err != nil {
		return err
	}
	c, err := g.client()
	if err != nil {
		return err
	}
	var j *model.Job
	switch verb {
	case "show":
		j, err = c.GetJob(ctx, id)
	case "cancel":
		j, err = c.CancelJob(ctx, id)
	case "priority":
		j, err = c.SetJobPriority(ctx, id, prio)
	}
	if err != nil {
		return err
	}
	if g.json() {
		return printJSON(e.stdout, j)
	}
	printJob(e, *j)
	if verb == "show" {
		if lines, _, err := readLog(ctx, jobLogPager(c, id), 0); err == nil {
			writeLogSection(e.stdout, lines, false)
		}
	}
	return nil
}

func printJob(e *env, j model.Job) {
	writeJob(e.stdout, j, time.Now(), outputWidth(e.stdout))
}

// maxOutputLines bounds each captured stream `job show` prints; -o json
// has all of it.
const maxOutputLines = 40

// writeJob prints a job for people: its settings, where it runs (lease
// holder and lease), its attempts and progress, then params and result one
// field a line, and a program's captured stdout and stderr as blocks.
func writeJob(w io.Writer, j model.Job, now time.Time, width int) {
	var f fields
	f.add("id", j.ID)
	f.add("type", j.Type)
	f.add("state", j.State)
	f.add("priority", j.Priority)
	attempts := fmt.Sprintf("%d of %d", j.Attempt, j.MaxAttempts)
	if j.State == model.JobQueued && j.Attempt > 0 && j.RunAfter.After(now) {
		attempts += ", next at " + j.RunAfter.Local().Format(time.TimeOnly)
	}
	f.add("attempts", attempts)
	progress := fmt.Sprintf("%d%%", j.Progress)
	if j.Message != "" {
		progress += " " + j.Message
	}
	f.add("progress", progress)
	if j.Processor != "" {
		holder := fmt.Sprintf("%s (epoch %d", j.Processor, j.Epoch)
		if j.LeaseUntil != nil && !j.State.Final() {
			holder += ", lease until " + j.LeaseUntil.Local().Format(time.TimeOnly)
		}
		f.add("processor", holder+")")
	} else {
		f.add("processor", "-")
	}
	if len(j.Selector) > 0 {
		sel := make([]string, 0, len(j.Selector))
		for _, k := range sortedKeys(j.Selector) {
			sel = append(sel, k+"="+j.Selector[k])
		}
		f.add("selector", strings.Join(sel, ", "))
	}
	if j.Timeout > 0 {
		f.add("timeout", time.Duration(j.Timeout))
	}
	if j.InstanceID != 0 {
		f.add("workflow", fmt.Sprintf("%d step %s", j.InstanceID, j.Step))
	}
	f.add("created", j.CreatedAt.Local().Format(time.RFC3339))
	if j.StartedAt != nil {
		f.add("started", j.StartedAt.Local().Format(time.RFC3339))
	}
	if j.FinishedAt != nil {
		f.add("finished", j.FinishedAt.Local().Format(time.RFC3339))
	}
	if j.StartedAt != nil {
		took := formatDuration(ranFor(j.CreatedAt, j.StartedAt, j.FinishedAt, now))
		if j.FinishedAt == nil {
			took += " so far"
		}
		f.add("duration", took)
	}
	if j.CancelAsked {
		f.add("cancel", "requested")
	}
	if j.Error != "" {
		f.add("error", j.Error)
	}
	f.write(w, width)
	writeObject(w, "params", j.Params, width)
	writeResult(w, j.Result, width)
}

// writeResult prints a job's result: its fields, then a program's captured
// stdout and stderr as blocks.
func writeResult(w io.Writer, raw json.RawMessage, width int) {
	var streams []string
	var m map[string]json.RawMessage
	if json.Unmarshal(raw, &m) == nil {
		for _, k := range []string{"stdout", "stderr"} {
			var text string
			if json.Unmarshal(m[k], &text) == nil {
				streams = append(streams, k, text)
				delete(m, k)
			}
		}
		if len(streams) > 0 {
			raw, _ = json.Marshal(m)
		}
	}
	writeObject(w, "result", raw, width)
	for i := 0; i < len(streams); i += 2 {
		writeOutput(w, streams[i], streams[i+1], width)
	}
}

// writeObject prints a JSON object under a heading, one field a line
// (strings as they are, other values as compact JSON), or the JSON itself
// when it is not an object.
func writeObject(w io.Writer, heading string, raw json.RawMessage, width int) {
	if len(raw) == 0 || string(raw) == "null" {
		return
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(raw, &m) != nil {
		var f fields
		f.add(heading, plainJSON(raw))
		f.write(w, width)
		return
	}
	if len(m) == 0 {
		return
	}
	fmt.Fprintln(w, heading)
	var f fields
	for _, k := range sortedKeys(m) {
		f.add("  "+k, plainJSON(m[k]))
	}
	f.write(w, width)
}

// writeOutput prints a captured stream as an indented block, its first
// maxOutputLines lines.
func writeOutput(w io.Writer, name, text string, width int) {
	text = strings.TrimRight(text, "\n")
	if text == "" {
		return
	}
	lines := strings.Split(text, "\n")
	plural := "s"
	if len(lines) == 1 {
		plural = ""
	}
	fmt.Fprintf(w, "%s (%d line%s)\n", name, len(lines), plural)
	for i, l := range lines {
		if i == maxOutputLines {
			fmt.Fprintf(w, "  ... %d more lines (-o json shows all)\n", len(lines)-i)
			break
		}
		for _, part := range wrap(l, width-2) {
			fmt.Fprintln(w, strings.TrimRight("  "+part, " "))
		}
	}
}

// plainJSON is a JSON value for people: a string as it is, anything else
// as compact JSON without HTML escapes.
func plainJSON(raw json.RawMessage) string {
	var v any
	if json.Unmarshal(raw, &v) != nil {
		return string(raw)
	}
	if s, ok := v.(string); ok {
		return s
	}
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if enc.Encode(v) != nil {
		return string(raw)
	}
	return strings.TrimSuffix(b.String(), "\n")
}
