// Package server runs the dpe server role: the HTTP API on top of the core
// database, plus the background duties every server shares (lease rescue,
// wake-ups, idempotency clean-up). Servers keep nothing in memory that
// matters, so any number may run on one database.
package server

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/dpe-engine/dpe/internal/alert"
	"github.com/dpe-engine/dpe/internal/api"
	"github.com/dpe-engine/dpe/internal/clock"
	"github.com/dpe-engine/dpe/internal/coredb"
	"github.com/dpe-engine/dpe/internal/holder"
	"github.com/dpe-engine/dpe/internal/metrics"
	"github.com/dpe-engine/dpe/internal/model"
	"github.com/dpe-engine/dpe/internal/server/jobs"
	"github.com/dpe-engine/dpe/internal/server/triggers"
	"github.com/dpe-engine/dpe/internal/server/wake"
	"github.com/dpe-engine/dpe/internal/server/workflows"
	"github.com/dpe-engine/dpe/internal/store"
	"github.com/dpe-engine/dpe/internal/tracing"
	"github.com/dpe-engine/dpe/internal/wire"
	"github.com/dpe-engine/dpe/web"
)

// Version is the server version reported by /v1/status.
const Version = "0.1.0"

// IdempotencyTTL is how long answers to Idempotency-Keys are kept.
const IdempotencyTTL = 24 * time.Hour

// Config configures a Server.
type Config struct {
	DB     string // DSN of the core database
	Listen string // host:port; port 0 picks one (see Addr)
	Token  string // bearer token required on /v1 when set
	Log    *slog.Logger
	Clock  clock.Clock
	ID     string // default holder.New("server")
	// DrainDelay is how long /readyz fails before the listener closes, so a
	// load balancer stops sending new requests first. Default 0.
	DrainDelay time.Duration
	// ShutdownGrace bounds the wait for in-flight requests. Default 10s.
	ShutdownGrace time.Duration
	// Tick bounds long-poll re-checks; RescueEvery paces lease rescue.
	Tick, RescueEvery time.Duration
	// MetricsCache is how long one reading of the store's state answers
	// /metrics scrapes (default 5s; tests shorten it).
	MetricsCache time.Duration
	// Retention: finished jobs and instances are purged this long after
	// they end (0: kept forever). CleanEvery paces the purge (default 10m).
	Retention, CleanEvery time.Duration
	// AuditRetention: audit entries are purged this long after the call
	// they record (0 or less: DefaultAuditRetention). The trail is always
	// bounded, whatever Retention says.
	AuditRetention time.Duration
	// Profiling serves Go runtime profiles under /debug/pprof/.
	Profiling bool

	// TLSCert and TLSKey, when set, make the server speak https only
	// (the files are read again when they change). ClientCA, with them,
	// is a PEM file of the CAs signing client certificates: processor and
	// trigger tokens are then accepted only over a connection that
	// presented a certificate it verifies (mutual TLS).
	TLSCert, TLSKey, ClientCA string
	// ReloadTLS: each value received re-reads the certificate and key at
	// once (dpe server and dpe up send one on SIGHUP); a pair that does not
	// load is logged and the one in service stays.
	ReloadTLS <-chan struct{}
	// Hosts are the names the server answers to besides IP literals and
	// localhost. A server listening on loopback refuses mutating requests
	// naming any other Host (the DNS-rebinding guard of a local server).
	Hosts []string
	// ReadHeaderTimeout bounds reading a request's headers (default 10s);
	// ReadTimeout the whole request, body included (default 60s: a 32 MiB
	// batch at 5 Mbit/s); IdleTimeout a keep-alive connection waiting for
	// its next request (default 2m).
	ReadHeaderTimeout, ReadTimeout, IdleTimeout time.Duration
	// Tracing makes a span of every request, joined to the caller's trace
	// when the request carries a traceparent (nil: none).
	Tracing *tracing.Provider
	// MaxConnsPerClient caps the open connections of one client address
	// (default DefaultMaxConnsPerClient); the next ones are closed at once.
	MaxConnsPerClient int
	// Limits are the API's per-token limits: changes per second and
	// claims waiting at once (zero: none).
	Limits api.Limits
	// Alerts are the alert rules and receivers (the config file's alerts
	// section); one server at a time evaluates them (package alert).
	Alerts alert.Config
	// AlertHTTP, when set, is the client of webhook calls (tests).
	AlertHTTP *http.Client
}

// Server is one dpe server.
type Server struct {
	cfg      Config
	engine   string
	store    store.Store
	jobs     *jobs.Service
	wake     *wake.Hub
	api      *api.API
	ln       net.Listener
	tls      *tls.Config
	certs    *certReloader // with tls
	started  time.Time
	draining atomic.Bool
	ready    chan struct{}
}

