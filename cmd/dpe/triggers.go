package main

import (
	"context"
	"flag"
	"fmt"
	"slices"
	"time"

	"github.com/dpe-engine/dpe/internal/client"
	"github.com/dpe-engine/dpe/internal/config"
	"github.com/dpe-engine/dpe/internal/folderwatcher"
	"github.com/dpe-engine/dpe/internal/model"
	"github.com/dpe-engine/dpe/internal/scheduler"
	"github.com/dpe-engine/dpe/internal/supervisor"
	"github.com/dpe-engine/dpe/internal/tablewatcher"
	"github.com/dpe-engine/dpe/internal/trigger"
	"github.com/dpe-engine/dpe/internal/wire"
)

// triggerFlags are the flags of the trigger roles.
type triggerFlags struct {
	config string
	mode   string
	group  string
	ttl    time.Duration
	id     string
}

func (tf *triggerFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&tf.config, "config", "", "configuration file (its schedules, folder_watchers or table_watchers)")
	fs.StringVar(&tf.mode, "mode", trigger.Concurrent, "standby (one copy active per group) or concurrent (all copies active; events still start one instance)")
	fs.StringVar(&tf.group, "group", "", "standby group (default: each trigger's name)")
	fs.DurationVar(&tf.ttl, "lease-ttl", 10*time.Second, "standby lease: a standby takes over within this (at least 2s)")
	fs.StringVar(&tf.id, "id", "", "this copy's id (default host-pid-random)")
}

func (tf *triggerFlags) modeOf() trigger.Mode {
	return trigger.Mode{Mode: tf.mode, Group: tf.group, TTL: tf.ttl, Holder: tf.id}
}

// triggerSetup parses the flags of a trigger role and loads its config.
func triggerSetup(e *env, name string, args []string) (*globals, *triggerFlags, *config.File, error) {
	fs, g := newCommand(name, e)
	var tf triggerFlags
	tf.register(fs)
	if err := g.parseNone(args); err != nil {
		return nil, nil, nil, err
	}
	if tf.config == "" {
		return nil, nil, nil, usagef("--config FILE is required")
	}
	if err := tf.modeOf().Validate(name); err != nil {
		return nil, nil, nil, usagef("%v", err)
	}
	f, err := loadConfig(tf.config)
	if err != nil {
		return nil, nil, nil, err
	}
	return g, &tf, f, nil
}

func runScheduler(ctx context.Context, e *env, args []string) error {
	g, tf, f, err := triggerSetup(e, "scheduler", args)
	if err != nil {
		return err
	}
	if len(f.Schedules) == 0 {
		return usagef("%s: no schedules", tf.config)
	}
	c, err := g.client()
	if err != nil {
		return err
	}
	log := g.logger()
	s, err := scheduler.New(scheduler.Options{Client: c, Schedules: f.Schedules, Mode: tf.modeOf(), Log: log})
	if err != nil {
		return usagef("%v", err)
	}
	return runRoles(ctx, log, supervisor.Role{Name: "scheduler", Run: s.Run})
}

func runFolderWatcher(ctx context.Context, e *env, args []string) error {
	g, tf, f, err := triggerSetup(e, "folderwatcher", args)
	if err != nil {
		return err
	}
	if len(f.FolderWatchers) == 0 {
		return usagef("%s: no folder_watchers", tf.config)
	}
	c, err := g.client()
	if err != nil {
		return err
	}
	log := g.logger()
	w, err := folderwatcher.New(folderwatcher.Options{Client: c, Watchers: f.FolderWatchers, Mode: tf.modeOf(), Log: log})
	if err != nil {
		return usagef("%v", err)
	}
	return runRoles(ctx, log, supervisor.Role{Name: "folderwatcher", Run: w.Run})
}

func runTableWatcher(ctx context.Context, e *env, args []string) error {
	g, tf, f, err := triggerSetup(e, "tablewatcher", args)
	if err != nil {
		return err
	}
	if len(f.TableWatchers) == 0 {
		return usagef("%s: no table_watchers", tf.config)
	}
	c, err := g.client()
	if err != nil {
		return err
	}
	log := g.logger()
	w, err := tablewatcher.New(tablewatcher.Options{Client: c, Watchers: f.TableWatchers, Mode: tf.modeOf(), Log: log})
	if err != nil {
		return usagef("%v", err)
	}
	defer w.Close()
	if err := checkTables(ctx, w); err != nil {
		return usagef("%v", err)
	}
	return runRoles(ctx, log, supervisor.Role{Name: "tablewatcher", Run: w.Run})
}

