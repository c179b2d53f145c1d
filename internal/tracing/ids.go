package tracing

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"strconv"
	"strings"

	"go.opentelemetry.io/otel/trace"

	"github.com/dpe-engine/dpe/internal/model"
)

// The trace context of an instance is derived, not stored: the trace id
// from the instance's id and creation time (in milliseconds, the
// precision both core database engines keep), the root span id likewise,
// a step's span id from its path. The worker (which ends steps and
// instances), the server (which tells a processor the parent of a job it
// claims) and any processor thus agree without a stored trace context and
// without a migration. The creation time keeps two databases' instance 1
// (a test deployment and production sending to one collector, a database
// recreated) in different traces.

// instanceKey names an instance for the derivations.
func instanceKey(id int64, created int64) string {
	return "dpe/instance/" + strconv.FormatInt(id, 10) + "/" + strconv.FormatInt(created, 10)
}

func hashTrace(parts ...string) trace.TraceID {
	var t trace.TraceID
	sum := sha256.Sum256([]byte(strings.Join(parts, "\x00")))
	copy(t[:], sum[:])
	if !t.IsValid() {
		t[15] = 1
	}
	return t
}

func hashSpan(parts ...string) trace.SpanID {
	var s trace.SpanID
	sum := sha256.Sum256([]byte(strings.Join(parts, "\x00")))
	copy(s[:], sum[16:])
	if !s.IsValid() {
		s[7] = 1
	}
	return s
}

// InstanceTrace is the trace id of an instance.
func InstanceTrace(inst model.Instance) trace.TraceID {
	return hashTrace(instanceKey(inst.ID, inst.CreatedAt.UnixMilli()))
}

// InstanceSpan is the span id of an instance's root span.
func InstanceSpan(inst model.Instance) trace.SpanID {
	return hashSpan(instanceKey(inst.ID, inst.CreatedAt.UnixMilli()), "root")
}

// StepSpan is the span id of the step at path of an instance. A step run
// again by a retry of its instance keeps its id (the trace shows both
// runs under one span id).
func StepSpan(inst model.Instance, path string) trace.SpanID {
	return hashSpan(instanceKey(inst.ID, inst.CreatedAt.UnixMilli()), "step", path)
}

// JobTrace is the trace id of a job submitted on its own (no instance):
// each job is its own trace, its attempts the spans in it.
func JobTrace(j model.Job) trace.TraceID {
	return hashTrace("dpe/job/"+strconv.FormatInt(j.ID, 10), strconv.FormatInt(j.CreatedAt.UnixMilli(), 10))
}

// JobParent is the W3C traceparent under which a workflow job's attempts
// go: its step's span in its instance's trace. The server sets it on a
// claimed job (model.Job.Trace) when the claim asks for it.
func JobParent(inst model.Instance, step string) string {
	return fmt.Sprintf("00-%s-%s-01", InstanceTrace(inst), StepSpan(inst, step))
}

// ParentStep returns the path of the nearest enclosing step of path that
// has a record (has(p) true), or "" when the step hangs off the instance
// itself: "fan[2]/wait" is inside "fan[2]", which is inside "fan".
func ParentStep(path string, has func(string) bool) string {
	for {
		i := strings.LastIndexAny(path, "/[")
		if i <= 0 {
			return ""
		}
		path = path[:i]
		if has(path) {
			return path
		}
	}
}

// fixedIDs is what WithIDs puts in a context for idGenerator.
type fixedIDs struct {
	trace trace.TraceID
	span  trace.SpanID
}

type idsKey struct{}

// withIDs makes the next span started with ctx take these ids: a root
// span both (a zero span id: a random one), a child span the span id.
func withIDs(ctx context.Context, t trace.TraceID, s trace.SpanID) context.Context {
	return context.WithValue(ctx, idsKey{}, fixedIDs{t, s})
}

// idGenerator gives the ids a context asks for (withIDs), random ones
// otherwise.
type idGenerator struct{}

func (idGenerator) NewIDs(ctx context.Context) (trace.TraceID, trace.SpanID) {
	f, _ := ctx.Value(idsKey{}).(fixedIDs)
	t, s := f.trace, f.span
	if !t.IsValid() {
		t = randomTrace()
	}
	if !s.IsValid() {
		s = randomSpan()
	}
	return t, s
}

func (idGenerator) NewSpanID(ctx context.Context, t trace.TraceID) trace.SpanID {
	if f, ok := ctx.Value(idsKey{}).(fixedIDs); ok && f.trace == t && f.span.IsValid() {
		return f.span
	}
	return randomSpan()
}

func randomTrace() trace.TraceID {
	var t trace.TraceID
	for !t.IsValid() {
		_, _ = rand.Read(t[:])
	}
	return t
}

func randomSpan() trace.SpanID {
	var s trace.SpanID
	for !s.IsValid() {
		_, _ = rand.Read(s[:])
	}
	return s
}
