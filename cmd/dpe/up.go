package main

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"time"

	"github.com/dpe-engine/dpe/internal/config"
	"github.com/dpe-engine/dpe/internal/location"
	"github.com/dpe-engine/dpe/internal/server"
	"github.com/dpe-engine/dpe/internal/supervisor"
)

// upQuota is the processor quota of `dpe up` for types not given by --quota.
var upQuota = map[string]int{
	"noop": 8, "util.sync": 1, "util.copy": 2, "util.move": 2, "util.delete": 4,
	"util.checksum": 2, "util.mkdir": 4, "exec": 2,
	"audio.loudness": 2, "audio.normalize": 1, "audio.convert": 2,
	"audio.waveform": 2, "media.probe": 4, "media.transcode": 1, "media.thumbnail": 2,
}

func runUp(ctx context.Context, e *env, args []string) error {
	fs, g := newCommand("up", e)
	data := fs.String("data", "./dpe-data", "data directory (core database, inbox)")
	listen := fs.String("listen", "127.0.0.1:8460", "address to listen on")
	cfgPath := fs.String("config", "", "configuration file: schedules, folder_watchers, table_watchers, processor quotas")
	retention := fs.Duration("retention", 7*24*time.Hour, "purge finished jobs and instances this long after they end (0: keep forever)")
	var pf processorFlags
	pf.register(fs)
	var wf workerFlags
	wf.register(fs, "worker-")
	if err := g.parseNone(args); err != nil {
		return err
	}
	log := g.logger()
	if err := os.MkdirAll(*data, 0o755); err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	cfg := &config.File{}
	if *cfgPath != "" {
		var err error
		if cfg, err = loadConfig(*cfgPath); err != nil {
			return err
		}
	}
	absData, err := filepath.Abs(*data)
	if err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	if len(pf.allow) == 0 {
		// DESIGN §3: dpe up allows its working directory and data directory.
		wd, err := os.Getwd()
		if err != nil {
			return fmt.Errorf("working directory: %w", err)
		}
		pf.allow = listFlag{wd, absData}
	}
	dsn := "sqlite:" + filepath.Join(absData, "dpe.db")
	srv, err := server.New(server.Config{DB: dsn, Listen: *listen, Token: g.token, Log: log.With("role", "server"), Retention: *retention})
	if err != nil {
		return usagef("%v", err)
	}
	g.server = srv.URL()
	c, err := g.client()
	if err != nil {
		return err
	}
	quota := maps.Clone(upQuota)
	maps.Copy(quota, cfg.Processor.Quota)
	set, err := newLocationSet(*cfgPath, cfg, location.Options{})
	if err != nil {
		return err
	}
	proc, err := pf.build(c, log.With("role", "processor"), quota, set)
	if err != nil {
		return err
	}
	wk, err := wf.build(c, log.With("role", "worker"))
	if err != nil {
		return err
	}
	triggers, err := upTriggers(c, cfg, absData, log)
	if err != nil {
		return err
	}

	// The server first; the example templates once it serves (the inbox
	// watcher starts ingest); then the roles that work through the server.
	// On stop the order reverses: the triggers stop making instances, the
	// worker gives its instances back, the processor finishes or gives
	// back its jobs, and only then the server closes.
	examples := supervisor.Step("examples", func(ctx context.Context) error {
		if err := importExamples(ctx, c); err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "dpe is up: %s  (core DB %s)\n", srv.URL(), dsn)
		fmt.Fprintf(e.stdout, "inbox: files dropped into %s start the ingest workflow (archive %s)\n",
			filepath.Join(absData, "inbox"), filepath.Join(absData, "archive"))
		fmt.Fprintf(e.stdout, "try: go run ./cmd/dpe job submit util.checksum --param path=README.md --wait --server %s\n", srv.URL())
		return nil
	})
	roles := []supervisor.Role{serverRole(srv, 0, 0), examples, processorRole(proc, pf.grace), workerRole(wk)}
	return runRoles(ctx, log, append(roles, triggers...)...)
}
