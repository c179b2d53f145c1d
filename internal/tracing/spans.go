package tracing

import (
	"context"
	"net/http"
	"strconv"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/dpe-engine/dpe/internal/model"
)

// Attribute keys of dpe's spans.
const (
	AttrInstanceID = attribute.Key("dpe.instance.id")
	AttrInstance   = attribute.Key("dpe.instance.name")
	AttrTemplate   = attribute.Key("dpe.template")
	AttrState      = attribute.Key("dpe.state")
	AttrStep       = attribute.Key("dpe.step.path")
	AttrStepKind   = attribute.Key("dpe.step.kind")
	AttrJobID      = attribute.Key("dpe.job.id")
	AttrJobType    = attribute.Key("dpe.job.type")
	AttrAttempt    = attribute.Key("dpe.job.attempt")
	AttrProcessor  = attribute.Key("dpe.processor")
	AttrParentID   = attribute.Key("dpe.instance.parent_id")
)

// parentContext is a context whose (remote) parent span is span of
// trace t, sampled.
func parentContext(t trace.TraceID, span trace.SpanID) context.Context {
	sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: t, SpanID: span, TraceFlags: trace.FlagsSampled, Remote: true})
	return trace.ContextWithRemoteSpanContext(context.Background(), sc)
}

// Instance emits the root span of an ended instance: from its creation to
// its end. Nothing when off or when the instance has not ended.
func (p *Provider) Instance(inst model.Instance) {
	if !p.Enabled() || inst.FinishedAt == nil {
		return
	}
	ctx := withIDs(context.Background(), InstanceTrace(inst), InstanceSpan(inst))
	attrs := []attribute.KeyValue{
		AttrInstanceID.Int64(inst.ID), AttrInstance.String(inst.Name),
		AttrTemplate.String(inst.Template + "@" + strconv.Itoa(inst.Version)), AttrState.String(string(inst.State)),
	}
	if inst.ParentID != 0 {
		attrs = append(attrs, AttrParentID.Int64(inst.ParentID), AttrStep.String(inst.ParentStep))
	}
	_, span := p.tracer().Start(ctx, "workflow "+inst.Template, trace.WithNewRoot(),
		trace.WithTimestamp(inst.CreatedAt), trace.WithAttributes(attrs...))
	if inst.State != model.InstanceSucceeded {
		span.SetStatus(codes.Error, firstOf(inst.Error, string(inst.State)))
	}
	span.End(trace.WithTimestamp(*inst.FinishedAt))
}

// Step emits the span of an ended step of inst, as a child of the step at
// parent ("" : of the instance's root span). links join other traces (a
// sub-workflow's, see InstanceLink).
func (p *Provider) Step(inst model.Instance, st model.Step, parent string, links ...trace.Link) {
	if !p.Enabled() || st.FinishedAt == nil {
		return
	}
	tid, pid := InstanceTrace(inst), InstanceSpan(inst)
	if parent != "" {
		pid = StepSpan(inst, parent)
	}
	ctx := withIDs(parentContext(tid, pid), tid, StepSpan(inst, st.Path))
	attrs := []attribute.KeyValue{
		AttrInstanceID.Int64(inst.ID), AttrStep.String(st.Path), AttrStepKind.String(st.Kind), AttrState.String(string(st.State)),
	}
	if st.JobID != 0 {
		attrs = append(attrs, AttrJobID.Int64(st.JobID))
	}
	_, span := p.tracer().Start(ctx, "step "+st.Path, trace.WithTimestamp(st.StartedAt),
		trace.WithAttributes(attrs...), trace.WithLinks(links...))
	if st.State == model.StepFailed {
		span.SetStatus(codes.Error, firstOf(st.Error, string(st.State)))
	}
	span.End(trace.WithTimestamp(*st.FinishedAt))
}

// InstanceLink links to an instance's root span (a parent's step to the
// sub-workflow it ran, which is a trace of its own).
func InstanceLink(inst model.Instance) trace.Link {
	sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: InstanceTrace(inst), SpanID: InstanceSpan(inst), TraceFlags: trace.FlagsSampled})
	return trace.Link{SpanContext: sc, Attributes: []attribute.KeyValue{AttrInstanceID.Int64(inst.ID)}}
}

// InstanceContext is the span context of an instance's root span.
func InstanceContext(inst model.Instance) trace.SpanContext {
	return trace.NewSpanContext(trace.SpanContextConfig{TraceID: InstanceTrace(inst), SpanID: InstanceSpan(inst), TraceFlags: trace.FlagsSampled, Remote: true})
}

