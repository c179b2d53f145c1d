package worker_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/dpe-engine/dpe/internal/client"
	"github.com/dpe-engine/dpe/internal/handlers"
	"github.com/dpe-engine/dpe/internal/model"
	"github.com/dpe-engine/dpe/internal/processor"
	"github.com/dpe-engine/dpe/internal/server"
	"github.com/dpe-engine/dpe/internal/tracing"
	"github.com/dpe-engine/dpe/internal/worker"
)

const tracedTemplate = `name: traced
steps:
  - {id: first, job: noop}
  - id: fan
    foreach: "[1, 2]"
    do:
      - {id: each, job: noop}
  - {id: note, log: "done"}
`

// tracedStack is stack with tracing on in every role, all exporting to
// exp; it returns the client and a flush of the three providers.
func tracedStack(t *testing.T, dsn string, exp *tracetest.InMemoryExporter) (*client.Client, func()) {
	t.Helper()
	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	provider := func(role string) *tracing.Provider {
		p, err := tracing.New(context.Background(), tracing.Config{Role: role, Exporter: exp})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	sp, pp, wp := provider("server"), provider("processor"), provider("worker")
	srv, err := server.New(server.Config{DB: dsn, Listen: "127.0.0.1:0", Log: log, Tick: 200 * time.Millisecond, Tracing: sp})
	if err != nil {
		t.Fatal(err)
	}
	run(t, "server", srv.Run)
	<-srv.Ready()
	c, err := client.New(client.Config{URLs: []string{srv.URL()}, Deadline: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	p, err := processor.New(processor.Config{Client: c, Quota: map[string]int{"noop": 8}, LeaseTTL: 3 * time.Second,
		Handlers: handlers.Builtins(handlers.Config{}), Log: log, Grace: time.Second, Tracing: pp})
	if err != nil {
		t.Fatal(err)
	}
	run(t, "processor", p.Run)
	w, err := worker.New(worker.Config{Client: c, LeaseTTL: 3 * time.Second, PollWait: 2 * time.Second, Log: log, Tracing: wp})
	if err != nil {
		t.Fatal(err)
	}
	run(t, "worker", w.Run)
	flush := func() {
		for _, p := range []*tracing.Provider{sp, pp, wp} {
			if err := p.Flush(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
	}
	t.Cleanup(func() {
		for _, p := range []*tracing.Provider{sp, pp, wp} {
			_ = p.Shutdown(context.Background())
		}
	})
	return c, flush
}

// TestInstanceIsOneTrace runs a workflow on a real server, processor and
// worker, each exporting spans, and checks the trace: one trace id for
// the whole instance, the instance as its root, its steps as children
// (an iteration's step under its foreach), each job attempt, made by the
// processor, under its step; every parent is in the trace.
func TestInstanceIsOneTrace(t *testing.T) {
	engines(t, func(t *testing.T, dsn string) {
		exp := tracetest.NewInMemoryExporter()
		c, flush := tracedStack(t, dsn, exp)
		importTemplate(t, c, tracedTemplate)
		inst := start(t, c, model.InstanceSpec{Template: "traced"})
		d := waitFor(t, c, inst.ID, 30*time.Second, func(d model.InstanceDetail) bool { return d.Instance.State.Final() })
		if d.Instance.State != model.InstanceSucceeded {
			t.Fatalf("instance %s: %s", d.Instance.State, d.Instance.Error)
		}
		flush()

		tid := tracing.InstanceTrace(d.Instance)
		byName := map[string][]tracetest.SpanStub{}
		ids := map[trace.SpanID]bool{}
		var all []tracetest.SpanStub
		for _, s := range exp.GetSpans() {
			if s.SpanContext.TraceID() != tid {
				continue
			}
			all = append(all, s)
			byName[s.Name] = append(byName[s.Name], s)
			ids[s.SpanContext.SpanID()] = true
		}
		service := func(s tracetest.SpanStub) string {
			v, _ := s.Resource.Set().Value("service.name")
			return v.AsString()
		}
		one := func(name string) tracetest.SpanStub {
			t.Helper()
			if len(byName[name]) != 1 {
				t.Fatalf("%d spans %q in the instance's trace, want 1 (spans: %v)", len(byName[name]), name, names(all))
			}
			return byName[name][0]
		}
		root := one("workflow traced")
		if root.Parent.IsValid() || root.SpanContext.SpanID() != tracing.InstanceSpan(d.Instance) || service(root) != "dpe-worker" {
			t.Errorf("root: parent %v, id %s, service %s", root.Parent.SpanID(), root.SpanContext.SpanID(), service(root))
		}
		if !root.StartTime.Equal(d.Instance.CreatedAt) || !root.EndTime.Equal(*d.Instance.FinishedAt) {
			t.Errorf("root from %s to %s, want the instance's %s to %s", root.StartTime, root.EndTime, d.Instance.CreatedAt, d.Instance.FinishedAt)
		}
		parents := map[string]trace.SpanID{
			"step first": root.SpanContext.SpanID(), "step fan": root.SpanContext.SpanID(), "step note": root.SpanContext.SpanID(),
			"step fan[0]/each": tracing.StepSpan(d.Instance, "fan"), "step fan[1]/each": tracing.StepSpan(d.Instance, "fan"),
		}
		for name, parent := range parents {
			s := one(name)
			if s.Parent.SpanID() != parent || service(s) != "dpe-worker" {
				t.Errorf("%s: parent %s (want %s), service %s", name, s.Parent.SpanID(), parent, service(s))
			}
		}
		jobs := byName["job noop"]
		if len(jobs) != 3 {
			t.Fatalf("%d job spans in the instance's trace, want 3 (spans: %v)", len(jobs), names(all))
		}
		steps := map[trace.SpanID]bool{}
		for _, j := range jobs {
			if service(j) != "dpe-processor" {
				t.Errorf("job span from %s", service(j))
			}
			var path string
			for _, a := range j.Attributes {
				if a.Key == tracing.AttrStep {
					path = a.Value.AsString()
				}
			}
			if j.Parent.SpanID() != tracing.StepSpan(d.Instance, path) {
				t.Errorf("job of step %q: parent %s, want the step's span %s", path, j.Parent.SpanID(), tracing.StepSpan(d.Instance, path))
			}
			steps[j.Parent.SpanID()] = true
		}
		if len(steps) != 3 {
			t.Errorf("the 3 jobs hang off %d steps, want 3", len(steps))
		}
		for _, s := range all {
			if s.Parent.IsValid() && !ids[s.Parent.SpanID()] {
				t.Errorf("span %q has a parent %s outside the trace", s.Name, s.Parent.SpanID())
			}
		}
		// The worker's commits of this instance's decisions go under its
		// root, and the server's spans of those calls under them.
		commits := byName["commit decisions"]
		advances := byName["POST /v1/worker/advances"]
		if len(commits) == 0 || len(advances) != len(commits) {
			t.Errorf("%d commit spans and %d server spans of advances in the trace, want as many, at least one", len(commits), len(advances))
		}
		for _, s := range commits {
			if s.Parent.SpanID() != root.SpanContext.SpanID() {
				t.Errorf("commit span under %s, want the root", s.Parent.SpanID())
			}
		}
		for _, s := range advances {
			if service(s) != "dpe-server" || s.SpanKind != trace.SpanKindServer {
				t.Errorf("advance span from %s, kind %s", service(s), s.SpanKind)
			}
		}
		// Each job's outcome is reported under its span (alone in its
		// call) or by a call linked to it (with others).
		reported := map[trace.SpanID]bool{}
		for _, s := range exp.GetSpans() {
			if s.Name != "report outcomes" {
				continue
			}
			reported[s.Parent.SpanID()] = true
			for _, l := range s.Links {
				reported[l.SpanContext.SpanID()] = true
			}
		}
		for _, j := range jobs {
			if !reported[j.SpanContext.SpanID()] {
				t.Errorf("the outcome of job span %s was reported by no span", j.SpanContext.SpanID())
			}
		}
	})
}

func names(spans []tracetest.SpanStub) []string {
	out := make([]string, len(spans))
	for i, s := range spans {
		out[i] = s.Name
	}
	return out
}