// New validates the configuration and binds the listener, so Addr is
// known before Run. The database is opened by Run.
func New(cfg Config) (*Server, error) {
	engine, err := coredb.Engine(cfg.DB)
	if err != nil {
		return nil, err
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.Real{}
	}
	if cfg.AuditRetention <= 0 {
		cfg.AuditRetention = DefaultAuditRetention
	}
	if cfg.CleanEvery <= 0 {
		cfg.CleanEvery = 10 * time.Minute
	}
	if cfg.ShutdownGrace <= 0 {
		cfg.ShutdownGrace = 10 * time.Second
	}
	if cfg.ID == "" {
		cfg.ID = holder.New("server")
	}
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:8460"
	}
	cfg.ReadHeaderTimeout = cmp.Or(cfg.ReadHeaderTimeout, 10*time.Second)
	cfg.ReadTimeout = cmp.Or(cfg.ReadTimeout, 60*time.Second)
	cfg.IdleTimeout = cmp.Or(cfg.IdleTimeout, 2*time.Minute)
	cfg.MaxConnsPerClient = cmp.Or(cfg.MaxConnsPerClient, DefaultMaxConnsPerClient)
	var (
		tc    *tls.Config
		certs *certReloader
	)
	if cfg.TLSCert != "" || cfg.TLSKey != "" {
		if tc, certs, err = tlsConfig(cfg.TLSCert, cfg.TLSKey, cfg.ClientCA); err != nil {
			return nil, err
		}
	} else if cfg.ClientCA != "" {
		return nil, errors.New("client CA given without --tls-cert and --tls-key")
	}
	if err := cfg.Alerts.Validate(nil); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", cfg.Listen, err)
	}
	return &Server{cfg: cfg, engine: engine, ln: newCapListener(ln, cfg.MaxConnsPerClient), tls: tc, certs: certs, started: cfg.Clock.Now(), ready: make(chan struct{})}, nil
}

// reloadTLS re-reads the certificate on each ReloadTLS until ctx ends.
func (s *Server) reloadTLS(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.cfg.ReloadTLS:
			if err := s.certs.reload(); err != nil {
				s.cfg.Log.Error("tls certificate not reloaded; the one in service stays", "err", err)
				continue
			}
			s.cfg.Log.Info("tls certificate reloaded", "cert", s.cfg.TLSCert)
		}
	}
}

// Addr is the address the server listens on.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// URL is the base URL of the server (https with a certificate).
func (s *Server) URL() string {
	if s.tls != nil {
		return "https://" + s.Addr()
	}
	return "http://" + s.Addr()
}

// loopback reports whether the server listens on a loopback address only.
func (s *Server) loopback() bool {
	ap, ok := s.ln.Addr().(*net.TCPAddr)
	return ok && ap.IP.IsLoopback()
}

// Ready is closed once the database is open and the API serves.
func (s *Server) Ready() <-chan struct{} { return s.ready }

