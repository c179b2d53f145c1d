package main

import (
	"context"

	"github.com/dpe-engine/dpe/internal/model"
	"github.com/dpe-engine/dpe/internal/wire"
)

func runType(ctx context.Context, e *env, args []string) error {
	if len(args) == 0 || (args[0] != "list" && args[0] != "set") {
		return usagef("want a subcommand: list, or set NAME [--max-running N] [--rate R] [--burst B]")
	}
	verb := args[0]
	fs, g := newCommand("type "+verb, e)
	maxRunning := fs.Int("max-running", 0, "at most N jobs of the type running in the whole cluster (0: no limit)")
	rate := fs.Float64("rate", 0, "at most R claims per second in the whole cluster (0: no limit)")
	burst := fs.Int("burst", 0, "claims allowed at once under --rate (default max(1, rate))")
	pos, err := g.parse(args[1:])
	if err != nil {
		return err
	}
	c, err := g.client()
	if err != nil {
		return err
	}
	if verb == "list" {
		if len(pos) > 0 {
			return usagef("unexpected argument %q", pos[0])
		}
		items, err := c.ListTypes(ctx)
		if err != nil {
			return err
		}
		list := wire.Items[model.TypeLimit]{Items: items}
		if g.json() {
			return printJSON(e.stdout, list)
		}
		t := newTable(e.stdout, "TYPE", "MAX RUNNING", "RATE/S", "BURST")
		for _, tl := range list.Items {
			t.row(tl.Type, tl.MaxRunning, tl.Rate, tl.Burst)
		}
		t.flush()
		return nil
	}
	if len(pos) != 1 {
		return usagef("want exactly one type NAME")
	}
	l := model.TypeLimit{Type: pos[0], MaxRunning: *maxRunning, Rate: *rate, Burst: *burst}
	out, err := c.PutType(ctx, l)
	if err != nil {
		return err
	}
	if g.json() {
		return printJSON(e.stdout, out)
	}
	t := newTable(e.stdout, "TYPE", "MAX RUNNING", "RATE/S", "BURST")
	t.row(out.Type, out.MaxRunning, out.Rate, out.Burst)
	t.flush()
	return nil
}
