package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/dpe-engine/dpe/internal/client"
	"github.com/dpe-engine/dpe/internal/model"
)

func runWorkflow(ctx context.Context, e *env, args []string) error {
	if len(args) == 0 {
		return usagef("want a subcommand: start, list, show, cancel, priority, retry or wait")
	}
	verb := args[0]
	if verb == "retry" {
		return workflowRetry(ctx, e, args[1:])
	}
	fs, g := newCommand("workflow "+verb, e)
	name := fs.String("name", "", "start: unique instance name (starting an existing name returns that instance)")
	wfArgs := newKV("arg")
	fs.Var(wfArgs, "arg", "start: KEY=VALUE argument (repeatable); typed by the template")
	argsJSON := fs.String("args-json", "", "start: arguments as one JSON object (merged under --arg)")
	priority := fs.Int("priority", 0, "start: priority 0..1000")
	version := fs.Int("version", 0, "start: template version (0: the latest)")
	wait := fs.Bool("wait", false, "start: wait for the end with a progress bar; exit non-zero unless it succeeded")
	state := fs.String("state", "", "list: only these states (comma-separated)")
	tpl := fs.String("template", "", "list: only these templates (comma-separated)")
	limit := fs.Int("limit", 50, "list: page size")
	after := fs.String("after", "", "list: cursor (the 'next' of the previous page)")
	pos, err := g.parse(args[1:])
	if err != nil {
		return err
	}
	c, err := g.client()
	if err != nil {
		return err
	}
	switch verb {
	case "start":
		if len(pos) != 1 {
			return usagef("want exactly one TEMPLATE")
		}
		a, err := workflowArgs(wfArgs, *argsJSON)
		if err != nil {
			return err
		}
		spec := model.InstanceSpec{Template: pos[0], Version: *version, Name: *name, Args: a, Priority: *priority}
		status := 0
		inst, err := c.StartWorkflow(ctx, spec, client.WithStatus(&status))
		if err != nil {
			return err
		}
		if !*wait {
			if g.json() {
				return printJSON(e.stdout, inst)
			}
			what := "started"
			if status == 200 {
				what = "already exists"
			}
			fmt.Fprintf(e.stdout, "workflow %d %s %s (%s)\n", inst.ID, inst.Name, what, inst.State)
			return nil
		}
		return waitInstance(ctx, e, g, c, inst.ID)
	case "list":
		q := client.WorkflowQuery{Templates: splitComma(*tpl), Limit: *limit, After: *after}
		for _, s := range splitComma(*state) {
			q.States = append(q.States, model.InstanceState(s))
		}
		page, err := c.ListWorkflows(ctx, q)
		if err != nil {
			return err
		}
		if g.json() {
			return printJSON(e.stdout, page)
		}
		t := newTable(e.stdout, "ID", "NAME", "TEMPLATE", "STATE", "PRIO", "PROGRESS", "CURRENT", "CREATED")
		for _, i := range page.Items {
			t.row(i.ID, i.Name, fmt.Sprintf("%s@%d", i.Template, i.Version), i.State, i.Priority,
				fmt.Sprintf("%d%%", i.Progress), dash(strings.Join(i.Current, ",")), i.CreatedAt.Local().Format(time.DateTime))
		}
		t.flush()
		fmt.Fprintf(e.stdout, "%d of %d", len(page.Items), page.Total)
		if page.Next != "" {
			fmt.Fprintf(e.stdout, "; next page: --after %s", page.Next)
		}
		fmt.Fprintln(e.stdout)
		return nil
	case "show", "cancel", "priority", "wait":
		want := 1
		if verb == "priority" {
			want = 2
		}
		if len(pos) != want {
			if verb == "priority" {
				return usagef("want: dpe workflow priority ID|NAME N")
			}
			return usagef("want exactly one instance ID or NAME")
		}
		id, err := instanceID(ctx, c, pos[0])
		if err != nil {
			return err
		}
		switch verb {
		case "wait":
			return waitInstance(ctx, e, g, c, id)
		case "cancel":
			inst, err := c.CancelWorkflow(ctx, id)
			if err != nil {
				return err
			}
			if g.json() {
				return printJSON(e.stdout, inst)
			}
			fmt.Fprintf(e.stdout, "workflow %d %s: cancel requested (%s)\n", inst.ID, inst.Name, inst.State)
			return nil
		case "priority":
			p, err := strconv.Atoi(pos[1])
			if err != nil {
				return usagef("priority: want an integer, got %q", pos[1])
			}
			inst, err := c.SetWorkflowPriority(ctx, id, p)
			if err != nil {
				return err
			}
			if g.json() {
				return printJSON(e.stdout, inst)
			}
			fmt.Fprintf(e.stdout, "workflow %d %s: priority %d\n", inst.ID, inst.Name, inst.Priority)
			return nil
		}
		d, err := c.GetWorkflow(ctx, id)
		if err != nil {
			return err
		}
		if g.json() {
			return printJSON(e.stdout, d)
		}
		printInstance(e, *d)
		return nil
	}
	return usagef("unknown subcommand %q: want start, list, show, cancel, priority, retry or wait", verb)
}

