package main

import (
	"context"
	"time"

	"github.com/dpe-engine/dpe/internal/config"
	"github.com/dpe-engine/dpe/internal/server"
)

func runServer(ctx context.Context, e *env, args []string) error {
	fs, g := newCommand("server", e)
	db := fs.String("db", e.getenv("DPE_DB"), "core database DSN: postgres://... or sqlite:PATH (env DPE_DB)")
	listen := fs.String("listen", "127.0.0.1:8460", "address to listen on")
	id := fs.String("id", "", "server id in status and logs (default host-pid-random)")
	drain := fs.Duration("drain-delay", 0, "on shutdown, fail /readyz this long before closing the listener (set to the load balancer's check interval)")
	grace := fs.Duration("shutdown-grace", 10*time.Second, "on shutdown, wait this long for in-flight requests")
	retention := fs.Duration("retention", 7*24*time.Hour, "purge finished jobs and workflow instances this long after they end (0: keep forever)")
	auditRetention := fs.Duration("audit-retention", server.DefaultAuditRetention, "purge audit entries this long after the call they record")
	profiling := fs.Bool("pprof", false, "serve Go runtime profiles under /debug/pprof/ (admin token when auth is on)")
	cfgPath := fs.String("config", "", "configuration file: its alerts section (rules and receivers)")
	var lf listenFlags
	lf.register(fs)
	var tf traceFlag
	tf.register(fs)
	if err := g.parseNone(args); err != nil {
		return err
	}
	if *auditRetention <= 0 {
		return usagef("--audit-retention: want a positive duration such as 2160h, got %s", *auditRetention)
	}
	f := &config.File{}
	if *cfgPath != "" {
		var err error
		if f, err = loadConfig(*cfgPath); err != nil {
			return err
		}
	}
	log := g.logger()
	tp, flush, err := tf.start(ctx, e, "server", log)
	if err != nil {
		return err
	}
	defer flush()
	// --token (or --token-file, DPE_TOKEN) is a shared admin token; the
	// tokens of `dpe token` live in the core database.
	cfg := server.Config{DB: *db, Listen: *listen, Token: g.token, Log: log, ID: *id, DrainDelay: *drain, ShutdownGrace: *grace, Retention: *retention, AuditRetention: *auditRetention, Profiling: *profiling, Tracing: tp, Alerts: f.Alerts}
	if err := lf.apply(ctx, &cfg); err != nil {
		return err
	}
	srv, err := server.New(cfg)
	if err != nil {
		return usagef("%v", err)
	}
	return runRoles(ctx, log, serverRole(srv, *drain, *grace))
}
