package main

import (
	"compress/gzip"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	coltrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/dpe-engine/dpe/internal/eventually"
	"github.com/dpe-engine/dpe/internal/model"
	"github.com/dpe-engine/dpe/internal/tracing"
)

// otlpSpan is a span an OTLP receiver got, with where it came from.
type otlpSpan struct {
	*tracepb.Span
	service string
	pid     int64
}

// otlpReceiver is an OTLP/HTTP trace endpoint (protobuf, as a collector
// speaks it) keeping what it receives.
type otlpReceiver struct {
	mu    sync.Mutex
	spans []otlpSpan
}

func (o *otlpReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/v1/traces" {
		http.NotFound(w, r)
		return
	}
	var body io.Reader = r.Body
	if r.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		body = zr
	}
	b, err := io.ReadAll(body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var req coltrace.ExportTraceServiceRequest
	if err := proto.Unmarshal(b, &req); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	o.mu.Lock()
	for _, rs := range req.ResourceSpans {
		var service string
		var pid int64
		for _, kv := range rs.GetResource().GetAttributes() {
			switch kv.Key {
			case "service.name":
				service = kv.Value.GetStringValue()
			case "process.pid":
				pid = kv.Value.GetIntValue()
			}
		}
		for _, ss := range rs.ScopeSpans {
			for _, s := range ss.Spans {
				o.spans = append(o.spans, otlpSpan{Span: s, service: service, pid: pid})
			}
		}
	}
	o.mu.Unlock()
	out, _ := proto.Marshal(&coltrace.ExportTraceServiceResponse{})
	w.Header().Set("Content-Type", "application/x-protobuf")
	_, _ = w.Write(out)
}

func (o *otlpReceiver) got() []otlpSpan {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]otlpSpan(nil), o.spans...)
}

// TestTraceAcrossProcesses: a server, a worker and two processors, each
// its own process, export spans over OTLP/HTTP to a receiver (the worker
// configured by the standard environment variable, the others by
// --otlp-endpoint). The workflow's instance is one trace: its root and
// steps from the worker, each job's span from a processor process under
// its step's span; the spans ended before the roles stop reach the
// receiver when they stop (flushed on shutdown).
func TestTraceAcrossProcesses(t *testing.T) {
	recv := &otlpReceiver{}
	collector := httptest.NewServer(recv)
	t.Cleanup(collector.Close)

	dir := t.TempDir()
	addr := freeAddr(t)
	url := "http://" + addr
	server := startDPE(t, "server", dir, "server", "--db", "sqlite:"+filepath.Join(dir, "dpe.db"), "--listen", addr, "--otlp-endpoint", collector.URL)
	c := newClient(t, url)
	waitReady(t, c, 60*time.Second)
	cmd := exec.Command(dpeBinary(t), "worker", "--server", url, "--lease-ttl", "3s")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "DPE_LOG_LEVEL=info", "OTEL_EXPORTER_OTLP_ENDPOINT="+collector.URL)
	worker := startCmd(t, "worker", cmd)
	var procs []*proc
	for _, id := range []string{"p0", "p1"} {
		procs = append(procs, startDPE(t, id, dir, "processor", "--server", url, "--quota", "noop=1", "--id", id, "--otlp-endpoint", collector.URL))
	}

	tpl := filepath.Join(dir, "traced.yaml")
	src := `name: traced
steps:
  - {id: first, job: noop, params: {sleep: 50ms}}
  - id: fan
    foreach: "[1, 2, 3, 4]"
    do:
      - {id: each, job: noop, params: {sleep: 100ms}}
`
	if err := os.WriteFile(tpl, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, errOut, code := runDPE(t, dir, "template", "import", tpl, "--server", url); code != 0 {
		t.Fatalf("template import: %s %s", out, errOut)
	}
	ctx := context.Background()
	inst, err := c.StartWorkflow(ctx, model.InstanceSpec{Template: "traced"})
	if err != nil {
		t.Fatal(err)
	}
	d := eventually.Value(t, 60*time.Second, func() (*model.InstanceDetail, error) { return c.GetWorkflow(ctx, inst.ID) },
		func(d *model.InstanceDetail) bool { return d.Instance.State.Final() }, "the instance to end")
	if d.Instance.State != model.InstanceSucceeded {
		t.Fatalf("instance %s: %s", d.Instance.State, d.Instance.Error)
	}
	// SIGTERM: each role flushes its spans as it stops.
	for _, p := range append(procs, worker, server) {
		if err := p.stop(60 * time.Second); err != nil {
			t.Errorf("%s: %v", p.name, err)
		}
	}

	tid := tracing.InstanceTrace(d.Instance)
	var root *otlpSpan
	steps := map[string]otlpSpan{}
	var jobs, inTrace []otlpSpan
	servers := 0
	for _, s := range recv.got() {
		if s.service == "dpe-server" {
			servers++
		}
		if [16]byte(s.TraceId) != tid {
			continue
		}
		inTrace = append(inTrace, s)
		switch {
		case s.Name == "workflow traced":
			root = &s
		case s.Name == "job noop":
			jobs = append(jobs, s)
		case strings.HasPrefix(s.Name, "step "):
			steps[s.Name] = s
		}
	}
	if root == nil {
		t.Fatalf("no root span in the instance's trace %s (received %d spans)", tid, len(recv.got()))
	}
	if len(root.ParentSpanId) != 0 || root.service != "dpe-worker" {
		t.Errorf("root: parent %x, service %s", root.ParentSpanId, root.service)
	}
	if len(steps) != 6 { // first, fan, fan[0..3]/each
		t.Errorf("%d step spans, want 6: %v", len(steps), steps)
	}
	for name, s := range steps {
		if s.service != "dpe-worker" || s.pid != root.pid {
			t.Errorf("%s from %s pid %d, want the worker's", name, s.service, s.pid)
		}
	}
	if len(jobs) != 5 {
		t.Fatalf("%d job spans in the trace, want 5", len(jobs))
	}
	pids := map[int64]bool{}
	for _, j := range jobs {
		var path string
		for _, kv := range j.Attributes {
			if kv.Key == string(tracing.AttrStep) {
				path = kv.Value.GetStringValue()
			}
		}
		step, ok := steps["step "+path]
		if !ok || string(j.ParentSpanId) != string(step.SpanId) {
			t.Errorf("job of step %q: parent %x, want the step's span %x", path, j.ParentSpanId, step.SpanId)
		}
		if j.service != "dpe-processor" || j.pid == root.pid || j.pid == 0 {
			t.Errorf("job span from %s pid %d (worker pid %d)", j.service, j.pid, root.pid)
		}
		pids[j.pid] = true
	}
	// The server's spans of the worker's commits are in the trace too,
	// and every span's parent is.
	ids := map[string]bool{}
	advances := 0
	for _, s := range inTrace {
		ids[string(s.SpanId)] = true
		if s.Name == "POST /v1/worker/advances" && s.service == "dpe-server" {
			advances++
		}
	}
	for _, s := range inTrace {
		if len(s.ParentSpanId) > 0 && !ids[string(s.ParentSpanId)] {
			t.Errorf("span %q of %s: parent %x is not in the trace", s.Name, s.service, s.ParentSpanId)
		}
	}
	if advances == 0 {
		t.Error("no server span of the worker's commits in the instance's trace")
	}
	t.Logf("%d spans in the trace: %d job spans from %d processor processes, %d server spans of commits; %d server spans in all",
		len(inTrace), len(jobs), len(pids), advances, servers)
}
