package main

import (
	"context"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/dpe-engine/dpe/examples"
	"github.com/dpe-engine/dpe/internal/client"
	"github.com/dpe-engine/dpe/internal/config"
	"github.com/dpe-engine/dpe/internal/folderwatcher"
	"github.com/dpe-engine/dpe/internal/processor"
	"github.com/dpe-engine/dpe/internal/scheduler"
	"github.com/dpe-engine/dpe/internal/server"
	"github.com/dpe-engine/dpe/internal/supervisor"
	"github.com/dpe-engine/dpe/internal/tablewatcher"
	"github.com/dpe-engine/dpe/internal/trigger"
	"github.com/dpe-engine/dpe/internal/worker"
)

// stopMargin is added to the longest a role's own shutdown may take (its
// grace periods) to give its stop timeout: the supervisor leaves a role
// behind only when it overran what it promised.
const stopMargin = 15 * time.Second

// runRoles runs the roles of this process under the supervisor: started in
// order, each after the one before is ready; stopped in reverse order on
// SIGINT/SIGTERM (ctx) or on the first failure, which is returned.
func runRoles(ctx context.Context, log *slog.Logger, roles ...supervisor.Role) error {
	return supervisor.Run(ctx, supervisor.Config{Log: log}, roles...)
}

// serverRole is a server, ready once it listens and serves. Its stop
// waits out the drain delay and the grace for in-flight requests.
func serverRole(srv *server.Server, drain, grace time.Duration) supervisor.Role {
	if grace <= 0 {
		grace = 10 * time.Second // server.Config's default
	}
	return supervisor.Role{Name: "server", Run: srv.Run, Ready: srv.Ready(), StopTimeout: drain + grace + stopMargin}
}

// processorRole is a job processor. Its stop lets running jobs finish for
// the grace, then gives back what it still holds and flushes its reports.
func processorRole(proc *processor.Processor, grace time.Duration) supervisor.Role {
	if grace <= 0 {
		grace = processor.DefaultGrace // processor.Config's default
	}
	return supervisor.Role{Name: "processor", Run: proc.Run,
		StopTimeout: grace + processor.DefaultStopWait + processor.DefaultFlushTimeout + stopMargin}
}

// workerRole is a workflow worker; its stop releases the instances it
// drives.
func workerRole(wk *worker.Worker) supervisor.Role {
	return supervisor.Role{Name: "worker", Run: wk.Run}
}

// checkTables checks the tables and columns of table watchers, so unknown
// ones are refused at start, before any polling.
func checkTables(ctx context.Context, tw *tablewatcher.Watcher) error {
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return tw.Check(cctx)
}

// importExamples imports the embedded example templates (a no-op when
// they are there already), so the inbox watcher's ingest exists.
func importExamples(ctx context.Context, c *client.Client) error {
	names, err := fs.Glob(examples.Templates, "templates/*.yaml")
	if err != nil {
		return err
	}
	for _, n := range names {
		src, err := examples.Templates.ReadFile(n)
		if err != nil {
			return err
		}
		if _, err := c.ImportTemplate(ctx, src, "application/yaml"); err != nil {
			return fmt.Errorf("import example %s: %w", n, err)
		}
	}
	return nil
}

// upTriggers builds the triggers `dpe up` runs: those of the config file,
// plus an inbox watcher on DATA/inbox starting ingest-move (the dropped
// file is moved to loc:archive) unless the config has a folder watcher
// named inbox.
func upTriggers(c *client.Client, cfg *config.File, data string, log *slog.Logger) ([]supervisor.Role, error) {
	watchers := cfg.FolderWatchers
	hasInbox := false
	for _, w := range watchers {
		hasInbox = hasInbox || w.Name == "inbox"
	}
	if !hasInbox {
		inbox := filepath.Join(data, "inbox")
		if err := os.MkdirAll(inbox, 0o755); err != nil {
			return nil, fmt.Errorf("inbox: %w", err)
		}
		w := folderwatcher.Config{
			Name: "inbox", Path: inbox, Recursive: true, Poll: 2 * time.Second, StableFor: 2 * time.Second,
			Exclude: []string{".*", "*.part", "*.tmp"},
			On: map[string]folderwatcher.Action{"created": {Template: "ingest-move",
				Args: map[string]any{"path": "${{ event.path }}"}}},
		}
		if err := w.Validate(); err != nil {
			return nil, err
		}
		watchers = append(watchers, w)
	}
	mode := trigger.Mode{Mode: trigger.Concurrent}
	var roles []supervisor.Role
	fw, err := folderwatcher.New(folderwatcher.Options{Client: c, Watchers: watchers, Mode: mode, Log: log.With("role", "folderwatcher")})
	if err != nil {
		return nil, usagef("%v", err)
	}
	roles = append(roles, supervisor.Role{Name: "folderwatcher", Run: fw.Run})
	if len(cfg.Schedules) > 0 {
		s, err := scheduler.New(scheduler.Options{Client: c, Schedules: cfg.Schedules, Mode: mode, Log: log.With("role", "scheduler")})
		if err != nil {
			return nil, usagef("%v", err)
		}
		roles = append(roles, supervisor.Role{Name: "scheduler", Run: s.Run})
	}
	if len(cfg.TableWatchers) > 0 {
		tw, err := tablewatcher.New(tablewatcher.Options{Client: c, Watchers: cfg.TableWatchers, Mode: mode, Log: log.With("role", "tablewatcher")})
		if err != nil {
			return nil, usagef("%v", err)
		}
		roles = append(roles, supervisor.Role{Name: "tablewatcher", Run: func(ctx context.Context) error {
			defer tw.Close()
			if err := checkTables(ctx, tw); err != nil {
				return err
			}
			return tw.Run(ctx)
		}})
	}
	return roles, nil
}