// workflowArgs merges --args-json and --arg. --arg values go as strings
// (the server converts them to the template's declared types) unless they
// are a JSON list or object.
func workflowArgs(kv *kvFlag, raw string) (json.RawMessage, error) {
	m := map[string]any{}
	if raw != "" {
		if err := json.Unmarshal([]byte(raw), &m); err != nil {
			return nil, usagef("--args-json: want a JSON object: %v", err)
		}
	}
	for _, k := range kv.keys {
		v := kv.m[k]
		if t := strings.TrimSpace(v); strings.HasPrefix(t, "[") || strings.HasPrefix(t, "{") {
			var js any
			if err := json.Unmarshal([]byte(t), &js); err == nil {
				m[k] = js
				continue
			}
		}
		m[k] = v
	}
	return json.Marshal(m)
}

// instanceID resolves an id or an instance name.
func instanceID(ctx context.Context, c *client.Client, s string) (int64, error) {
	if id, err := strconv.ParseInt(s, 10, 64); err == nil && id > 0 {
		return id, nil
	}
	page, err := c.ListWorkflows(ctx, client.WorkflowQuery{Name: s})
	if err != nil {
		return 0, err
	}
	if len(page.Items) == 0 {
		return 0, fmt.Errorf("no workflow instance named %q: %w", s, model.ErrNotFound)
	}
	return page.Items[0].ID, nil
}

// waitInstance polls until the instance ends, drawing a progress bar on
// stderr, prints the outcome and maps it to the exit code.
func waitInstance(ctx context.Context, e *env, g *globals, c *client.Client, id int64) error {
	delay := 50 * time.Millisecond
	var inst model.Instance
	for {
		d, err := c.GetWorkflow(ctx, id)
		if err != nil {
			return err
		}
		inst = d.Instance
		if !g.json() {
			fmt.Fprintf(e.stderr, "\r%s", progressBar(inst))
		}
		if inst.State.Final() {
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(delay):
		}
		delay = min(delay*2, time.Second)
	}
	if g.json() {
		if err := printJSON(e.stdout, inst); err != nil {
			return err
		}
	} else {
		fmt.Fprintln(e.stderr)
		fmt.Fprintf(e.stdout, "workflow %d %s %s\n", inst.ID, inst.Name, inst.State)
		if inst.Error != "" {
			fmt.Fprintf(e.stdout, "error: %s\n", inst.Error)
		}
		if len(inst.Output) > 0 {
			fmt.Fprintf(e.stdout, "output: %s\n", inst.Output)
		}
	}
	if inst.State != model.InstanceSucceeded {
		return notGreenError{fmt.Sprintf("workflow %d ended %s: %s", inst.ID, inst.State, inst.Error)}
	}
	return nil
}

func progressBar(i model.Instance) string {
	const width = 30
	n := width * i.Progress / 100
	cur := strings.Join(i.Current, ",")
	if len(cur) > 40 {
		cur = cur[:37] + "..."
	}
	return fmt.Sprintf("[%s%s] %3d%% %-9s %-40s", strings.Repeat("#", n), strings.Repeat(".", width-n), i.Progress, i.State, cur)
}

func printInstance(e *env, d model.InstanceDetail) {
	i := d.Instance
	kv := newTable(e.stdout)
	kv.row("id", i.ID)
	kv.row("name", i.Name)
	kv.row("template", fmt.Sprintf("%s version %d", i.Template, i.Version))
	kv.row("state", i.State)
	kv.row("priority", i.Priority)
	kv.row("progress", fmt.Sprintf("%d%%", i.Progress))
	kv.row("args", string(i.Args))
	if len(i.Current) > 0 {
		kv.row("current", strings.Join(i.Current, ", "))
	}
	if len(i.Vars) > 0 && string(i.Vars) != "{}" {
		kv.row("vars", string(i.Vars))
	}
	if i.Worker != "" {
		kv.row("worker", fmt.Sprintf("%s (epoch %d)", i.Worker, i.Epoch))
	}
	kv.row("created", i.CreatedAt.Local().Format(time.RFC3339))
	if i.FinishedAt != nil {
		kv.row("finished", i.FinishedAt.Local().Format(time.RFC3339))
	}
	if i.Error != "" {
		kv.row("error", i.Error)
	}
	if len(i.Output) > 0 {
		kv.row("output", string(i.Output))
	}
	kv.flush()
	fmt.Fprintln(e.stdout, "\nsteps")
	t := newTable(e.stdout, "PATH", "KIND", "STATE", "JOB", "STARTED", "ERROR")
	for _, s := range d.Steps {
		job := "-"
		if s.JobID != 0 {
			job = strconv.FormatInt(s.JobID, 10)
		}
		t.row(s.Path, s.Kind, s.State, job, s.StartedAt.Local().Format(time.TimeOnly), dash(s.Error))
	}
	t.flush()
}
