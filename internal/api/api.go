// Package api serves dpe's HTTP API under /v1 (JSON; errors as
// application/problem+json naming the field at fault), plus /healthz,
// /readyz and /metrics. Handlers only translate HTTP to the services and
// back; the services own the rules.
package api

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/http"
	"net/http/pprof"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/dpe-engine/dpe/internal/clock"
	"github.com/dpe-engine/dpe/internal/model"
	"github.com/dpe-engine/dpe/internal/server/jobs"
	"github.com/dpe-engine/dpe/internal/server/triggers"
	"github.com/dpe-engine/dpe/internal/server/workflows"
	"github.com/dpe-engine/dpe/internal/store"
	"github.com/dpe-engine/dpe/internal/wire"
)

// Body size limits (the contract's, see package wire).
const (
	MaxBody      = wire.MaxBody
	MaxBatchBody = wire.MaxBatchBody
)

// Config configures the API.
type Config struct {
	Jobs  *jobs.Service
	Flows *workflows.Service // nil: no workflow routes
	// Triggers serves schedules and watchers (nil: no trigger routes).
	Triggers *triggers.Service
	// Alerts serves the alerts (nil: no alert routes).
	Alerts Alerts
	Store  store.Store // idempotency records and readiness
	Clock  clock.Clock
	Log    *slog.Logger
	// Token, when set, is a shared admin token ("Authorization: Bearer
	// TOKEN"), kept for compatibility with the single-token set-up. With
	// it, or once the store holds a token (store.TokenStore), every route
	// but /healthz and /readyz needs a token of a role routeRoles allows.
	Token string
	// CheckHost refuses mutating requests whose Host is not an IP
	// literal, a localhost name or one of Hosts (421): the DNS-rebinding
	// guard of a server that listens on loopback only.
	CheckHost bool
	// Hosts are extra names the server answers to when CheckHost is on.
	Hosts []string
	// ClientCertRoles need a verified TLS client certificate on the
	// connection besides their token (mutual TLS for remote roles).
	ClientCertRoles []model.Role
	// Info describes this server for /v1/status.
	Info func() wire.ServerInfo
	// Ready reports whether the server should receive traffic (/readyz).
	Ready func(ctx context.Context) error
	// Registry receives the API's metrics; nil creates a private one.
	Registry *prometheus.Registry
	// Profiling serves the Go runtime profiles (net/http/pprof) under
	// /debug/pprof/, behind the token like /v1.
	Profiling bool
	// Limits are the per-caller limits (zero: none).
	Limits Limits
}

// API is the HTTP handler.
type API struct {
	jobs     *jobs.Service
	flows    *workflows.Service
	triggers *triggers.Service
	alerts   Alerts
	store    store.Store
	clock    clock.Clock
	log      *slog.Logger
	authn    *authenticator
	limits   *limiter
	audit    *auditor // nil: the store keeps no audit trail
	info     func() wire.ServerInfo
	ready    func(ctx context.Context) error
	mux      *http.ServeMux

	checkHost  bool
	certRoles  []model.Role
	hosts      []string
	registered []string // patterns behind authorize, in order

	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
}

