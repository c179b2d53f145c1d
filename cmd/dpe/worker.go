package main

import (
	"context"
	"flag"
	"log/slog"
	"strings"
	"time"

	"github.com/dpe-engine/dpe/internal/client"
	"github.com/dpe-engine/dpe/internal/tracing"
	"github.com/dpe-engine/dpe/internal/wire"
	"github.com/dpe-engine/dpe/internal/worker"
)

// workerFlags are the flags of a workflow worker, shared by `dpe worker`
// and `dpe up`.
type workerFlags struct {
	mode      string
	group     string
	templates listFlag
	quota     *kvFlag
	max       int
	id        string
	leaseTTL  time.Duration
	groupTTL  time.Duration
	batch     int
	pipeline  int
	prefix    string // of the flag names ("worker-" in dpe up)
	tracing   *tracing.Provider
}

func (w *workerFlags) register(fs *flag.FlagSet, prefix string) {
	w.prefix = prefix
	w.quota = newKV(prefix + "quota")
	fs.StringVar(&w.mode, prefix+"mode", worker.Concurrent, "standby (one active per group) or concurrent (all active)")
	fs.StringVar(&w.group, prefix+"group", "default", "standby group: workers of one group share one lease")
	fs.Var(&w.templates, prefix+"templates", "serve only templates matching this glob (repeatable or comma-separated)")
	fs.Var(w.quota, prefix+"quota", "TEMPLATE=N: drive at most N instances of TEMPLATE at once (repeatable)")
	fs.IntVar(&w.max, prefix+"max-instances", 1000, "drive at most this many instances at once in all")
	fs.StringVar(&w.id, prefix+"id", "", "worker id (default host-pid-random)")
	fs.DurationVar(&w.leaseTTL, prefix+"lease-ttl", 30*time.Second, "lease on driven instances")
	fs.DurationVar(&w.groupTTL, prefix+"group-ttl", 10*time.Second, "standby lease: a standby takes over within this")
	fs.IntVar(&w.batch, prefix+"batch", 200, "claim at most this many instances at once and commit their decisions in one call (1-500)")
	fs.IntVar(&w.pipeline, prefix+"pipeline", 2, "batches being decided and committed at once")
}

func (w *workerFlags) build(c *client.Client, log *slog.Logger) (*worker.Worker, error) {
	quota, err := w.quota.ints()
	if err != nil {
		return nil, err
	}
	if w.batch < 1 || w.batch > wire.MaxClaim {
		return nil, usagef("--%sbatch %d: want 1 to %d", w.prefix, w.batch, wire.MaxClaim)
	}
	if w.pipeline < 1 {
		return nil, usagef("--%spipeline %d: want at least 1", w.prefix, w.pipeline)
	}
	var globs []string
	for _, t := range w.templates {
		for _, g := range strings.Split(t, ",") {
			if g = strings.TrimSpace(g); g != "" {
				globs = append(globs, g)
			}
		}
	}
	wk, err := worker.New(worker.Config{
		Client: c, ID: w.id, Mode: w.mode, Group: w.group, Templates: globs, Quota: quota,
		MaxInstances: w.max, LeaseTTL: w.leaseTTL, GroupTTL: w.groupTTL, Batch: w.batch, Pipeline: w.pipeline, Log: log, Tracing: w.tracing,
	})
	if err != nil {
		return nil, usagef("%v", err)
	}
	return wk, nil
}

func runWorker(ctx context.Context, e *env, args []string) error {
	fs, g := newCommand("worker", e)
	var wf workerFlags
	wf.register(fs, "")
	var tf traceFlag
	tf.register(fs)
	if err := g.parseNone(args); err != nil {
		return err
	}
	c, err := g.client()
	if err != nil {
		return err
	}
	log := g.logger()
	tp, flush, err := tf.start(ctx, e, "worker", log)
	if err != nil {
		return err
	}
	defer flush()
	wf.tracing = tp
	wk, err := wf.build(c, log)
	if err != nil {
		return err
	}
	return runRoles(ctx, log, workerRole(wk))
}
