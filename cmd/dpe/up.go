package main

import (
	"context"
	"fmt"
	"maps"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/dpe-engine/dpe/internal/config"
	"github.com/dpe-engine/dpe/internal/location"
	"github.com/dpe-engine/dpe/internal/server"
	"github.com/dpe-engine/dpe/internal/supervisor"
	"github.com/dpe-engine/dpe/internal/tracing"
)

// upQuota is the processor quota of `dpe up` for types not given by --quota.
var upQuota = map[string]int{
	"noop": 8, "util.sync": 1, "util.copy": 2, "util.move": 2, "util.delete": 4,
	"util.checksum": 2, "util.mkdir": 4, "util.list": 2,
	"audio.loudness": 2, "audio.normalize": 1, "audio.convert": 2,
	"audio.waveform": 2, "media.probe": 4, "media.transcode": 1, "media.thumbnail": 2,
}

// upExecQuota is the exec quota of `dpe up` when programs are allowed
// (--exec-allow or processor.exec.allow); exec is off otherwise.
const upExecQuota = 2

func runUp(ctx context.Context, e *env, args []string) error {
	fs, g := newCommand("up", e)
	data := fs.String("data", "./dpe-data", "data directory (core database, inbox)")
	listen := fs.String("listen", "127.0.0.1:8460", "address to listen on")
	cfgPath := fs.String("config", "", "configuration file: schedules, folder_watchers, table_watchers, processor quotas, alerts")
	retention := fs.Duration("retention", 7*24*time.Hour, "purge finished jobs and instances this long after they end (0: keep forever)")
	auditRetention := fs.Duration("audit-retention", server.DefaultAuditRetention, "purge audit entries this long after the call they record")
	var pf processorFlags
	pf.register(fs)
	var lf listenFlags
	lf.register(fs)
	var wf workerFlags
	wf.register(fs, "worker-")
	var tf traceFlag
	tf.register(fs)
	if err := g.parseNone(args); err != nil {
		return err
	}
	if *auditRetention <= 0 {
		return usagef("--audit-retention: want a positive duration such as 2160h, got %s", *auditRetention)
	}
	log := g.logger()
	var serverTracing *tracing.Provider
	// A provider per role: each is a service of its own in the traces.
	for _, r := range []struct {
		name string
		to   **tracing.Provider
	}{{"server", &serverTracing}, {"processor", &pf.tracing}, {"worker", &wf.tracing}} {
		tp, flush, err := tf.start(ctx, e, r.name, log)
		if err != nil {
			return err
		}
		defer flush()
		*r.to = tp
	}
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
	// The data directory holds the core database: file jobs may use only
	// its folders for files (issue 13, finding 8), the rest of it is
	// denied even where the working directory holds it.
	dataFolders := []string{filepath.Join(absData, "files"), filepath.Join(absData, "inbox"), filepath.Join(absData, "archive")}
	for _, d := range dataFolders {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("data directory: %w", err)
		}
	}
	pf.deny = []string{absData}
	if len(pf.allow) == 0 {
		// DESIGN §3: dpe up allows its working directory and the file
		// folders of its data directory.
		wd, err := os.Getwd()
		if err != nil {
			return fmt.Errorf("working directory: %w", err)
		}
		pf.allow = append(listFlag{wd}, dataFolders...)
	}
	archive, err := upLocations(cfg, absData)
	if err != nil {
		return err
	}
	dsn := "sqlite:" + filepath.Join(absData, "dpe.db")
	// The admin token of this data directory: made on first start, kept
	// in DATA/admin.token for the local CLI, shown once.
	adminToken, fresh, err := upToken(ctx, dsn, absData, time.Now())
	if err != nil {
		return fmt.Errorf("admin token: %w", err)
	}
	scfg := server.Config{DB: dsn, Listen: *listen, Token: g.token, Log: log.With("role", "server"), Retention: *retention, AuditRetention: *auditRetention, Tracing: serverTracing, Alerts: cfg.Alerts}
	if err := lf.apply(ctx, &scfg); err != nil {
		return err
	}
	srv, err := server.New(scfg)
	if err != nil {
		return usagef("%v", err)
	}
	tokenPath := filepath.Join(absData, localTokenName)
	if err := noteLocalToken(localAddr(srv.Addr()), tokenPath); err != nil {
		log.Warn("cannot note the admin token for the local CLI; give it with --token-file", "file", tokenPath, "err", err)
	}
	g.server = srv.URL()
	if g.token == "" {
		g.token = adminToken // the roles in this process
	}
	if lf.tlsCert != "" && g.ca == "" {
		g.ca = lf.tlsCert // a self-signed certificate is its own CA
	}
	c, err := g.client()
	if err != nil {
		return err
	}
	quota := maps.Clone(upQuota)
	pf.exec = cfg.Processor.Exec
	if pf.execPolicy().Enabled() {
		quota["exec"] = upExecQuota
	}
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
		if fresh {
			fmt.Fprintf(e.stdout, "admin token (shown once; kept in %s for the CLI on this machine): %s\n", tokenPath, adminToken)
		} else {
			fmt.Fprintf(e.stdout, "admin token: in %s (the CLI on this machine finds it)\n", tokenPath)
		}
		fmt.Fprintf(e.stdout, "location archive: %s; files dropped into %s are moved there (ingest-move workflow)\n",
			archive, filepath.Join(absData, "inbox"))
		fmt.Fprintf(e.stdout, "try: go run ./cmd/dpe job submit util.checksum --param path=README.md --wait --server %s\n", srv.URL())
		return nil
	})
	roles := []supervisor.Role{serverRole(srv, 0, 0), examples, processorRole(proc, pf.grace), workerRole(wk)}
	return runRoles(ctx, log, append(roles, triggers...)...)
}

// upArchive is the location `dpe up` defines for its examples (ingest
// archives to loc:archive) unless the config file defines it.
const upArchive = "archive"

// upLocations adds the locations the shipped examples use to cfg: archive
// under the data directory, created now, unless the config file has its
// own. It returns the archive's master root.
func upLocations(cfg *config.File, data string) (string, error) {
	if roots, ok := cfg.Locations[upArchive]; ok && len(roots) > 0 {
		return roots[0], nil
	}
	root := filepath.Join(data, upArchive)
	if err := os.MkdirAll(root, 0o755); err != nil {
		return "", fmt.Errorf("location %s: %w", upArchive, err)
	}
	if cfg.Locations == nil {
		cfg.Locations = map[string][]string{}
	}
	cfg.Locations[upArchive] = []string{root}
	return root, nil
}

// localAddr is the address the local CLI reaches a server listening on
// addr by: a wildcard listen address is reached on 127.0.0.1.
func localAddr(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}
