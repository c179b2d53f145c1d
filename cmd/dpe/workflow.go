package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/dpe-engine/dpe/internal/client"
	"github.com/dpe-engine/dpe/internal/model"
	"github.com/dpe-engine/dpe/internal/template"
)

func runWorkflow(ctx context.Context, e *env, args []string) error {
	if len(args) == 0 {
		return usagef("want a subcommand: start, list, show, logs, cancel, priority, retry or wait")
	}
	verb := args[0]
	if verb == "retry" {
		return workflowRetry(ctx, e, args[1:])
	}
	fs, g := newCommand("workflow "+verb, e)
	name := fs.String("name", "", "start: unique instance name (starting an existing name returns that instance); list: only the instance of this name")
	wfArgs := newArgFlag()
	fs.Var(wfArgs, "arg", "start: KEY=VALUE argument (repeatable; a list arg takes one --arg per element); typed by the template, relative paths made absolute")
	argsJSON := fs.String("args-json", "", "start: arguments as one JSON object (merged under --arg)")
	priority := fs.Int("priority", 0, "start: priority 0..1000")
	version := fs.Int("version", 0, "start: template version (0: the latest)")
	wait := fs.Bool("wait", false, "start: wait for the end with a progress bar; exit non-zero unless it succeeded")
	state := fs.String("state", "", "list: only these states (comma-separated)")
	tpl := fs.String("template", "", "list: only these templates (comma-separated)")
	trig := fs.String("trigger", "", "list: only the instances this trigger started")
	limit := fs.Int("limit", 50, "list: page size")
	after := fs.String("after", "", "list: cursor (the 'next' of the previous page)")
	follow := fs.Bool("follow", false, "logs: keep printing new lines until the instance ends; exit 3 unless it succeeded")
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
		a, err := startArgs(ctx, c, pos[0], *version, wfArgs, *argsJSON)
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
		q := client.WorkflowQuery{Templates: splitComma(*tpl), Name: *name, Trigger: *trig, Limit: *limit, After: *after}
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
	case "show", "logs", "cancel", "priority", "wait":
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
		case "logs":
			return workflowLogs(ctx, e, g, c, id, *follow)
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
		// The log section holds the log steps' lines (and the jobs'):
		// the tree then leaves them out. An older server without the
		// log route: the tree keeps them.
		view := *d
		lines, _, err := readLog(ctx, workflowLogPager(c, id), 0)
		if err == nil {
			view = withoutLogNotes(view)
		}
		printInstance(ctx, e, c, view)
		writeLogSection(e.stdout, lines, true)
		return nil
	}
	return usagef("unknown subcommand %q: want start, list, show, logs, cancel, priority, retry or wait", verb)
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
		return 0, fmt.Errorf("workflow instance %s %w", s, model.ErrNotFound)
	}
	return page.Items[0].ID, nil
}

