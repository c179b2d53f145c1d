package main

import (
	"context"
	"flag"
	"strconv"

	"github.com/dpe-engine/dpe/internal/model"
	"github.com/dpe-engine/dpe/internal/wire"
)

func runType(ctx context.Context, e *env, args []string) error {
	if len(args) == 0 || (args[0] != "list" && args[0] != "set") {
		return usagef("want a subcommand: list, or set NAME [--max-running N] [--rate R] [--burst B] [--create]")
	}
	verb := args[0]
	fs, g := newCommand("type "+verb, e)
	maxRunning := fs.Int("max-running", 0, "set: at most N jobs of the type running in the whole cluster (0: unlimited)")
	rate := fs.Float64("rate", 0, "set: at most R claims per second in the whole cluster (0: unlimited)")
	burst := fs.Int("burst", 0, "set: claims allowed at once under --rate (default max(1, rate))")
	create := fs.Bool("create", false, "set: register the type if no processor registered it yet (else an unknown name is refused)")
	pos, err := g.parse(args[1:])
	if err != nil {
		return err
	}
	if verb == "list" {
		if len(pos) > 0 {
			return usagef("unexpected argument %q", pos[0])
		}
		c, err := g.client()
		if err != nil {
			return err
		}
		items, err := c.ListTypes(ctx)
		if err != nil {
			return err
		}
		if g.json() {
			return printJSON(e.stdout, wire.Items[model.TypeLimit]{Items: items})
		}
		printTypeLimits(e, items)
		return nil
	}
	if len(pos) != 1 {
		return usagef("want exactly one type NAME")
	}
	// Only the flags given change; the others keep their value.
	set := wire.TypeSet{Type: pos[0], Create: *create}
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "max-running":
			set.MaxRunning = maxRunning
		case "rate":
			set.Rate = rate
		case "burst":
			set.Burst = burst
		}
	})
	if set.MaxRunning == nil && set.Rate == nil && set.Burst == nil && !set.Create {
		return usagef("nothing to set: give --max-running, --rate or --burst")
	}
	c, err := g.client()
	if err != nil {
		return err
	}
	out, err := c.PutType(ctx, set)
	if err != nil {
		return err
	}
	if g.json() {
		return printJSON(e.stdout, out)
	}
	printTypeLimits(e, []model.TypeLimit{*out})
	return nil
}

// printTypeLimits prints limits as a table, "unlimited" where a limit is
// 0 (none).
func printTypeLimits(e *env, list []model.TypeLimit) {
	t := newTable(e.stdout, "TYPE", "MAX RUNNING", "RATE/S", "BURST")
	for _, tl := range list {
		maxRunning, rate, burst := "unlimited", "unlimited", "-"
		if tl.MaxRunning > 0 {
			maxRunning = strconv.Itoa(tl.MaxRunning)
		}
		if tl.Rate > 0 {
			rate = strconv.FormatFloat(tl.Rate, 'f', -1, 64)
			burst = strconv.Itoa(tl.Burst)
		}
		t.row(tl.Type, maxRunning, rate, burst)
	}
	t.flush()
}
