package api

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dpe-engine/dpe/internal/backoff"
	"github.com/dpe-engine/dpe/internal/clock"
	"github.com/dpe-engine/dpe/internal/model"
	"github.com/dpe-engine/dpe/internal/store"
	"github.com/dpe-engine/dpe/internal/wire"
)

// The audit trail (DESIGN §7: "an audit record of every mutating call").
//
// What is recorded: every POST, PUT, PATCH and DELETE on a route behind
// authentication, once answered, refused ones included (401, 403, 4xx):
// who (the token's name and role; "anonymous" without a valid token; "-"
// when the server requires no token), the route's pattern, its path values,
// the status, a short outcome (the problem's title, "ok" on success), the
// remote address and the request id. Never the body: a body may hold
// secrets (job params with credentials, a template's connection strings).
// The remote address is the connection's peer: behind a load balancer it
// is the balancer's (X-Forwarded-For is not trusted).
//
// Machine traffic is the exception. The routes of machineRoutes are how
// processors, workers and triggers hold their work (claims, heartbeats,
// progress, completions, leases, observations), many times a second in a
// busy farm, whichever token they use (`dpe up` drives its processor with
// its admin token). Recording them would drown the trail and double the
// database's writes, so a call of theirs is recorded only when it is
// refused as a matter of security (401, 403, 421): a stolen or mis-set
// token shows; a stale epoch (409), which is fencing at work, does not.
// Everything that changes what the plant does, on the operators' behalf
// (submit, cancel, retry, priority, templates, types, tokens, workflow
// starts, trigger fires), is recorded always.
//
// How it is written: the answer is not held up by the audit write. Each
// entry goes into a bounded queue (auditQueueSize) that one writer
// (RunAudit) empties in batches of one transaction each; a failed write
// is retried with back-off, keeping the batch, for as long as the server
// runs. Only when the queue is full (the database has been unreachable or
// slower than the traffic for thousands of calls) is an entry dropped:
// dpe_audit_dropped_total counts it and the log says so (at the first
// drop, then at the 2nd, 4th, 8th, ...). A server that stops writes what
// is queued, within auditFlushTimeout. The trade: an answered call may be
// missing from the trail if the server is killed in the moment between
// the answer and the write (SIGKILL, power loss), or under a sustained
// outage, and then the metric and the log say so; in exchange a slow or
// restarting core database never fails or slows a call for its audit row.
var machineRoutes = map[string]bool{
	"POST /v1/jobs/{id}/progress":            true,
	"POST /v1/jobs/{id}/complete":            true,
	"POST /v1/completions":                   true,
	"POST /v1/jobs/{id}/release":             true,
	"POST /v1/jobs/{id}/logs":                true,
	"POST /v1/claims":                        true,
	"POST /v1/heartbeats":                    true,
	"PUT /v1/processors/{id}":                true,
	"POST /v1/worker/claims":                 true,
	"POST /v1/worker/instances/{id}/advance": true,
	"POST /v1/worker/advances":               true,
	"POST /v1/worker/heartbeats":             true,
	"POST /v1/worker/releases":               true,
	"POST /v1/leases/acquire":                true,
	"POST /v1/leases/release":                true,
	"POST /v1/triggers/{name}/observe":       true,
	"POST /v1/triggers/{name}/error":         true,
}

// Audit writer bounds.
const (
	auditQueueSize    = 4096
	auditBatchSize    = 256
	auditFlushTimeout = 5 * time.Second
	// DefaultAuditLimit is the page size of GET /v1/audit without limit.
	DefaultAuditLimit = 100
)

// auditRetry paces the writer's retries of a failed batch.
var auditRetry = backoff.Policy{Initial: 100 * time.Millisecond, Max: 5 * time.Second, Jitter: 0.5}

// recorded reports whether a call of the route answered with status goes
// into the trail (see machineRoutes).
func recorded(pattern string, status int) bool {
	method, _, _ := strings.Cut(pattern, " ")
	switch method {
	case http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
	default:
		return false
	}
	if !machineRoutes[pattern] {
		return true
	}
	return status == http.StatusUnauthorized || status == http.StatusForbidden || status == http.StatusMisdirectedRequest
}

