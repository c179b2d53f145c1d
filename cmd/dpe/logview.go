package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/dpe-engine/dpe/internal/client"
	"github.com/dpe-engine/dpe/internal/model"
	"github.com/dpe-engine/dpe/internal/wire"
)

// logPager reads one page of a log after a cursor.
type logPager func(ctx context.Context, after int64) (*wire.LogPage, error)

func workflowLogPager(c *client.Client, id int64) logPager {
	return func(ctx context.Context, after int64) (*wire.LogPage, error) {
		return c.WorkflowLog(ctx, id, client.LogQuery{After: after})
	}
}

func jobLogPager(c *client.Client, id int64) logPager {
	return func(ctx context.Context, after int64) (*wire.LogPage, error) {
		return c.JobLog(ctx, id, client.LogQuery{After: after})
	}
}

// readLog reads every line after the cursor, page by page, and returns
// them with the cursor past the last.
func readLog(ctx context.Context, page logPager, after int64) ([]model.LogLine, int64, error) {
	var out []model.LogLine
	for {
		p, err := page(ctx, after)
		if err != nil {
			return out, after, err
		}
		if len(p.Lines) == 0 {
			return out, after, nil
		}
		out = append(out, p.Lines...)
		after = p.Next
	}
}

// logLineText formats a log line for people: local time, level, the job
// it came from (in an instance's log) and the message.
func logLineText(l model.LogLine, withJob bool) string {
	var b strings.Builder
	b.WriteString(l.At.Local().Format("2006-01-02 15:04:05.000"))
	fmt.Fprintf(&b, " %-5s ", strings.ToUpper(l.Level))
	if withJob && l.JobID != 0 {
		fmt.Fprintf(&b, "job %d: ", l.JobID)
	}
	b.WriteString(strings.ReplaceAll(l.Message, "\n", "\n    "))
	return b.String()
}

// writeLogLines prints lines one a line (JSON Lines with asJSON).
func writeLogLines(w io.Writer, lines []model.LogLine, withJob, asJSON bool) error {
	for _, l := range lines {
		if asJSON {
			b, err := json.Marshal(l)
			if err != nil {
				return err
			}
			fmt.Fprintf(w, "%s\n", b)
			continue
		}
		fmt.Fprintln(w, logLineText(l, withJob))
	}
	return nil
}

// writeLogSection prints a "log" section after a show, when there are lines.
func writeLogSection(w io.Writer, lines []model.LogLine, withJob bool) {
	if len(lines) == 0 {
		return
	}
	fmt.Fprintln(w, "\nlog")
	for _, l := range lines {
		fmt.Fprintln(w, "  "+logLineText(l, withJob))
	}
}

// workflowLogs prints an instance's log (its own lines and its jobs').
// With follow it keeps reading until the instance is final, then reads
// the rest and answers like --wait: nil when it succeeded, notGreenError
// (exit 3) otherwise.
func workflowLogs(ctx context.Context, e *env, g *globals, c *client.Client, id int64, follow bool) error {
	page := workflowLogPager(c, id)
	lines, after, err := readLog(ctx, page, 0)
	if err != nil {
		return err
	}
	if err := writeLogLines(e.stdout, lines, true, g.json()); err != nil || !follow {
		return err
	}
	var inst model.Instance
	err = poll(ctx, func() (bool, error) {
		// The state is read before the lines: lines written before the
		// instance ended are then all in the read that sees it final.
		d, err := c.GetWorkflow(ctx, id)
		if err != nil {
			return false, err
		}
		inst = d.Instance
		var more []model.LogLine
		more, after, err = readLog(ctx, page, after)
		if err != nil {
			return false, err
		}
		if err := writeLogLines(e.stdout, more, true, g.json()); err != nil {
			return false, err
		}
		return inst.State.Final(), nil
	})
	if err != nil {
		return err
	}
	if inst.State != model.InstanceSucceeded {
		fmt.Fprintf(e.stderr, "workflow %d %s %s\n", inst.ID, inst.Name, inst.State)
		return notGreenError{fmt.Sprintf("workflow %d ended %s: %s", inst.ID, inst.State, inst.Error)}
	}
	return nil
}

// withoutLogNotes returns d with its log steps' results cleared, so the
// step tree does not repeat the lines the log section prints.
func withoutLogNotes(d model.InstanceDetail) model.InstanceDetail {
	steps := make([]model.Step, len(d.Steps))
	for i, s := range d.Steps {
		if s.Kind == "log" {
			s.Result = nil
		}
		steps[i] = s
	}
	d.Steps = steps
	return d
}
