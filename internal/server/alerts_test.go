package server_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/dpe-engine/dpe/internal/alert"
	"github.com/dpe-engine/dpe/internal/client"
	"github.com/dpe-engine/dpe/internal/eventually"
	"github.com/dpe-engine/dpe/internal/model"
	"github.com/dpe-engine/dpe/internal/server"
	"github.com/dpe-engine/dpe/internal/testdb"
	"github.com/dpe-engine/dpe/internal/wire"
	"github.com/dpe-engine/dpe/internal/worker"
)

// hookCall is one call a webhook receiver got, and when.
type hookCall struct {
	at time.Time
	n  wire.AlertNotification
}

// hook is a real webhook receiver.
type hook struct {
	mu    sync.Mutex
	calls []hookCall
}

func (h *hook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var n wire.AlertNotification
	body, _ := io.ReadAll(r.Body)
	if err := json.Unmarshal(body, &n); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	h.mu.Lock()
	h.calls = append(h.calls, hookCall{time.Now(), n})
	h.mu.Unlock()
}

// of returns the calls of a rule.
func (h *hook) of(rule string) []hookCall {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []hookCall
	for _, c := range h.calls {
		if c.n.Rule == rule {
			out = append(out, c)
		}
	}
	return out
}

func (h *hook) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.calls)
}

var evaluationsRE = regexp.MustCompile(`(?m)^dpe_alert_evaluations_total (\d+)$`)

// evaluations reads the server's count of completed alert evaluations.
func evaluations(t *testing.T, url string) int {
	t.Helper()
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	m := evaluationsRE.FindSubmatch(b)
	if m == nil {
		return 0
	}
	n, _ := strconv.Atoi(string(m[1]))
	return n
}

// TestAlertsEndToEnd: a real server with alert rules, a real webhook
// receiver, a real worker. A workflow that fails and a standby group left
// without an active copy (its only worker stopped) each produce exactly
// one call within the configured delay, and none after.
func TestAlertsEndToEnd(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) { alertsEndToEnd(t, "sqlite:"+filepath.Join(t.TempDir(), "dpe.db")) })
	t.Run("postgres", func(t *testing.T) { alertsEndToEnd(t, testdb.Postgres(t)) })
}