// runSchedule is `dpe schedule fire NAME --config FILE`.
func runSchedule(ctx context.Context, e *env, args []string) error {
	if len(args) == 0 || args[0] != "fire" {
		return usagef("want: dpe schedule fire NAME --config FILE")
	}
	fs, g := newCommand("schedule fire", e)
	cfgPath := fs.String("config", "", "configuration file holding the schedule")
	pos, err := g.parse(args[1:])
	if err != nil {
		return err
	}
	if len(pos) != 1 || *cfgPath == "" {
		return usagef("want: dpe schedule fire NAME --config FILE")
	}
	f, err := loadConfig(*cfgPath)
	if err != nil {
		return err
	}
	for _, s := range f.Schedules {
		if s.Name != pos[0] {
			continue
		}
		c, err := g.client()
		if err != nil {
			return err
		}
		res, err := scheduler.FireNow(ctx, c, s, time.Now())
		if err != nil {
			return err
		}
		if g.json() {
			return printJSON(e.stdout, res)
		}
		for _, r := range res.Records {
			fmt.Fprintf(e.stdout, "%s %s: %s %s\n", r.Trigger, r.Key, r.Action, r.Instance)
		}
		return nil
	}
	return usagef("%s: no schedule named %q", *cfgPath, pos[0])
}

// runTrigger is `dpe trigger list` and `dpe trigger records NAME`. A
// NAME no trigger has is an error (exit 2, like any name that does not
// exist), not an empty table.
func runTrigger(ctx context.Context, e *env, args []string) error {
	if len(args) == 0 || !slices.Contains([]string{"list", "records", "pause", "resume"}, args[0]) {
		return usagef("want: dpe trigger list, dpe trigger records NAME [--limit N], dpe trigger pause NAME or dpe trigger resume NAME")
	}
	verb := args[0]
	fs, g := newCommand("trigger "+verb, e)
	limit := fs.Int("limit", 50, "records: how many, newest first")
	pos, err := g.parse(args[1:])
	if err != nil {
		return err
	}
	c, err := g.client()
	if err != nil {
		return err
	}
	if verb == "list" {
		items, err := c.ListTriggers(ctx)
		if err != nil {
			return err
		}
		list := wire.Items[model.Trigger]{Items: items}
		if g.json() {
			return printJSON(e.stdout, list)
		}
		printTriggers(e, list.Items)
		return nil
	}
	if len(pos) != 1 {
		return usagef("want exactly one trigger NAME")
	}
	if verb == "pause" || verb == "resume" {
		return pauseTrigger(ctx, e, g, c, pos[0], verb == "pause")
	}
	items, err := c.TriggerRecords(ctx, pos[0], *limit)
	if err != nil {
		return err
	}
	recs := wire.Items[model.TriggerRecord]{Items: items}
	if g.json() {
		return printJSON(e.stdout, recs)
	}
	t := newTable(e.stdout, "AT", "KEY", "ACTION", "INSTANCE", "REASON")
	for _, r := range recs.Items {
		t.row(r.At.Local().Format(time.DateTime), r.Key, r.Action, dash(r.Instance), dash(r.Reason))
	}
	t.flush()
	return nil
}

func printTriggers(e *env, list []model.Trigger) {
	t := newTable(e.stdout, "NAME", "KIND", "ACTIVE", "MIRRORED", "LAST EVENT", "ERROR", "STATUS")
	for _, tr := range list {
		last := "-"
		if tr.LastEventAt != nil {
			last = tr.LastEventAt.Local().Format(time.DateTime)
		}
		t.row(tr.Name, tr.Kind, activeCopyText(tr), tr.Mirrored, last, dash(tr.LastError), triggerStatus(tr))
	}
	t.flush()
}

// triggerStatus says whether a trigger is paused, and when a schedule
// fires next.
func triggerStatus(tr model.Trigger) string {
	switch {
	case tr.Paused && tr.PausedAt != nil:
		return "paused since " + tr.PausedAt.Local().Format(time.DateTime)
	case tr.Paused:
		return "paused"
	case len(tr.Next) > 0:
		return "next " + tr.Next[0].Local().Format(time.DateTime)
	}
	return "-"
}

// pauseTrigger is `dpe trigger pause|resume NAME`.
func pauseTrigger(ctx context.Context, e *env, g *globals, c *client.Client, name string, pause bool) error {
	var (
		tr  *model.Trigger
		err error
	)
	if pause {
		tr, err = c.PauseTrigger(ctx, name)
	} else {
		tr, err = c.ResumeTrigger(ctx, name)
	}
	if err != nil {
		return err
	}
	if g.json() {
		return printJSON(e.stdout, tr)
	}
	if tr.Paused {
		fmt.Fprintf(e.stdout, "trigger %s paused: its events start nothing until resumed\n", tr.Name)
	} else {
		fmt.Fprintf(e.stdout, "trigger %s running\n", tr.Name)
	}
	return nil
}

// activeCopyText says which copy of a trigger acts: the standby lease's
// holder, all of them in concurrent mode, "-" when no copy runs it.
func activeCopyText(tr model.Trigger) string {
	switch {
	case tr.Active != "":
		return tr.Active
	case tr.Mode == model.TriggerConcurrent:
		return "all (concurrent)"
	}
	return "-"
}
