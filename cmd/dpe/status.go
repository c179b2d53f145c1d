package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/dpe-engine/dpe/internal/model"
)

func runStatus(ctx context.Context, e *env, args []string) error {
	_, g := newCommand("status", e)
	if err := g.parseNone(args); err != nil {
		return err
	}
	c, err := g.client()
	if err != nil {
		return err
	}
	st, err := c.Status(ctx)
	if err != nil {
		return err
	}
	if g.json() {
		return printJSON(e.stdout, st)
	}
	s := st.Server
	db := "ready"
	if !s.Ready {
		db = "NOT READY: " + s.DBError
	}
	fmt.Fprintf(e.stdout, "server     %s (version %s, up %s)\ncore db    %s, %s\n", s.ID, s.Version,
		s.Now.Sub(s.Started).Round(time.Second), s.DB, db)
	var counts []string
	for _, state := range []model.JobState{model.JobQueued, model.JobRunning, model.JobSucceeded, model.JobFailed, model.JobCanceled} {
		counts = append(counts, fmt.Sprintf("%s %d", state, st.Jobs[state]))
	}
	fmt.Fprintf(e.stdout, "jobs       %s\n\nprocessors (%d)\n", strings.Join(counts, ", "), len(st.Processors))
	t := newTable(e.stdout, "ID", "HOST", "QUOTA", "RUNNING", "LABELS", "LAST SEEN")
	for _, p := range st.Processors {
		seen := s.Now.Sub(p.LastSeen).Round(time.Second).String() + " ago"
		if p.Gone {
			seen += " (gone)"
		}
		t.row(p.ID, dash(p.Host), mapString(p.Quota), p.Running, dash(mapString(p.Labels)), seen)
	}
	t.flush()
	for _, p := range st.Processors {
		for _, typ := range sortedKeys(p.Unavailable) {
			fmt.Fprintf(e.stdout, "  %s: %s unavailable: %s\n", p.ID, typ, p.Unavailable[typ])
		}
	}
	var limited []model.TypeLimit
	for _, tl := range st.Types {
		if tl.MaxRunning > 0 || tl.Rate > 0 {
			limited = append(limited, tl)
		}
	}
	if len(st.Triggers) > 0 {
		fmt.Fprintf(e.stdout, "\ntriggers (%d)\n", len(st.Triggers))
		printTriggers(e, st.Triggers)
	}
	if len(limited) > 0 {
		fmt.Fprintln(e.stdout, "\ntype limits")
		printTypeLimits(e, limited)
	}
	return nil
}

func mapString[V any](m map[string]V) string {
	parts := make([]string, 0, len(m))
	for _, k := range sortedKeys(m) {
		parts = append(parts, fmt.Sprintf("%s=%v", k, m[k]))
	}
	return strings.Join(parts, ",")
}