func alertsEndToEnd(t *testing.T, dsn string) {
	const (
		every  = 200 * time.Millisecond
		forDur = 2 * time.Second
	)
	h := &hook{}
	recv := httptest.NewServer(h)
	t.Cleanup(recv.Close)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	srv, _ := runServer(t, server.Config{DB: dsn, Log: log,
		Alerts: alert.Config{
			Every:     every,
			Receivers: []alert.Receiver{{Name: "ops", Webhook: recv.URL}},
			Rules: []alert.Rule{
				{Name: "failed", Kind: model.AlertWorkflowFailed, Match: []string{"boom"}},
				{Name: "nocopy", Kind: model.AlertGroupInactive, Match: []string{"worker/*"}, For: forDur},
			},
		}})
	c, err := client.New(client.Config{URLs: []string{srv.URL()}, Deadline: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)

	// The only worker of standby group "alerts-e2e".
	w, err := worker.New(worker.Config{Client: c, Mode: worker.Standby, Group: "alerts-e2e", PollWait: time.Second, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	wctx, stopWorker := context.WithCancel(context.Background())
	wdone := make(chan error, 1)
	go func() { wdone <- w.Run(wctx) }()
	t.Cleanup(func() { stopWorker(); <-wdone })

	if _, err := c.ImportTemplate(t.Context(), []byte("name: boom\nsteps:\n  - {id: stop, fail: disk full}\n"), "application/yaml"); err != nil {
		t.Fatal(err)
	}
	eventually.True(t, 20*time.Second, func() bool {
		l, err := c.ListAlerts(t.Context())
		return err == nil && l.Total == 0 && len(l.Rules) == 2 && evaluations(t, srv.URL()) > 0
	}, "the evaluator runs with the group active and nothing failed")

	// (1) A failed workflow: one call, within a few evaluations.
	inst, err := c.StartWorkflow(t.Context(), model.InstanceSpec{Template: "boom", Name: "boom-1"})
	if err != nil {
		t.Fatal(err)
	}
	var failedAt time.Time
	eventually.True(t, 20*time.Second, func() bool {
		d, err := c.GetWorkflow(t.Context(), inst.ID)
		if err == nil && d.Instance.State == model.InstanceFailed {
			failedAt = *d.Instance.FinishedAt
			return true
		}
		return false
	}, "the instance fails")
	eventually.True(t, 10*time.Second, func() bool { return len(h.of("failed")) > 0 }, "a call for the failed workflow")
	fc := h.of("failed")[0]
	if fc.n.Status != "firing" || len(fc.n.Alerts) != 1 || fc.n.Alerts[0].Subject != "boom-1" || fc.n.Alerts[0].Kind != model.AlertWorkflowFailed {
		t.Fatalf("failure call = %+v", fc.n)
	}
	t.Logf("failure: instance finished %s, call after %s", failedAt.Format(time.RFC3339Nano), fc.at.Sub(failedAt).Round(time.Millisecond))
	if d := fc.at.Sub(failedAt); d > 5*every+time.Second {
		t.Errorf("failure call %s after the failure; want within a few evaluations (every %s)", d, every)
	}

	// (2) The group's only copy stops: one call once `for` has passed.
	stopWorker()
	if err := <-wdone; err != nil {
		t.Fatalf("worker: %v", err)
	}
	wdone <- nil // for the cleanup
	stopped := time.Now()
	eventually.True(t, forDur+10*time.Second, func() bool { return len(h.of("nocopy")) > 0 }, "a call for the group without a copy")
	gc := h.of("nocopy")[0]
	if gc.n.Status != "firing" || len(gc.n.Alerts) != 1 || gc.n.Alerts[0].Subject != "worker/alerts-e2e" {
		t.Fatalf("group call = %+v", gc.n)
	}
	delay := gc.at.Sub(stopped)
	t.Logf("group: copy stopped, call after %s (for %s, every %s)", delay.Round(time.Millisecond), forDur, every)
	if delay < forDur || delay > forDur+5*every+time.Second {
		t.Errorf("group call %s after the copy stopped; want between for (%s) and for + a few evaluations", delay, forDur)
	}

	// None after: wait for five more completed evaluations (the metric),
	// then the receiver still has exactly the two calls.
	base := evaluations(t, srv.URL())
	eventually.True(t, 20*time.Second, func() bool { return evaluations(t, srv.URL()) >= base+5 }, "five more evaluations")
	if n := h.count(); n != 2 {
		t.Fatalf("receiver got %d calls, want exactly 2: %+v", n, h.calls)
	}
	l, err := c.ListAlerts(t.Context())
	if err != nil || l.Firing != 2 {
		t.Fatalf("GET /v1/alerts = %+v, %v; want two firing", l, err)
	}
	for _, a := range l.Items {
		if len(a.Deliveries) != 1 || a.Deliveries[0].SentAt == nil || a.Deliveries[0].Attempts != 1 || a.Notify != "" {
			t.Errorf("alert %s delivery = %+v", a.Key, a.Deliveries)
		}
	}
	res, err := c.TestAlerts(t.Context())
	if err != nil || len(res.Results) != 1 || !res.Results[0].OK {
		t.Fatalf("POST /v1/alerts/test = %+v, %v", res, err)
	}
	if n := h.count(); n != 3 {
		t.Fatalf("receiver got %d calls after the test, want 3", n)
	}
}

// runAlertServer runs a server with the alert configuration until stop or
// the end of the test.
func runAlertServer(t *testing.T, dsn, id string, cfg alert.Config) (*server.Server, func()) {
	t.Helper()
	return runServer(t, server.Config{DB: dsn, ID: id, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Alerts: cfg})
}

// TestAlertsTwoServers: two servers on one PostgreSQL database evaluate
// alerts one at a time. A failure is notified exactly once while both
// run, not again when the evaluating server stops and the other takes
// over, and the next failure is notified by the other.
func TestAlertsTwoServers(t *testing.T) {
	dsn := testdb.Postgres(t)
	h := &hook{}
	recv := httptest.NewServer(h)
	t.Cleanup(recv.Close)
	cfg := alert.Config{Every: 200 * time.Millisecond, Receivers: []alert.Receiver{{Name: "ops", Webhook: recv.URL}},
		Rules: []alert.Rule{{Name: "failed", Kind: model.AlertWorkflowFailed}}}
	a, stopA := runAlertServer(t, dsn, "server-a", cfg)
	eventually.True(t, 20*time.Second, func() bool { return evaluations(t, a.URL()) > 0 }, "server-a evaluates")
	b, _ := runAlertServer(t, dsn, "server-b", cfg)
	c, err := client.New(client.Config{URLs: []string{a.URL(), b.URL()}, Deadline: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	w, err := worker.New(worker.Config{Client: c, PollWait: time.Second, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	wctx, stopWorker := context.WithCancel(context.Background())
	wdone := make(chan error, 1)
	go func() { wdone <- w.Run(wctx) }()
	t.Cleanup(func() { stopWorker(); <-wdone })
	if _, err := c.ImportTemplate(t.Context(), []byte("name: boom\nsteps:\n  - {id: stop, fail: disk full}\n"), "application/yaml"); err != nil {
		t.Fatal(err)
	}

	if _, err := c.StartWorkflow(t.Context(), model.InstanceSpec{Template: "boom", Name: "boom-1"}); err != nil {
		t.Fatal(err)
	}
	eventually.True(t, 20*time.Second, func() bool { return h.count() > 0 }, "a call for boom-1")
	base := evaluations(t, a.URL())
	eventually.True(t, 20*time.Second, func() bool { return evaluations(t, a.URL()) >= base+5 }, "five more evaluations on server-a")
	if n, nb := h.count(), evaluations(t, b.URL()); n != 1 || nb != 0 {
		t.Fatalf("while both run: %d calls (want 1), server-b evaluated %d times (want 0, it stands by)", n, nb)
	}
	if first := h.of("failed")[0].n; first.Server != "server-a" || first.Alerts[0].Subject != "boom-1" {
		t.Fatalf("first call = %+v", first)
	}

	// server-a stops (and gives the lease up): server-b takes over and
	// does not notify boom-1 again.
	stopA()
	stopped := time.Now()
	eventually.True(t, alert.LeaseTTL+10*time.Second, func() bool { return evaluations(t, b.URL()) >= 1 }, "server-b takes over")
	t.Logf("server-b evaluated %s after server-a stopped", time.Since(stopped).Round(time.Millisecond))
	eventually.True(t, 20*time.Second, func() bool { return evaluations(t, b.URL()) >= 5 }, "server-b evaluates five times")
	if n := h.count(); n != 1 {
		t.Fatalf("after the takeover: %d calls, want still 1: %+v", n, h.calls)
	}
	if _, err := c.StartWorkflow(t.Context(), model.InstanceSpec{Template: "boom", Name: "boom-2"}); err != nil {
		t.Fatal(err)
	}
	eventually.True(t, 20*time.Second, func() bool { return h.count() > 1 }, "a call for boom-2")
	base = evaluations(t, b.URL())
	eventually.True(t, 20*time.Second, func() bool { return evaluations(t, b.URL()) >= base+5 }, "five more evaluations on server-b")
	calls := h.of("failed")
	if len(calls) != 2 || calls[1].n.Server != "server-b" || calls[1].n.Alerts[0].Subject != "boom-2" {
		t.Fatalf("calls = %+v", calls)
	}
}
