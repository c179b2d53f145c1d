package api

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/dpe-engine/dpe/internal/clock"
	"github.com/dpe-engine/dpe/internal/coredb"
	"github.com/dpe-engine/dpe/internal/model"
	"github.com/dpe-engine/dpe/internal/store"
)

// TestAuditedRoutes makes the rule of machineRoutes explicit, route by
// route: a mutating route is recorded always unless it is machine
// traffic, which is recorded only when refused (401, 403, 421); reads
// never. Every machine route is a registered route (a renamed route
// cannot silently fall out of the rule).
func TestAuditedRoutes(t *testing.T) {
	for pattern := range machineRoutes {
		if _, ok := routeRoles[pattern]; !ok {
			t.Errorf("machine route %q is not in routeRoles", pattern)
		}
	}
	for _, c := range []struct {
		pattern string
		status  int
		want    bool
	}{
		{"POST /v1/jobs", 201, true},
		{"POST /v1/jobs", 422, true},
		{"POST /v1/jobs/{id}/cancel", 409, true},
		{"DELETE /v1/templates/{name}", 204, true},
		{"PUT /v1/types/{name}", 200, true},
		{"POST /v1/tokens", 401, true},
		{"POST /v1/triggers/{name}/fire", 200, true}, // starts work: recorded
		{"POST /v1/workflows", 201, true},
		{"POST /v1/heartbeats", 200, false},
		{"POST /v1/heartbeats", 409, false}, // fencing at work
		{"POST /v1/heartbeats", 401, true},
		{"POST /v1/claims", 403, true},
		{"POST /v1/claims", 200, false},
		{"PUT /v1/processors/{id}", 204, false},
		{"POST /v1/jobs/{id}/complete", 200, false},
		{"POST /v1/worker/advances", 421, true},
		{"POST /v1/leases/acquire", 409, false},
		{"POST /v1/triggers/{name}/observe", 200, false},
		{"GET /v1/jobs", 200, false},
		{"GET /v1/audit", 403, false},
		{"GET /metrics", 401, false},
	} {
		if got := recorded(c.pattern, c.status); got != c.want {
			t.Errorf("recorded(%q, %d) = %v, want %v", c.pattern, c.status, got, c.want)
		}
	}
}

// TestOutcome: the problem's title, else the status text; "ok" below 400.
func TestOutcome(t *testing.T) {
	for _, c := range []struct {
		status int
		head   string
		want   string
	}{
		{201, "", "ok"},
		{204, "", "ok"},
		{403, `{"type":"about:blank","title":"forbidden","status":403,"detail":"x"}`, "forbidden"},
		{409, `{"type":"about:blank","title":"conflict","status":409,"detail":"` + strings.Repeat("x", 600), "conflict"},
		{503, `{"title":"core database unavailable"}`, "core database unavailable"},
		{404, `404 page not found`, "not found"},
		{499, ``, "499"},
	} {
		if got := outcome(c.status, []byte(c.head)); got != c.want {
			t.Errorf("outcome(%d, %.40q) = %q, want %q", c.status, c.head, got, c.want)
		}
	}
}

// counterValue reads a counter.
func counterValue(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

// TestAuditQueue: a full queue drops and counts, it never blocks the
// caller; a stopping writer still writes what was queued.
func TestAuditQueue(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	st, err := coredb.Open(t.Context(), "sqlite:"+filepath.Join(t.TempDir(), "dpe.db"), log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	const size = 600 // more than two batches
	a := &API{audit: newAuditor(st, clock.Real{}, log, prometheus.NewRegistry(), size)}
	au := a.audit
	now := time.Now()
	for i := range size + 3 {
		au.add(model.AuditEntry{At: now, Principal: "p", Method: http.MethodPost, Route: "POST /v1/jobs", Status: 201 + i%2})
	}
	if got := counterValue(t, au.dropped); got != 3 {
		t.Fatalf("dropped = %v past a full queue of %d, want 3", got, size)
	}
	// A writer whose server has stopped already flushes the queue.
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := a.RunAudit(ctx); err != nil {
		t.Fatal(err)
	}
	p, err := st.(store.AuditStore).AuditList(t.Context(), model.AuditFilter{Limit: 1})
	if err != nil {
		t.Fatal(err)
	}
	if p.Total != size || counterValue(t, au.written) != size {
		t.Fatalf("after the flush: %d stored, %v counted written; want %d", p.Total, counterValue(t, au.written), size)
	}
}

// TestAuditPanic: a handler that panics still leaves its entry, as a 500,
// and the panic goes on to net/http.
func TestAuditPanic(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	st, err := coredb.Open(t.Context(), "sqlite:"+filepath.Join(t.TempDir(), "dpe.db"), log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	a := &API{clock: clock.Real{}, audit: newAuditor(st, clock.Real{}, log, prometheus.NewRegistry(), 8)}
	h := a.audited("DELETE /v1/templates/{name}", http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic("boom") }))
	mux := http.NewServeMux()
	mux.Handle("DELETE /v1/templates/{name}", h)
	func() {
		defer func() {
			if p := recover(); p != "boom" {
				t.Errorf("recovered %v, want the handler's panic", p)
			}
		}()
		mux.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodDelete, "/v1/templates/x", nil))
	}()
	select {
	case e := <-a.audit.queue:
		if e.Status != 500 || e.Outcome != "internal error" || e.Target != "name=x" || e.Principal != "anonymous" {
			t.Fatalf("entry of the panic: %+v", e)
		}
	default:
		t.Fatal("no entry for a call whose handler panicked")
	}
}
