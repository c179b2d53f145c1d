package main

import (
	"context"
	"encoding/json"
	"fmt"
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
	j, err = waitJob(ctx, c, j.ID)
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

// waitJob polls the job until it is final, backing off up to one second.
func waitJob(ctx context.Context, c *client.Client, id int64) (model.Job, error) {
	delay := 20 * time.Millisecond
	for {
		jp, err := c.GetJob(ctx, id)
		if err != nil {
			return model.Job{}, err
		}
		j := *jp
		if j.State.Final() {
			return j, nil
		}
		select {
		case <-ctx.Done():
			return j, ctx.Err()
		case <-time.After(delay):
		}
		delay = min(delay*2, time.Second)
	}
}

func printJobOutcome(e *env, j model.Job) {
	took := ""
	if j.StartedAt != nil && j.FinishedAt != nil {
		took = " in " + j.FinishedAt.Sub(*j.StartedAt).Round(time.Millisecond).String()
	}
	fmt.Fprintf(e.stdout, "job %d %s%s\n", j.ID, j.State, took)
	if j.Error != "" {
		fmt.Fprintf(e.stdout, "error: %s\n", j.Error)
	}
	var res map[string]any
	if json.Unmarshal(j.Result, &res) == nil {
		for _, k := range sortedKeys(res) {
			fmt.Fprintf(e.stdout, "%s: %v\n", k, res[k])
		}
	} else if len(j.Result) > 0 {
		fmt.Fprintf(e.stdout, "result: %s\n", j.Result)
	}
}

func jobList(ctx context.Context, e *env, args []string) error {
	fs, g := newCommand("job list", e)
	state := fs.String("state", "", "only these states (comma-separated)")
	typ := fs.String("type", "", "only these job types (comma-separated)")
	wf := fs.Int64("workflow", 0, "only jobs of this workflow instance id")
	limit := fs.Int("limit", 50, "page size")
	after := fs.String("after", "", "cursor: the 'next' of the previous page")
	pos, err := g.parse(args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("unexpected argument %q", pos[0])
	}
	q := client.JobQuery{Types: splitComma(*typ), Workflow: *wf, Limit: *limit, After: *after}
	for _, s := range splitComma(*state) {
		q.States = append(q.States, model.JobState(s))
	}
	c, err := g.client()
	if err != nil {
		return err
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
	return nil
}

func printJob(e *env, j model.Job) {
	kv := newTable(e.stdout)
	kv.row("id", j.ID)
	kv.row("type", j.Type)
	kv.row("state", j.State)
	kv.row("priority", j.Priority)
	kv.row("attempt", fmt.Sprintf("%d of %d", j.Attempt, j.MaxAttempts))
	kv.row("progress", fmt.Sprintf("%d%% %s", j.Progress, j.Message))
	kv.row("params", string(j.Params))
	if len(j.Selector) > 0 {
		kv.row("selector", fmt.Sprint(j.Selector))
	}
	if j.InstanceID != 0 {
		kv.row("workflow", fmt.Sprintf("%d step %s", j.InstanceID, j.Step))
	}
	kv.row("processor", dash(j.Processor))
	kv.row("epoch", j.Epoch)
	kv.row("created", j.CreatedAt.Local().Format(time.RFC3339))
	if j.StartedAt != nil {
		kv.row("started", j.StartedAt.Local().Format(time.RFC3339))
	}
	if j.FinishedAt != nil {
		kv.row("finished", j.FinishedAt.Local().Format(time.RFC3339))
	}
	if j.CancelAsked {
		kv.row("cancel", "requested")
	}
	if j.Error != "" {
		kv.row("error", j.Error)
	}
	if len(j.Result) > 0 {
		kv.row("result", string(j.Result))
	}
	kv.flush()
}
