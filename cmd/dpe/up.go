package main

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"time"

	"github.com/dpe-engine/dpe/internal/config"
	"github.com/dpe-engine/dpe/internal/location"
	"github.com/dpe-engine/dpe/internal/server"
)

// upQuota is the processor quota of `dpe up` for types not given by --quota.
var upQuota = map[string]int{
	"noop": 8, "util.sync": 1, "util.copy": 2, "util.move": 2, "util.delete": 4,
	"util.checksum": 2, "util.mkdir": 4, "exec": 2,
}

func runUp(ctx context.Context, e *env, args []string) error {
	fs := newFlags("up", e)
	var g globals
	g.register(fs, e)
	data := fs.String("data", "./dpe-data", "data directory (core database, inbox)")
	listen := fs.String("listen", "127.0.0.1:8460", "address to listen on")
	cfgPath := fs.String("config", "", "configuration file: schedules, folder_watchers, table_watchers, processor quotas")
	retention := fs.Duration("retention", 7*24*time.Hour, "purge finished jobs and instances this long after they end (0: keep forever)")
	var pf processorFlags
	pf.register(fs)
	var wf workerFlags
	wf.register(fs, "worker-")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("unexpected argument %q", pos[0])
	}
	if err := g.check(); err != nil {
		return err
	}
	log := g.logger(e)
	if err := os.MkdirAll(*data, 0o755); err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	cfg := &config.File{}
	if *cfgPath != "" {
		if cfg, err = config.Load(*cfgPath); err != nil {
			return usagef("%v", err)
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
	c, err := g.client(e)
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
	roles, err := upTriggers(c, cfg, absData, log)
	if err != nil {
		return err
	}

	// The processor stops first, draining through the server; then the
	// server stops. A server that fails on its own stops everything.
	srvCtx, stopSrv := context.WithCancel(context.WithoutCancel(ctx))
	defer stopSrv()
	srvDone := make(chan error, 1)
	go func() { srvDone <- srv.Run(srvCtx) }()
	select {
	case <-srv.Ready():
	case err := <-srvDone:
		return err
	case <-ctx.Done():
		stopSrv()
		return <-srvDone
	}
	if err := importExamples(ctx, c); err != nil {
		stopSrv()
		return errors.Join(err, <-srvDone)
	}
	fmt.Fprintf(e.stdout, "dpe is up: %s  (core DB %s)\n", srv.URL(), dsn)
	fmt.Fprintf(e.stdout, "inbox: files dropped into %s start the ingest workflow (archive %s)\n",
		filepath.Join(absData, "inbox"), filepath.Join(absData, "archive"))
	fmt.Fprintf(e.stdout, "try: go run ./cmd/dpe job submit util.checksum --param path=README.md --wait --server %s\n", srv.URL())

	// The processor and the worker stop first (they drain through the
	// server), then the server.
	rolesCtx, stopRoles := context.WithCancel(ctx)
	defer stopRoles()
	roles = append(roles, proc.Run, wk.Run)
	roleDone := make(chan error, len(roles))
	for _, run := range roles {
		go func() { roleDone <- run(rolesCtx) }()
	}
	var errs []error
	running := len(roles)
	select {
	case err := <-srvDone:
		errs = append(errs, err)
		stopRoles()
		for ; running > 0; running-- {
			errs = append(errs, <-roleDone)
		}
		return errors.Join(errs...)
	case err := <-roleDone:
		errs = append(errs, err)
		running--
	}
	stopRoles()
	for ; running > 0; running-- {
		errs = append(errs, <-roleDone)
	}
	stopSrv()
	errs = append(errs, <-srvDone)
	return errors.Join(errs...)
}