// auditor queues audit entries for its writer.
type auditor struct {
	store   store.AuditStore
	clock   clock.Clock
	log     *slog.Logger
	queue   chan model.AuditEntry
	drops   atomic.Int64
	dropped prometheus.Counter
	written prometheus.Counter
}

// newAuditor returns the auditor of st with a queue of size entries, its
// metrics registered on reg; nil when the store keeps no audit trail.
func newAuditor(st store.Store, c clock.Clock, log *slog.Logger, reg *prometheus.Registry, size int) *auditor {
	as, ok := st.(store.AuditStore)
	if !ok {
		return nil
	}
	au := &auditor{
		store: as, clock: c, log: log, queue: make(chan model.AuditEntry, size),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "dpe_audit_dropped_total", Help: "Audit entries dropped because the audit queue was full (see the server log).",
		}),
		written: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "dpe_audit_written_total", Help: "Audit entries written to the core database.",
		}),
	}
	reg.MustRegister(au.dropped, au.written)
	return au
}

// add queues e without waiting; a full queue drops it, counted and logged.
func (au *auditor) add(e model.AuditEntry) {
	select {
	case au.queue <- e:
		return
	default:
	}
	au.dropped.Inc()
	// Log the 1st, 2nd, 4th, 8th... drop: a sustained outage says so
	// without a line per call.
	if n := au.drops.Add(1); n&(n-1) == 0 {
		au.log.Warn("audit queue full: entry dropped", "dropped_total", n, "route", e.Route, "principal", e.Principal)
	}
}

// RunAudit writes the audit entries the API queues, until ctx ends; it
// then writes what is still queued (within auditFlushTimeout) and returns
// nil. The server runs it beside the API; without it entries queue up to
// the bound, then are dropped and counted. A no-op when the store keeps
// no audit trail.
func (a *API) RunAudit(ctx context.Context) error {
	au := a.audit
	if au == nil {
		return nil
	}
	batch := make([]model.AuditEntry, 0, auditBatchSize)
	for {
		select {
		case <-ctx.Done():
			au.flush(context.WithoutCancel(ctx), batch)
			return nil
		case e := <-au.queue:
			batch = append(batch[:0], e)
		}
		batch = au.fill(batch)
		for try := 0; ; try++ {
			err := au.store.AuditAppend(ctx, batch)
			if err == nil {
				au.written.Add(float64(len(batch)))
				break
			}
			if ctx.Err() != nil {
				au.flush(context.WithoutCancel(ctx), batch)
				return nil
			}
			d := auditRetry.Delay(try)
			au.log.Warn("audit write failed; retrying", "entries", len(batch), "in", d, "err", err)
			if clock.Sleep(ctx, au.clock, d) != nil {
				au.flush(context.WithoutCancel(ctx), batch)
				return nil
			}
		}
	}
}

// fill adds queued entries to batch, without waiting, up to the batch size.
func (au *auditor) fill(batch []model.AuditEntry) []model.AuditEntry {
	for len(batch) < auditBatchSize {
		select {
		case e := <-au.queue:
			batch = append(batch, e)
		default:
			return batch
		}
	}
	return batch
}

// flush writes batch and everything queued, in batches, within
// auditFlushTimeout of a context that no longer ends with the server's.
// What cannot be written is dropped, counted and logged.
func (au *auditor) flush(ctx context.Context, batch []model.AuditEntry) {
	ctx, cancel := context.WithTimeout(ctx, auditFlushTimeout)
	defer cancel()
	for {
		batch = au.fill(batch)
		if len(batch) == 0 {
			return
		}
		if err := au.store.AuditAppend(ctx, batch); err != nil {
			n := len(batch) + len(au.queue)
			au.dropped.Add(float64(n))
			au.log.Error("audit entries lost at shutdown", "entries", n, "err", err)
			return
		}
		au.written.Add(float64(len(batch)))
		batch = batch[:0]
	}
}

