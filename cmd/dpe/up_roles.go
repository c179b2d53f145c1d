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
	"github.com/dpe-engine/dpe/internal/scheduler"
	"github.com/dpe-engine/dpe/internal/tablewatcher"
	"github.com/dpe-engine/dpe/internal/trigger"
)

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
// plus an inbox watcher on DATA/inbox starting ingest unless the config has
// a folder watcher named inbox.
func upTriggers(c *client.Client, cfg *config.File, data string, log *slog.Logger) ([]func(context.Context) error, error) {
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
			On: map[string]folderwatcher.Action{"created": {Template: "ingest",
				Args: map[string]any{"path": "${{ event.path }}", "archive": filepath.Join(data, "archive")}}},
		}
		if err := w.Validate(); err != nil {
			return nil, err
		}
		watchers = append(watchers, w)
	}
	mode := trigger.Mode{Mode: trigger.Concurrent}
	var roles []func(context.Context) error
	fw, err := folderwatcher.New(folderwatcher.Options{Client: c, Watchers: watchers, Mode: mode, Log: log.With("role", "folderwatcher")})
	if err != nil {
		return nil, usagef("%v", err)
	}
	roles = append(roles, fw.Run)
	if len(cfg.Schedules) > 0 {
		s, err := scheduler.New(scheduler.Options{Client: c, Schedules: cfg.Schedules, Mode: mode, Log: log.With("role", "scheduler")})
		if err != nil {
			return nil, usagef("%v", err)
		}
		roles = append(roles, s.Run)
	}
	if len(cfg.TableWatchers) > 0 {
		tw, err := tablewatcher.New(tablewatcher.Options{Client: c, Watchers: cfg.TableWatchers, Mode: mode, Log: log.With("role", "tablewatcher")})
		if err != nil {
			return nil, usagef("%v", err)
		}
		roles = append(roles, func(ctx context.Context) error {
			defer tw.Close()
			cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			if err := tw.Check(cctx); err != nil {
				return err
			}
			return tw.Run(ctx)
		})
	}
	return roles, nil
}
