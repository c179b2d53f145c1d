package worker

import (
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
	if !t.Enabled() {
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