// RecordAudit queues e for the audit trail through the API's writer, for
// a call served outside the API's routes (the web monitor's login). A
// zero At is now. A no-op when the store keeps no audit trail.
func (a *API) RecordAudit(e model.AuditEntry) {
	if a.audit == nil {
		return
	}
	if e.At.IsZero() {
		e.At = a.clock.Now()
	}
	a.audit.add(e)
}

// auditCaller is where authorize leaves the caller of a request for the
// audit wrapper around it.
type auditCaller struct {
	p       Principal
	known   bool // a token was checked
	authOff bool // the server requires no token
}

type auditCallerKey struct{}

// noteCaller records the caller of the request being audited (authorize
// calls it once it knows).
func noteCaller(ctx context.Context, p Principal) {
	if c, ok := ctx.Value(auditCallerKey{}).(*auditCaller); ok {
		c.p, c.known = p, true
	}
}

// noteAuthOff records that the server required no token.
func noteAuthOff(ctx context.Context) {
	if c, ok := ctx.Value(auditCallerKey{}).(*auditCaller); ok {
		c.authOff = true
	}
}

// auditWriter remembers the status and the first bytes of an error
// answer, where the problem's title is.
type auditWriter struct {
	statusWriter
	head []byte
}

func (w *auditWriter) Write(b []byte) (int, error) {
	if w.status >= 400 && len(w.head) < 512 {
		w.head = append(w.head, b[:min(len(b), 512-len(w.head))]...)
	}
	return w.ResponseWriter.Write(b)
}

// audited wraps h, the handler of a route behind authorize, with its
// audit entry (see machineRoutes for what is recorded).
func (a *API) audited(pattern string, h http.Handler) http.Handler {
	if a.audit == nil || !recorded(pattern, http.StatusForbidden) {
		return h // not mutating, or no audit trail
	}
	_, path, _ := strings.Cut(pattern, " ")
	names := pathNames(path)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		caller := &auditCaller{}
		aw := &auditWriter{statusWriter: statusWriter{ResponseWriter: w, status: http.StatusOK}}
		// A handler that panics (net/http then drops the connection) is
		// still a call: recorded as a 500 while the panic goes on.
		panicked := true
		defer func() {
			if panicked {
				aw.status, aw.head = http.StatusInternalServerError, []byte(`"title":"internal error"`)
			}
			a.record(pattern, names, r, w.Header().Get("X-Request-Id"), aw, caller)
		}()
		h.ServeHTTP(aw, r.WithContext(context.WithValue(r.Context(), auditCallerKey{}, caller)))
		panicked = false
	})
}

// record queues the audit entry of a call answered through aw, if the
// rule of machineRoutes records it.
func (a *API) record(pattern string, names []string, r *http.Request, requestID string, aw *auditWriter, caller *auditCaller) {
	if !recorded(pattern, aw.status) {
		return
	}
	e := model.AuditEntry{
		At: a.clock.Now(), Principal: "anonymous", Method: r.Method, Route: pattern, Status: aw.status,
		Remote: r.RemoteAddr, RequestID: requestID, Outcome: outcome(aw.status, aw.head),
	}
	switch {
	case caller.known:
		e.Principal, e.Role = caller.p.Name, caller.p.Role
	case caller.authOff:
		e.Principal = "-"
	}
	var target []string
	for _, n := range names {
		target = append(target, n+"="+r.PathValue(n))
	}
	if loc := aw.Header().Get("Location"); loc != "" && aw.status == http.StatusCreated {
		target = append(target, "created="+loc)
	}
	e.Target = strings.Join(target, " ")
	a.audit.add(e)
}

// pathNames returns the names of a route path's wildcards, in order.
func pathNames(path string) []string {
	var out []string
	for _, seg := range strings.Split(path, "/") {
		if strings.HasPrefix(seg, "{") && strings.HasSuffix(seg, "}") {
			out = append(out, strings.TrimSuffix(strings.Trim(seg, "{}"), "..."))
		}
	}
	return out
}