// StartBatch starts the span of one call made for the work of several
// spans at once (a group commit: a worker's decisions, a processor's
// outcomes): the child of the one span it serves, so the server's span of
// the call is in that trace; serving several, a root linked to each. The
// returned context carries it to the call.
func (p *Provider) StartBatch(ctx context.Context, name string, serves []trace.SpanContext) (context.Context, trace.Span) {
	if !p.Enabled() {
		return ctx, trace.SpanFromContext(context.Background())
	}
	var links []trace.Link
	for _, sc := range serves {
		if sc.IsValid() {
			links = append(links, trace.Link{SpanContext: sc})
		}
	}
	opts := []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(attribute.Int("dpe.batch.size", len(serves)))}
	if len(links) == 1 && len(serves) == 1 {
		ctx = trace.ContextWithRemoteSpanContext(ctx, links[0].SpanContext)
	} else {
		opts = append(opts, trace.WithNewRoot(), trace.WithLinks(links...))
	}
	return p.tracer().Start(ctx, name, opts...)
}

// StartJob starts the span of one attempt of a claimed job, under the
// parent the server gave (j.Trace: the job's step in its instance's
// trace) or, for a job of its own, as a root in the job's trace. The
// returned context carries the span: calls made with it carry the trace
// to the server. End it with EndJob.
func (p *Provider) StartJob(ctx context.Context, j model.Job, processor string) (context.Context, trace.Span) {
	if !p.Enabled() {
		return ctx, trace.SpanFromContext(context.Background()) // a no-op span
	}
	opts := []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindConsumer), trace.WithAttributes(
		AttrJobID.Int64(j.ID), AttrJobType.String(j.Type), AttrAttempt.Int(j.Attempt), AttrProcessor.String(processor))}
	if j.InstanceID != 0 {
		opts = append(opts, trace.WithAttributes(AttrInstanceID.Int64(j.InstanceID), AttrStep.String(j.Step)))
	}
	parent := trace.SpanContextFromContext(propagation.TraceContext{}.Extract(context.Background(),
		propagation.MapCarrier{"traceparent": j.Trace}))
	if parent.IsValid() {
		ctx = trace.ContextWithRemoteSpanContext(ctx, parent)
	} else {
		ctx = withIDs(ctx, JobTrace(j), trace.SpanID{})
		opts = append(opts, trace.WithNewRoot())
	}
	return p.tracer().Start(ctx, "job "+j.Type, opts...)
}

// EndJob ends a job attempt's span with its outcome ("" error: success).
func EndJob(span trace.Span, errText string) {
	if errText != "" {
		span.SetStatus(codes.Error, errText)
	}
	span.End()
}

// Handler wraps a server's handler: each request is a server span, a
// child of the caller's span when the request carries a W3C traceparent
// (the client sends its context's). Off: next itself.
func (p *Provider) Handler(next http.Handler) http.Handler {
	if !p.Enabled() {
		return next
	}
	tr := p.tracer()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := propagation.TraceContext{}.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
		ctx, span := tr.Start(ctx, r.Method, trace.WithSpanKind(trace.SpanKindServer), trace.WithAttributes(
			attribute.String("http.request.method", r.Method), attribute.String("url.path", r.URL.Path)))
		defer span.End()
		sw := &statusWriter{ResponseWriter: w, code: http.StatusOK}
		r = r.WithContext(ctx)
		next.ServeHTTP(sw, r)
		// The mux sets the matched pattern on the request it was given:
		// a name of bounded cardinality.
		if r.Pattern != "" {
			span.SetName(r.Pattern)
			span.SetAttributes(attribute.String("http.route", r.Pattern))
		}
		span.SetAttributes(attribute.Int("http.response.status_code", sw.code))
		if sw.code >= 500 {
			span.SetStatus(codes.Error, http.StatusText(sw.code))
		}
	})
}

// statusWriter remembers the status code of a response.
type statusWriter struct {
	http.ResponseWriter
	code  int
	wrote bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wrote {
		w.code, w.wrote = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	w.wrote = true
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection (flushes,
// deadlines).
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Flush flushes through to the connection (streamed answers).
func (w *statusWriter) Flush() { _ = http.NewResponseController(w.ResponseWriter).Flush() }

func firstOf(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}