// New returns the API handler.
func New(cfg Config) *API {
	if cfg.Clock == nil {
		cfg.Clock = clock.Real{}
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.Registry == nil {
		cfg.Registry = prometheus.NewRegistry()
	}
	a := &API{
		jobs: cfg.Jobs, flows: cfg.Flows, triggers: cfg.Triggers, alerts: cfg.Alerts, store: cfg.Store, clock: cfg.Clock, log: cfg.Log,
		info: cfg.Info, checkHost: cfg.CheckHost, certRoles: cfg.ClientCertRoles, ready: cfg.Ready, mux: http.NewServeMux(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dpe_http_requests_total", Help: "HTTP requests by route and status.",
		}, []string{"route", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "dpe_http_request_seconds", Help: "HTTP request latency by route.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 5, 30, 60},
		}, []string{"route"}),
	}
	for _, h := range cfg.Hosts {
		a.hosts = append(a.hosts, strings.TrimSuffix(strings.ToLower(h), "."))
	}
	ts, _ := cfg.Store.(store.TokenStore)
	a.authn = newAuthenticator(cfg.Token, ts, cfg.Clock.Now)
	a.limits = newLimiter(cfg.Limits)
	a.audit = newAuditor(cfg.Store, cfg.Clock, cfg.Log, cfg.Registry, auditQueueSize)
	cfg.Registry.MustRegister(a.requests, a.latency)
	a.routes()
	if ts != nil {
		a.tokenRoutes()
	}
	if a.audit != nil {
		a.auditRoutes()
	}
	a.protect("GET /metrics", promhttp.HandlerFor(cfg.Registry, promhttp.HandlerOpts{}))
	if cfg.Profiling {
		a.protect("GET /debug/pprof/", http.HandlerFunc(pprof.Index))
		a.protect("GET /debug/pprof/cmdline", http.HandlerFunc(pprof.Cmdline))
		a.protect("GET /debug/pprof/profile", http.HandlerFunc(pprof.Profile))
		a.protect("GET /debug/pprof/symbol", http.HandlerFunc(pprof.Symbol))
		a.protect("GET /debug/pprof/trace", http.HandlerFunc(pprof.Trace))
	}
	return a
}

func (a *API) routes() {
	a.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "alive"})
	})
	a.mux.HandleFunc("GET /readyz", a.readyz)

	a.handle("POST /v1/jobs", a.submitJob)
	a.handle("POST /v1/jobs/batch", a.submitBatch)
	a.handle("GET /v1/jobs", a.listJobs)
	a.handle("GET /v1/jobs/{id}", withID(a, a.jobs.Get))
	a.handle("POST /v1/jobs/{id}/cancel", withID(a, a.jobs.Cancel))
	// A retry is a decision taken once: a repeat with the same key is
	// answered as the first, without a second attempt series.
	a.handle("POST /v1/jobs/{id}/retry", a.idempotent(withID(a, a.jobs.Retry)))
	a.handle("POST /v1/jobs/{id}/priority", withIDBody(a, func(ctx context.Context, id int64, req wire.PriorityRequest) (model.Job, error) {
		return a.jobs.SetPriority(ctx, id, req.Priority)
	}))
	a.handle("POST /v1/jobs/{id}/progress", withIDBody(a, func(ctx context.Context, id int64, b model.Heartbeat) (model.HeartbeatResult, error) {
		b.ID = id
		return a.jobs.Progress(ctx, b)
	}))
	a.handle("POST /v1/jobs/{id}/complete", withIDBody(a, func(ctx context.Context, id int64, c model.Completion) (model.Job, error) {
		c.ID = id
		return a.jobs.Complete(ctx, c)
	}))
	a.handle("POST /v1/completions", a.completeMany)
	a.handle("POST /v1/jobs/{id}/release", a.idempotent(withIDBody(a, func(ctx context.Context, id int64, req wire.ReleaseRequest) (model.Job, error) {
		return a.jobs.Release(ctx, id, req.Epoch)
	})))
	a.handle("POST /v1/claims", a.claim) // idempotent by the store (see claim)
	a.handle("POST /v1/heartbeats", a.heartbeat)
	a.handle("PUT /v1/processors/{id}", a.putProcessor)
	a.handle("GET /v1/processors", a.listProcessors)
	a.handle("GET /v1/types", a.listTypes)
	a.handle("PUT /v1/types/{name}", a.putType)
	a.handle("GET /v1/status", a.status)
	if a.flows != nil {
		a.workflowRoutes()
		a.leaseRoutes()
	}
	if a.triggers != nil {
		a.triggerRoutes()
	}
	if a.alerts != nil {
		a.alertRoutes()
	}
	a.logRoutes()
}