// waitInstance polls until the instance ends, showing its progress on
// stderr (a bar on a terminal, a line per change otherwise), prints the
// outcome and maps it to the exit code.
func waitInstance(ctx context.Context, e *env, g *globals, c *client.Client, id int64) error {
	var view progressView
	if !g.json() {
		view = newProgressView(e.stderr)
	}
	var inst model.Instance
	err := poll(ctx, func() (bool, error) {
		d, err := c.GetWorkflow(ctx, id)
		if err != nil {
			return false, err
		}
		inst = d.Instance
		if view != nil {
			view.update(instanceProgress(inst, time.Now()))
		}
		return inst.State.Final(), nil
	})
	if err != nil {
		if view != nil {
			view.abort()
		}
		return err
	}
	if g.json() {
		if err := printJSON(e.stdout, inst); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(e.stdout, "workflow %d %s %s\n", inst.ID, inst.Name, inst.State)
		if inst.Error != "" {
			writeLabeled(e.stdout, "", "error", inst.Error, outputWidth(e.stdout))
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

// poll calls look until it reports done or fails, waiting 20 ms after the
// first look and doubling up to half a second (a bar stays lively, a
// long run costs two calls a second).
func poll(ctx context.Context, look func() (bool, error)) error {
	delay := 20 * time.Millisecond
	for {
		done, err := look()
		if err != nil || done {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(delay):
		}
		delay = min(delay*2, 500*time.Millisecond)
	}
}

// printInstance prints an instance and its step tree. The template (for
// run order) and sub-workflow instances are read from the server; when one
// cannot be, the tree falls back to start times and leaves the child out.
func printInstance(ctx context.Context, e *env, c *client.Client, d model.InstanceDetail) {
	i := d.Instance
	width := outputWidth(e.stdout)
	now := time.Now()
	var f fields
	f.add("id", i.ID)
	f.add("name", i.Name)
	f.add("template", fmt.Sprintf("%s version %d", i.Template, i.Version))
	f.add("state", i.State)
	f.add("priority", i.Priority)
	f.add("progress", fmt.Sprintf("%d%%", i.Progress))
	f.add("args", string(i.Args))
	if len(i.Current) > 0 {
		f.add("current", strings.Join(i.Current, ", "))
	}
	if len(i.Vars) > 0 && string(i.Vars) != "{}" {
		f.add("vars", string(i.Vars))
	}
	if i.ParentID != 0 {
		f.add("parent", fmt.Sprintf("workflow %d step %s", i.ParentID, i.ParentStep))
	}
	if i.Trigger != "" {
		f.add("trigger", i.Trigger)
	}
	if i.Worker != "" {
		f.add("worker", fmt.Sprintf("%s (epoch %d)", i.Worker, i.Epoch))
	}
	f.add("created", i.CreatedAt.Local().Format(time.RFC3339))
	if i.StartedAt != nil {
		f.add("started", i.StartedAt.Local().Format(time.RFC3339))
	}
	if i.FinishedAt != nil {
		f.add("finished", i.FinishedAt.Local().Format(time.RFC3339))
	}
	if i.StartedAt != nil {
		took := formatDuration(ranFor(i.CreatedAt, i.StartedAt, i.FinishedAt, now))
		if i.FinishedAt == nil {
			took += " so far"
		}
		f.add("duration", took)
	}
	if i.Error != "" {
		f.add("error", i.Error)
	}
	if len(i.Output) > 0 {
		f.add("output", string(i.Output))
	}
	f.write(e.stdout, width)
	fmt.Fprintln(e.stdout, "\nsteps")
	orders := map[string]map[string]int{}
	order := func(name string, version int) map[string]int {
		key := fmt.Sprintf("%s@%d", name, version)
		if o, ok := orders[key]; ok {
			return o
		}
		var parsed *template.Template
		if t, err := c.GetTemplate(ctx, name, version); err == nil {
			parsed, _ = template.Parse([]byte(t.Source), template.ParseOptions{})
		}
		orders[key] = templateOrder(parsed)
		return orders[key]
	}
	var child childSteps
	depth, read := 0, 0
	child = func(id int64) (*model.Instance, []*stepNode) {
		// Deep nesting (a template calling itself) and wide fan-outs of
		// sub-workflows are cut short: those show their id only.
		if depth >= maxShowDepth || read >= maxShowChildren {
			return nil, nil
		}
		read++
		cd, err := c.GetWorkflow(ctx, id)
		if err != nil {
			return nil, nil
		}
		depth++
		defer func() { depth-- }()
		return &cd.Instance, buildStepTree(*cd, order(cd.Instance.Template, cd.Instance.Version), child)
	}
	writeStepTree(e.stdout, buildStepTree(d, order(i.Template, i.Version), child), now, width)
}

// maxShowDepth and maxShowChildren bound the sub-workflows `workflow show`
// reads: levels, and instances in all.
const (
	maxShowDepth    = 5
	maxShowChildren = 20
)