// outcome is "ok" for a success, else the title of the problem answered
// (a fixed phrase of the API, never the caller's input), else the
// status's text.
func outcome(status int, head []byte) string {
	if status < 400 {
		return "ok"
	}
	if i := bytes.Index(head, []byte(`"title":`)); i >= 0 {
		var title string
		if json.NewDecoder(bytes.NewReader(head[i+len(`"title":`):])).Decode(&title) == nil && title != "" {
			return title
		}
	}
	if t := http.StatusText(status); t != "" {
		return strings.ToLower(t)
	}
	return strconv.Itoa(status)
}

// auditRoutes serves the audit trail (admin only).
func (a *API) auditRoutes() {
	a.handle("GET /v1/audit", a.listAudit)
}

func (a *API) listAudit(w http.ResponseWriter, r *http.Request) {
	f, err := auditFilter(r.URL.Query())
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	page, err := a.audit.store.AuditList(r.Context(), f)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	if page.Items == nil {
		page.Items = []model.AuditEntry{}
	}
	if n := len(page.Items); n == f.Limit {
		page.Next = strconv.FormatInt(page.Items[n-1].ID, 10)
	}
	writeJSON(w, http.StatusOK, wire.AuditPage(page))
}

// auditParams are the query parameters of GET /v1/audit.
var auditParams = map[string]bool{"since": true, "until": true, "principal": true, "route": true, "limit": true, "cursor": true}

// auditFilter reads the query of GET /v1/audit strictly: only the known
// parameters, each at most once, each well formed.
func auditFilter(q url.Values) (model.AuditFilter, error) {
	f := model.AuditFilter{Limit: DefaultAuditLimit}
	for k, vs := range q {
		if !auditParams[k] {
			field := k
			if field == "" {
				field = "query"
			}
			return f, model.Invalid(field, "unknown parameter %q; want since, until, principal, route, limit or cursor", k)
		}
		if len(vs) > 1 {
			return f, model.Invalid(k, "given %d times; give it once", len(vs))
		}
	}
	var err error
	if f.Since, err = queryTime(q.Get("since"), "since"); err != nil {
		return f, err
	}
	if f.Until, err = queryTime(q.Get("until"), "until"); err != nil {
		return f, err
	}
	if !f.Since.IsZero() && !f.Until.IsZero() && !f.Until.After(f.Since) {
		return f, model.Invalid("until", "must be after since (%s), got %s", q.Get("since"), q.Get("until"))
	}
	if _, ok := q["principal"]; ok {
		if f.Principal = q.Get("principal"); f.Principal == "" || len(f.Principal) > store.MaxAuditField {
			return f, model.Invalid("principal", "want a token name (1 to %d bytes), got %q", store.MaxAuditField, f.Principal)
		}
	}
	if _, ok := q["route"]; ok {
		if f.Route, err = auditRoute(q.Get("route")); err != nil {
			return f, err
		}
	}
	if s, ok := q["limit"]; ok {
		n, err := strconv.Atoi(s[0])
		if err != nil || n < 1 || n > store.MaxAuditList {
			return f, model.Invalid("limit", "want a number from 1 to %d, got %q", store.MaxAuditList, s[0])
		}
		f.Limit = n
	}
	if s, ok := q["cursor"]; ok {
		n, err := strconv.ParseInt(s[0], 10, 64)
		if err != nil || n < 1 {
			return f, model.Invalid("cursor", "want the next of the previous page (a positive integer), got %q", s[0])
		}
		f.Before = n
	}
	return f, nil
}

// auditRoute checks a route filter: a mutating method, one space, a path
// such as /v1/jobs/{id}/cancel.
func auditRoute(s string) (string, error) {
	method, path, ok := strings.Cut(s, " ")
	switch {
	case !ok || len(s) > store.MaxAuditField:
	case method != http.MethodPost && method != http.MethodPut && method != http.MethodPatch && method != http.MethodDelete:
	case !strings.HasPrefix(path, "/") || strings.ContainsAny(path, " \t\r\n"):
	default:
		return s, nil
	}
	return "", model.Invalid("route", `want a route pattern such as "POST /v1/jobs" or "DELETE /v1/templates/{name}", got %q`, s)
}
