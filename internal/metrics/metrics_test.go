package metrics_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	pmodel "github.com/prometheus/common/model"
	"go.uber.org/goleak"

	"github.com/dpe-engine/dpe/internal/alert"
	"github.com/dpe-engine/dpe/internal/client"
	"github.com/dpe-engine/dpe/internal/eventually"
	"github.com/dpe-engine/dpe/internal/handlers"
	"github.com/dpe-engine/dpe/internal/model"
	"github.com/dpe-engine/dpe/internal/processor"
	"github.com/dpe-engine/dpe/internal/server"
	"github.com/dpe-engine/dpe/internal/testdb"
	"github.com/dpe-engine/dpe/internal/worker"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("database/sql.(*DB).connectionOpener"))
}

// engines runs f on each core database engine.
func engines(t *testing.T, f func(t *testing.T, dsn string)) {
	t.Run("sqlite", func(t *testing.T) { f(t, "sqlite:"+filepath.Join(t.TempDir(), "dpe.db")) })
	t.Run("postgres", func(t *testing.T) { f(t, testdb.Postgres(t)) })
}

// run starts fn in the background until the test ends or stop is called.
func run(t *testing.T, name string, fn func(ctx context.Context) error) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- fn(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("%s: %v", name, err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(string(b))
	return len(b), nil
}

// stack runs a server, a noop processor with 4 slots and a standby worker
// on dsn; it returns the server's URL, a client and what stops the worker.
func stack(t *testing.T, dsn string) (string, *client.Client, func()) {
	t.Helper()
	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	hook := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	t.Cleanup(hook.Close)
	srv, err := server.New(server.Config{DB: dsn, Listen: "127.0.0.1:0", Log: log, Tick: 200 * time.Millisecond,
		MetricsCache: time.Nanosecond,
		// An alert rule and receiver, so the alert series are exposed.
		Alerts: alert.Config{Every: 200 * time.Millisecond, Receivers: []alert.Receiver{{Name: "ops", Webhook: hook.URL}},
			Rules: []alert.Rule{{Name: "failed", Kind: model.AlertWorkflowFailed, Match: []string{"none"}}}}})
	if err != nil {
		t.Fatal(err)
	}
	run(t, "server", srv.Run)
	select {
	case <-srv.Ready():
	case <-time.After(30 * time.Second):
		t.Fatal("server not ready")
	}
	c, err := client.New(client.Config{URLs: []string{srv.URL()}, Deadline: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	p, err := processor.New(processor.Config{Client: c, Quota: map[string]int{"noop": 4}, LeaseTTL: 3 * time.Second,
		Handlers: handlers.Builtins(handlers.Config{}), Log: log, Grace: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	run(t, "processor", p.Run)
	w, err := worker.New(worker.Config{Client: c, Mode: worker.Standby, LeaseTTL: 3 * time.Second, PollWait: 2 * time.Second, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	return srv.URL(), c, run(t, "worker", w.Run)
}

// scrape reads url's /metrics and parses the text exposition.
func scrape(t testing.TB, url string) (map[string]*dto.MetricFamily, error) {
	t.Helper()
	_, fams, err := scrapeRaw(t, url)
	return fams, err
}

// scrapeRaw is scrape that also returns the text as served.
func scrapeRaw(t testing.TB, url string) ([]byte, map[string]*dto.MetricFamily, error) {
	t.Helper()
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, nil, fmt.Errorf("GET /metrics: %s", resp.Status)
	}
	p := expfmt.NewTextParser(pmodel.UTF8Validation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(raw))
	return raw, fams, err
}

// value is the value of the series of name with exactly the given labels
// ("k=v" pairs); a histogram gives its sample count; -1 when absent.
func value(fams map[string]*dto.MetricFamily, name string, labels ...string) float64 {
	f := fams[name]
	if f == nil {
		return -1
	}
next:
	for _, m := range f.GetMetric() {
		have := map[string]string{}
		for _, l := range m.GetLabel() {
			have[l.GetName()] = l.GetValue()
		}
		if len(have) != len(labels) {
			continue
		}
		for _, kv := range labels {
			k, v, _ := strings.Cut(kv, "=")
			if have[k] != v {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue()
		case m.Gauge != nil:
			return m.Gauge.GetValue()
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount())
		}
	}
	return -1
}

const flowTemplate = `
name: metered
steps:
  - {id: one, job: noop}
  - {id: two, job: noop}
`

// TestScrapeAfterKnownRun runs jobs and a workflow through a real stack
// and checks every series against what happened and what the database holds.
func TestScrapeAfterKnownRun(t *testing.T) {
	engines(t, func(t *testing.T, dsn string) {
		url, c, stopWorker := stack(t, dsn)
		ctx := t.Context()
		specs := []model.JobSpec{
			{Type: "noop"}, {Type: "noop"},
			{Type: "noop", Params: []byte(`{"fail":true}`), MaxAttempts: 2, Backoff: model.Duration(time.Millisecond)},
		}
		if _, err := c.SubmitJobs(ctx, specs); err != nil {
			t.Fatal(err)
		}
		// A job canceled while queued (twice: the second changes nothing).
		later, err := c.SubmitJob(ctx, model.JobSpec{Type: "noop", RunAfter: time.Now().Add(time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		for range 2 {
			if _, err := c.CancelJob(ctx, later.ID); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := c.ImportTemplate(ctx, []byte(flowTemplate), "application/yaml"); err != nil {
			t.Fatal(err)
		}
		inst, err := c.StartWorkflow(ctx, model.InstanceSpec{Template: "metered"})
		if err != nil {
			t.Fatal(err)
		}
		// A schedule fires twice: one instance started, one fire skipped.
		fired, err := c.Fire(ctx, "nightly", model.FireRequest{Fires: []model.Start{
			{Key: "k1", Instance: model.InstanceSpec{Template: "metered", Name: "schedule/nightly/k1"}},
			{Key: "k2", Instance: model.InstanceSpec{Template: "metered", Name: "schedule/nightly/k2"}, Skip: true, Reason: "test"},
		}})
		if err != nil || len(fired.Records) != 2 {
			t.Fatalf("fire: %+v %v", fired, err)
		}
		eventually.True(t, 30*time.Second, func() bool {
			d, err := c.GetWorkflow(ctx, inst.ID)
			return err == nil && d.Instance.State.Final()
		}, "the workflow to end")

		// 6 jobs succeed (2 submitted, 2 steps of each of 2 instances), one
		// fails after 2 attempts.
		want := []struct {
			name   string
			labels []string
			value  float64
		}{
			{"dpe_job_outcomes_total", []string{"type=noop", "state=succeeded"}, 6},
			{"dpe_job_outcomes_total", []string{"type=noop", "state=failed"}, 1},
			{"dpe_job_outcomes_total", []string{"type=noop", "state=canceled"}, 1},
			{"dpe_job_attempts_total", []string{"type=noop"}, 8},
			{"dpe_job_dispatch_seconds", []string{"type=noop"}, 8},
			{"dpe_workflow_outcomes_total", []string{"template=metered", "state=succeeded"}, 2},
			{"dpe_trigger_events_total", []string{"kind=schedule", "event=fire", "action=started"}, 1},
			{"dpe_trigger_events_total", []string{"kind=schedule", "event=fire", "action=skipped"}, 1},
			{"dpe_jobs", []string{"state=succeeded"}, 6},
			{"dpe_jobs", []string{"state=failed"}, 1},
			{"dpe_jobs", []string{"state=canceled"}, 1},
			{"dpe_jobs", []string{"state=queued"}, 0},
			{"dpe_jobs", []string{"state=running"}, 0},
			{"dpe_job_queue", []string{"type=noop", "state=queued"}, 0},
			{"dpe_job_lease_expired_total", []string{"result=requeued"}, 0},
			{"dpe_processor_slots", []string{"type=noop"}, 4},
			{"dpe_processor_slots_use", []string{"use=used"}, 0},
			{"dpe_processor_slots_use", []string{"use=free"}, 4},
			{"dpe_processors", []string{"status=live"}, 1},
			{"dpe_group_active_copies", []string{"group=worker/default"}, 1},
			{"dpe_metrics_scrape_errors_total", nil, 0},
		}
		var (
			raw  []byte
			fams map[string]*dto.MetricFamily
		)
		eventually.Within(30*time.Second, func() bool {
			raw, fams, err = scrapeRaw(t, url)
			if err != nil {
				return false
			}
			for _, w := range want {
				if value(fams, w.name, w.labels...) != w.value {
					return false
				}
			}
			return true
		})
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range want {
			if got := value(fams, w.name, w.labels...); got != w.value {
				t.Errorf("%s%v = %v, want %v", w.name, w.labels, got, w.value)
			}
		}
		// The database agrees with the counters.
		for _, st := range []model.JobState{model.JobSucceeded, model.JobFailed, model.JobCanceled} {
			page, err := c.ListJobs(ctx, client.JobQuery{States: []model.JobState{st}, Limit: 1})
			if err != nil {
				t.Fatal(err)
			}
			if got := value(fams, "dpe_job_outcomes_total", "type=noop", "state="+string(st)); float64(page.Total) != got {
				t.Errorf("%s jobs: database %d, counter %v", st, page.Total, got)
			}
		}
		if value(fams, "dpe_http_request_seconds", "route=GET /v1/workflows/{id}") <= 0 {
			t.Errorf("no HTTP latency for GET /v1/workflows/{id}: %v", fams["dpe_http_request_seconds"])
		}

		if n := value(fams, "dpe_db_commit_seconds"); n < 8 {
			t.Errorf("%v commits timed, want at least one per claim", n)
		}
		if n := len(fams["dpe_db_connections_max"].GetMetric()); n == 0 {
			t.Error("no connection pool reported")
		}
		if value(fams, "dpe_ready") != 1 {
			t.Errorf("dpe_ready = %v, want 1", value(fams, "dpe_ready"))
		}
		checkDeploy(t, raw, fams)

		// A standby group whose only copy stopped has no active copy.
		stopWorker()
		eventually.True(t, 30*time.Second, func() bool {
			fams, err := scrape(t, url)
			return err == nil && value(fams, "dpe_group_active_copies", "group=worker/default") == 0
		}, "the worker group to have no active copy")
	})
}
