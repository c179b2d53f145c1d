package worker

import (
	"context"

	"go.opentelemetry.io/otel/trace"

	"github.com/dpe-engine/dpe/internal/model"
	"github.com/dpe-engine/dpe/internal/tracing"
)

// traceAdvance emits the spans of what a committed advance ended: the
// steps it finished (each under its enclosing step, or the instance) and,
// when the instance ended, the instance's root span (now is the instance
// as the commit left it). Their times are those of the records, so the
// spans are right whichever worker drove which step.
func (w *Worker) traceAdvance(d model.InstanceDetail, adv model.Advance, now model.Instance) {
	t := w.cfg.Tracing
	if !t.Enabled() || d.Instance.ID == 0 {
		return
	}
	before := make(map[string]model.Step, len(d.Steps)+len(adv.Steps))
	for _, s := range d.Steps {
		before[s.Path] = s
	}
	has := func(path string) bool {
		_, ok := before[path]
		return ok
	}
	known := make(map[string]bool, len(adv.Steps))
	for _, s := range adv.Steps {
		known[s.Path] = true
	}
	hasAny := func(path string) bool { return has(path) || known[path] }
	for _, st := range adv.Steps {
		if st.FinishedAt == nil {
			continue
		}
		if prev, ok := before[st.Path]; ok && prev.FinishedAt != nil {
			continue // ended before: its span is out already
		}
		var links []trace.Link
		if st.ChildID != 0 {
			for _, c := range d.Children {
				if c.ID == st.ChildID {
					links = append(links, tracing.InstanceLink(c))
				}
			}
		}
		t.Step(d.Instance, st, tracing.ParentStep(st.Path, hasAny), links...)
	}
	if now.State.Final() {
		t.Instance(now)
	}
}

// startCommitSpan starts the span of a commit call: under the instance's
// root span when it commits one instance's decision (the server's span of
// the call is then in the instance's trace), else linked to each.
func (w *Worker) startCommitSpan(ctx context.Context, advs []model.Advance, byID map[int64]model.InstanceDetail) (context.Context, trace.Span) {
	if !w.cfg.Tracing.Enabled() {
		return ctx, trace.SpanFromContext(context.Background())
	}
	serves := make([]trace.SpanContext, 0, len(advs))
	for _, a := range advs {
		if d, ok := byID[a.InstanceID]; ok {
			serves = append(serves, tracing.InstanceContext(d.Instance))
		}
	}
	return w.cfg.Tracing.StartBatch(ctx, "commit decisions", serves)
}