// handle registers a /v1 route behind its layers. From the outside in: a
// request is counted and timed (instrument), leaves its audit entry once
// answered (audited, mutating routes), is authenticated against the
// route's roles (authorize), refused if cross-site (guard), held to its
// caller's limits (limit), to a scoped token's types or triggers (scope)
// and to the name caps of its path (pathNames), and its Idempotency-Key
// is checked (keyLimit) before the handler runs.
func (a *API) handle(pattern string, h http.HandlerFunc) {
	a.registered = append(a.registered, pattern)
	if strings.HasPrefix(pattern, "GET ") {
		h = withETag(h) // every GET is a prompt read (no GET long-polls)
	}
	h = a.pathNames(pattern, keyLimit(h))
	h = a.limit(pattern, a.scope(pattern, h))
	var layered http.Handler = a.guard(pattern, h)
	layered = a.authorize(pattern, layered)
	layered = a.audited(pattern, layered)
	a.mux.Handle(pattern, a.instrument(pattern, layered))
}

// protect registers a route outside /v1 behind authentication only.
func (a *API) protect(pattern string, h http.Handler) {
	a.registered = append(a.registered, pattern)
	a.mux.Handle(pattern, a.authorize(pattern, h))
}

// Handle registers an extra route (other services add theirs).
func (a *API) Handle(pattern string, h http.HandlerFunc) { a.handle(pattern, h) }

// ServeHTTP gives every request an id and a log line.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	id := r.Header.Get("X-Request-Id")
	if id == "" || len(id) > 64 {
		var b [8]byte
		_, _ = rand.Read(b[:])
		id = hex.EncodeToString(b[:])
	}
	w.Header().Set("X-Request-Id", id)
	a.mux.ServeHTTP(w, r)
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

// Unwrap lets http.ResponseController reach the connection.
func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }

func (s *statusWriter) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}

func (a *API) instrument(route string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		h.ServeHTTP(sw, r)
		d := time.Since(start)
		a.requests.WithLabelValues(route, strconv.Itoa(sw.status)).Inc()
		a.latency.WithLabelValues(route).Observe(d.Seconds())
		level := slog.LevelDebug
		if sw.status >= 500 {
			level = slog.LevelWarn
		}
		a.log.LogAttrs(r.Context(), level, "http", slog.String("method", r.Method), slog.String("path", r.URL.Path),
			slog.Int("status", sw.status), slog.Duration("took", d), slog.String("request_id", w.Header().Get("X-Request-Id")))
	})
}

func (a *API) readyz(w http.ResponseWriter, r *http.Request) {
	if a.ready != nil {
		if err := a.ready(r.Context()); err != nil {
			writeProblem(w, wire.Problem{Title: "not ready", Status: http.StatusServiceUnavailable, Detail: err.Error()})
			return
		}
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

// withID serves a route on {id}: it parses the id, calls fn and answers
// its value as JSON, or its error as a problem.
func withID[T any](a *API, fn func(ctx context.Context, id int64) (T, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, err := pathID(r)
		if err != nil {
			a.writeError(w, r, err)
			return
		}
		v, err := fn(r.Context(), id)
		if err != nil {
			a.writeError(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, v)
	}
}

// withIDBody is withID for routes that also take a JSON body.
func withIDBody[B, T any](a *API, fn func(ctx context.Context, id int64, body B) (T, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, err := pathID(r)
		if err != nil {
			a.writeError(w, r, err)
			return
		}
		var body B
		if p := decode(w, r, MaxBody, &body); p != nil {
			writeProblem(w, *p)
			return
		}
		v, err := fn(r.Context(), id, body)
		if err != nil {
			a.writeError(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, v)
	}
}

// pathID parses the {id} path value.
func pathID(r *http.Request) (int64, error) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		return 0, model.Invalid("id", "must be a positive integer, got %q", r.PathValue("id"))
	}
	return id, nil
}
