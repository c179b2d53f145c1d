package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"time"

	"github.com/dpe-engine/dpe/internal/client"
	"github.com/dpe-engine/dpe/internal/config"
	"github.com/dpe-engine/dpe/internal/handlers"
	"github.com/dpe-engine/dpe/internal/jobtype"
	"github.com/dpe-engine/dpe/internal/location"
	"github.com/dpe-engine/dpe/internal/model"
	"github.com/dpe-engine/dpe/internal/processor"
	"github.com/dpe-engine/dpe/internal/tracing"
)

// processorFlags are the flags of a processor, shared by `dpe processor`
// and `dpe up`.
type processorFlags struct {
	quota   *kvFlag
	labels  *kvFlag
	allow   listFlag
	deny    []string // dirs no file job may touch, even under an allowed root (dpe up: its data dir)
	execs   listFlag
	execEnv listFlag
	// exec is the exec policy of the config file; the flags add to it.
	exec     config.Exec
	id       string
	leaseTTL time.Duration
	grace    time.Duration
	tracing  *tracing.Provider
	presence time.Duration
}

func (p *processorFlags) register(fs *flag.FlagSet) {
	p.quota, p.labels = newKV("quota"), newKV("label")
	fs.Var(p.quota, "quota", "TYPE=N: run at most N jobs of TYPE at once (repeatable)")
	fs.Var(p.labels, "label", "KEY=VALUE label that job selectors can require (repeatable)")
	fs.Var(&p.allow, "allow-path", "directory file handlers may touch (repeatable; none = any path)")
	fs.Var(&p.execs, "exec-allow", "absolute path of a program exec jobs may run (repeatable; none: exec is off)")
	fs.Var(&p.execEnv, "exec-env", "KEY=VALUE to set, or KEY to pass on, in exec jobs' environment (repeatable)")
	fs.StringVar(&p.id, "id", "", "processor id (default host-pid-random)")
	fs.DurationVar(&p.leaseTTL, "lease-ttl", 30*time.Second, "lease on claimed jobs; renewed every third of it")
	fs.DurationVar(&p.grace, "grace", 30*time.Second, "on SIGTERM, let running jobs finish this long before giving them back")
	fs.DurationVar(&p.presence, "presence-every", model.DefaultPresenceEvery, "announce this processor (version, quota, used slots) this often; silent for three intervals, it shows as gone")
}

// build makes the processor; defaults fill types missing from the quota.
func (p *processorFlags) build(c *client.Client, log *slog.Logger, defaults map[string]int, set *location.Set) (*processor.Processor, error) {
	quota, err := p.quota.ints()
	if err != nil {
		return nil, err
	}
	for t, n := range defaults {
		if _, ok := quota[t]; !ok {
			quota[t] = n
		}
	}
	if len(quota) == 0 {
		return nil, usagef("--quota: give at least one TYPE=N (types: %v)", sortedKeys(jobtype.Builtins()))
	}
	policy := p.execPolicy()
	if err := policy.Check(); err != nil {
		return nil, usagef("--exec-allow: %v", err)
	}
	if _, ok := quota[jobtype.Exec]; ok && !policy.Enabled() {
		return nil, usagef("--quota exec: exec is off: allow its programs with --exec-allow PATH or processor.exec.allow")
	}
	// The location roots are allowed roots too; loc:NAME/path resolves
	// through the set's health-checked fail-over.
	guard, err := locationGuard(p.allow, set, log)
	if err != nil {
		return nil, usagef("--allow-path: %v", err)
	}
	if err := guard.Deny(p.deny...); err != nil {
		return nil, usagef("%v", err)
	}
	if guard.Unconfined() {
		log.Warn("no --allow-path given: file handlers accept any path (development set-up)")
	}
	hcfg := handlers.Config{Guard: guard, Log: log, Exec: policy, Locations: set}
	hs := handlers.Builtins(hcfg)
	// Types this machine cannot run (no ffmpeg) get no quota: the
	// processor announces them as unavailable instead of claiming them.
	unavailable := handlers.Unavailable(hcfg)
	for _, t := range sortedKeys(unavailable) {
		if _, ok := quota[t]; ok {
			log.Warn("job type unavailable here; not claiming it", "type", t, "reason", unavailable[t])
			delete(quota, t)
		}
	}
	if len(quota) == 0 {
		return nil, usagef("--quota: every type given is unavailable here: %v", unavailable)
	}
	for t := range quota {
		if _, ok := hs[t]; !ok {
			return nil, usagef("--quota %s: no handler for this job type (built in: %v)", t, sortedKeys(hs))
		}
	}
	proc, err := processor.New(processor.Config{
		Client: c, ID: p.id, Quota: quota, Handlers: hs, Labels: p.labels.m, Unavailable: unavailable,
		LeaseTTL: p.leaseTTL, Grace: p.grace, PresenceEvery: p.presence, Version: version, Log: log, Tracing: p.tracing,
	})
	if err != nil {
		return nil, fmt.Errorf("processor: %w", err)
	}
	return proc, nil
}

// execPolicy joins the config file's exec section and the flags.
func (p *processorFlags) execPolicy() handlers.ExecPolicy {
	pol := handlers.ExecPolicy{
		Allow:  append(slices.Clone(p.exec.Allow), p.execs...),
		Env:    append(slices.Clone(p.exec.Env), p.execEnv...),
		JobEnv: slices.Clone(p.exec.JobEnv),
	}
	for i, a := range pol.Allow {
		if filepath.IsAbs(a) {
			pol.Allow[i] = filepath.Clean(a)
		}
	}
	return pol
}

func runProcessor(ctx context.Context, e *env, args []string) error {
	fs, g := newCommand("processor", e)
	var pf processorFlags
	pf.register(fs)
	cfgPath := fs.String("config", "", "configuration file: its locations and processor sections")
	var tf traceFlag
	tf.register(fs)
	if err := g.parseNone(args); err != nil {
		return err
	}
	c, err := g.client()
	if err != nil {
		return err
	}
	var set *location.Set
	var quota map[string]int
	if *cfgPath != "" {
		f, err := loadConfig(*cfgPath)
		if err != nil {
			return err
		}
		if set, err = newLocationSet(*cfgPath, f, location.Options{}); err != nil {
			return err
		}
		quota = f.Processor.Quota
		pf.exec = f.Processor.Exec
	}
	log := g.logger()
	tp, flush, err := tf.start(ctx, e, "processor", log)
	if err != nil {
		return err
	}
	defer flush()
	pf.tracing = tp
	proc, err := pf.build(c, log, quota, set)
	if err != nil {
		return err
	}
	return runRoles(ctx, log, processorRole(proc, pf.grace))
}
