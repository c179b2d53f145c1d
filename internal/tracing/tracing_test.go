package tracing_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/dpe-engine/dpe/internal/client"
	"github.com/dpe-engine/dpe/internal/model"
	"github.com/dpe-engine/dpe/internal/tracing"
	"github.com/dpe-engine/dpe/internal/wire"
)

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestEndpoint(t *testing.T) {
	tests := []struct {
		name    string
		flag    string
		env     map[string]string
		want    string
		wantErr bool
	}{
		{name: "nothing configured: off"},
		{name: "flag, base URL", flag: "http://jaeger:4318", want: "http://jaeger:4318/v1/traces"},
		{name: "flag with the path", flag: "https://c:4318/v1/traces", want: "https://c:4318/v1/traces"},
		{name: "flag with a prefix", flag: "http://c:4318/otlp/", want: "http://c:4318/otlp/v1/traces"},
		{name: "generic env", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}, want: "http://c:4318/v1/traces"},
		{name: "traces env is taken as is", env: map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:9999/x", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://d:4318"}, want: "http://c:9999/x"},
		{name: "flag wins", flag: "http://f:4318", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}, want: "http://f:4318/v1/traces"},
		{name: "sdk disabled", flag: "http://f:4318", env: map[string]string{"OTEL_SDK_DISABLED": "true"}},
		{name: "exporter none", env: map[string]string{"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}},
		{name: "no scheme", flag: "jaeger:4318", wantErr: true},
		{name: "bad env", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "ftp://c"}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tracing.Endpoint(tt.flag, env(tt.env))
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("endpoint = %q, want %q", got, tt.want)
			}
		})
	}
}

// TestOffByDefault: with no endpoint configured there is no exporter and
// spans do not record.
func TestOffByDefault(t *testing.T) {
	p, err := tracing.New(context.Background(), tracing.Config{Role: "worker", Getenv: env(nil)})
	if err != nil {
		t.Fatal(err)
	}
	if p.Enabled() {
		t.Fatal("tracing on with nothing configured")
	}
	_, span := p.TracerProvider().Tracer("x").Start(context.Background(), "s")
	if span.IsRecording() {
		t.Error("a span records with tracing off")
	}
	ctx, span := p.StartJob(context.Background(), model.Job{ID: 1, Type: "noop"}, "p")
	if span.IsRecording() || trace.SpanContextFromContext(ctx).IsValid() {
		t.Error("StartJob made a span with tracing off")
	}
	var nilP *tracing.Provider
	nilP.Instance(model.Instance{}) // nil-safe
	if err := nilP.Shutdown(context.Background()); err != nil {
		t.Error(err)
	}
}

func TestParentStep(t *testing.T) {
	records := map[string]bool{"fan": true, "fan[1]/inner": true, "try": true}
	tests := []struct{ path, want string }{
		{"first", ""},
		{"fan", ""},
		{"fan[0]/each", "fan"},
		{"fan[1]/inner/deep", "fan[1]/inner"},
		{"fan[1]/inner", "fan"},
		{"try/bad", "try"},
		{"other/x", ""},
	}
	for _, tt := range tests {
		if got := tracing.ParentStep(tt.path, func(p string) bool { return records[p] }); got != tt.want {
			t.Errorf("ParentStep(%q) = %q, want %q", tt.path, got, tt.want)
		}
	}
}

// TestDerivedIDs: the ids are a function of the instance's id and
// creation time (to the millisecond), distinct across both, and the
// traceparent of a job names its step's span in its instance's trace.
func TestDerivedIDs(t *testing.T) {
	at := time.Date(2026, 12, 6, 10, 0, 0, 123_456_789, time.UTC)
	a := model.Instance{ID: 7, CreatedAt: at}
	sameMS := model.Instance{ID: 7, CreatedAt: at.Truncate(time.Millisecond).In(time.FixedZone("x", 3600))}
	otherDB := model.Instance{ID: 7, CreatedAt: at.Add(time.Hour)}
	other := model.Instance{ID: 8, CreatedAt: at}
	if tracing.InstanceTrace(a) != tracing.InstanceTrace(sameMS) || tracing.StepSpan(a, "s") != tracing.StepSpan(sameMS, "s") {
		t.Error("ids differ for the same instance read at another precision or zone")
	}
	if tracing.InstanceTrace(a) == tracing.InstanceTrace(otherDB) || tracing.InstanceTrace(a) == tracing.InstanceTrace(other) {
		t.Error("two instances share a trace id")
	}
	if tracing.StepSpan(a, "s") == tracing.StepSpan(a, "t") || tracing.StepSpan(a, "s") == tracing.InstanceSpan(a) {
		t.Error("span ids collide")
	}
	tp := tracing.JobParent(a, "fan[1]/each")
	sc := trace.SpanContextFromContext(propagation.TraceContext{}.Extract(context.Background(), propagation.MapCarrier{"traceparent": tp}))
	if !sc.IsValid() || sc.TraceID() != tracing.InstanceTrace(a) || sc.SpanID() != tracing.StepSpan(a, "fan[1]/each") || !sc.IsSampled() {
		t.Errorf("JobParent %q does not name the step's span", tp)
	}
	j1 := model.Job{ID: 1, CreatedAt: at}
	if tracing.JobTrace(j1) == tracing.JobTrace(model.Job{ID: 1, CreatedAt: at.Add(time.Second)}) {
		t.Error("jobs of two databases share a trace")
	}
}

// TestHTTPJoinsCallerTrace: a call of the dpe client made under a span
// carries its traceparent, and the server's span of the request is that
// span's child.
func TestHTTPJoinsCallerTrace(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	p, err := tracing.New(context.Background(), tracing.Config{Role: "server", Exporter: exp})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Shutdown(context.Background()) })
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(wire.Status{})
	})
	srv := httptest.NewServer(p.Handler(mux))
	t.Cleanup(srv.Close)
	c, err := client.New(client.Config{URLs: []string{srv.URL}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)

	job := model.Job{ID: 3, Type: "noop", CreatedAt: time.Now()}
	ctx, caller := p.StartJob(context.Background(), job, "p1")
	if _, err := c.Status(ctx); err != nil {
		t.Fatal(err)
	}
	tracing.EndJob(caller, "")
	if err := p.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	var server *tracetest.SpanStub
	spans := exp.GetSpans()
	for i := range spans {
		if spans[i].SpanKind == trace.SpanKindServer {
			server = &spans[i]
		}
	}
	if server == nil {
		t.Fatalf("no server span among %d", len(spans))
	}
	want := caller.SpanContext()
	if server.Parent.SpanID() != want.SpanID() || server.SpanContext.TraceID() != want.TraceID() {
		t.Errorf("server span parent %s/%s, want the caller's %s/%s", server.SpanContext.TraceID(), server.Parent.SpanID(), want.TraceID(), want.SpanID())
	}
	if server.Name != "GET /v1/status" {
		t.Errorf("server span name %q, want the route", server.Name)
	}
	// A job of its own is a root in the job's derived trace.
	if want.TraceID() != tracing.JobTrace(job) {
		t.Errorf("job span in trace %s, want %s", want.TraceID(), tracing.JobTrace(job))
	}
}