// Run opens the core database (retrying while it is unreachable), serves
// until ctx ends, then shuts down gracefully: /readyz fails first, waiting
// long-polls return, in-flight requests finish within the grace period.
func (s *Server) Run(ctx context.Context) error {
	log := s.cfg.Log
	st, err := s.openStore(ctx)
	if err != nil {
		s.ln.Close()
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	s.store = st
	defer st.Close()
	if s.certs != nil && s.cfg.ReloadTLS != nil {
		go s.reloadTLS(ctx)
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	s.wake = wake.NewHub()
	s.jobs = jobs.New(jobs.Config{Store: st, Clock: s.cfg.Clock, Log: log, Tick: s.cfg.Tick, RescueEvery: s.cfg.RescueEvery, Wake: s.wake, Metrics: metrics.NewJobs(reg)})
	flows := workflows.New(workflows.Config{Store: st, Clock: s.cfg.Clock, Log: log, Wake: s.wake, Tick: s.cfg.Tick, KnownJobType: s.jobs.KnownType, Metrics: metrics.NewWorkflows(reg)})
	metrics.RegisterReady(reg, s.checkReady)
	reg.MustRegister(metrics.NewState(metrics.StateConfig{Source: st, Now: s.cfg.Clock.Now, Log: log, CacheFor: s.cfg.MetricsCache}))
	var trig *triggers.Service
	if ts, ok := st.(store.TriggerStore); ok {
		trig = triggers.New(triggers.Config{Store: ts, Flows: flows, Clock: s.cfg.Clock, Log: log, Metrics: metrics.NewTriggers(reg)})
	}
	var alerts *alert.Evaluator
	if as, ok := st.(alert.Store); ok {
		alerts = alert.New(alert.Options{
			Store: as, Config: s.cfg.Alerts, Leases: storeLeases{store: st, now: s.cfg.Clock.Now}, Holder: s.cfg.ID,
			Clock: s.cfg.Clock, Log: log.With("part", "alerts"), Metrics: metrics.NewAlerts(reg), HTTP: s.cfg.AlertHTTP,
			SeenWithin: jobs.ProcessorStale,
		})
	}
	s.api = api.New(api.Config{
		Jobs: s.jobs, Flows: flows, Triggers: trig, Alerts: alertService(alerts), Store: st, Clock: s.cfg.Clock, Log: log, Token: s.cfg.Token,
		Info: s.info, Ready: s.checkReady, Registry: reg, Profiling: s.cfg.Profiling,
		CheckHost: s.loopback(), Hosts: s.cfg.Hosts, ClientCertRoles: s.clientCertRoles(), Limits: s.cfg.Limits,
	})
	monitor, err := web.New(web.Config{API: s.api, Check: s.monitorLogin, Log: log.With("part", "monitor")})
	if err != nil {
		s.ln.Close()
		return err
	}
	srv := &http.Server{
		Handler:           s.cfg.Tracing.Handler(monitor), // the web monitor at /, the API behind it
		ReadHeaderTimeout: s.cfg.ReadHeaderTimeout,
		ReadTimeout:       s.cfg.ReadTimeout,
		IdleTimeout:       s.cfg.IdleTimeout,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	ln := s.ln
	if s.tls != nil {
		ln = tls.NewListener(ln, s.tls)
	}

	bg, stopBG := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	wg.Add(5)
	go func() {
		defer wg.Done()
		_ = s.jobs.Run(bg)
	}()
	go func() {
		// Stopped after the listener (the deferred stopBG runs once
		// Shutdown has waited for in-flight requests): the entries of
		// the last answers are written before the store closes.
		defer wg.Done()
		_ = s.api.RunAudit(bg)
	}()
	go func() {
		defer wg.Done()
		s.purgeLoop(bg)
	}()
	go func() {
		defer wg.Done()
		s.cleaner(bg)
	}()
	go func() {
		defer wg.Done()
		if alerts != nil {
			_ = alerts.Run(bg)
		}
	}()
	defer func() {
		stopBG()
		wg.Wait()
	}()

	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	close(s.ready)
	log.Info("server ready", "id", s.cfg.ID, "url", s.URL(), "db", s.engine)

	select {
	case err := <-serveErr:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	log.Info("server draining", "delay", s.cfg.DrainDelay, "grace", s.cfg.ShutdownGrace)
	s.draining.Store(true)
	if s.cfg.DrainDelay > 0 {
		time.Sleep(s.cfg.DrainDelay)
	}
	s.wake.Close()
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.ShutdownGrace)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		log.Warn("shutdown grace expired; closing open connections", "err", err)
		_ = srv.Close()
	}
	if err := <-serveErr; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	log.Info("server stopped")
	return nil
}

// openStore opens the core database, retrying with capped back-off while it
// is unavailable, so servers can start before their database.
func (s *Server) openStore(ctx context.Context) (store.Store, error) {
	delay := 250 * time.Millisecond
	for {
		st, err := coredb.Open(ctx, s.cfg.DB, s.cfg.Log)
		if err == nil {
			return st, nil
		}
		if !errors.Is(err, model.ErrUnavailable) || ctx.Err() != nil {
			return nil, fmt.Errorf("open core database: %w", err)
		}
		s.cfg.Log.Warn("core database unavailable; retrying", "in", delay, "err", err)
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(delay):
		}
		delay = min(delay*2, 5*time.Second)
	}
}

func (s *Server) checkReady(ctx context.Context) error {
	if s.draining.Load() {
		return errors.New("server is shutting down")
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if err := s.store.Ping(ctx); err != nil {
		return fmt.Errorf("core database: %w", err)
	}
	return nil
}

// clientCertRoles are the roles that need a verified client certificate:
// processor and trigger, when a client CA is configured.
func (s *Server) clientCertRoles() []model.Role {
	if s.tls == nil || s.tls.ClientCAs == nil {
		return nil
	}
	return []model.Role{model.RoleProcessor, model.RoleTrigger}
}

func (s *Server) info() wire.ServerInfo {
	return wire.ServerInfo{ID: s.cfg.ID, Version: Version, DB: s.engine, Started: s.started, Now: s.cfg.Clock.Now()}
}

// purgeLoop forgets old idempotency answers.
func (s *Server) purgeLoop(ctx context.Context) {
	t := time.NewTicker(10 * time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if _, err := s.store.IdempotencyPurge(ctx, s.cfg.Clock.Now().Add(-IdempotencyTTL)); err != nil && ctx.Err() == nil {
			s.cfg.Log.Warn("idempotency purge failed", "err", err)
		}
	}
}

// monitorLogin checks a token for the web monitor's login with the API's
// own authentication (the shared --token and the tokens of the core DB).
func (s *Server) monitorLogin(ctx context.Context, secret string) (string, error) {
	role, err := s.api.TokenRole(ctx, secret)
	switch {
	case errors.Is(err, api.ErrAuthOff):
		return "", web.ErrNoLogin
	case errors.Is(err, api.ErrBadToken):
		return "", fmt.Errorf("%w", web.ErrBadToken)
	case err != nil:
		return "", err
	}
	return string(role), nil
}

// alertService is the evaluator as the API's alert service (nil when the
// store keeps no alerts: an interface holding a nil pointer is not nil).
func alertService(e *alert.Evaluator) api.Alerts {
	if e == nil {
		return nil
	}
	return e
}
