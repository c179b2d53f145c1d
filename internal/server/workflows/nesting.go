package workflows

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/dpe-engine/dpe/internal/model"
	"github.com/dpe-engine/dpe/internal/template"
)

// MaxDepth caps the nesting of sub-workflows: a top-level instance is at
// depth 1, each child one deeper. A template that starts itself (directly
// or through others) is refused at import when the cycle is among the
// stored templates; one that becomes recursive later (a template replaced
// by a version that starts its caller) stops here, with its step failed,
// instead of filling the database with descendants.
const MaxDepth = 16

// subWorkflows lists the templates t starts, with the first step that
// starts each.
func subWorkflows(t *template.Template) map[string]*template.Activity {
	out := map[string]*template.Activity{}
	t.Walk(func(a *template.Activity) bool {
		if a.Kind == template.KindWorkflow {
			if _, ok := out[a.Template]; !ok {
				out[a.Template] = a
			}
		}
		return true
	})
	return out
}

// checkCycle refuses t when one of its steps starts t again, directly or
// through the latest stored versions of other templates. Templates that
// are not stored yet end the search there (they are checked when they are
// imported, against t).
func (s *Service) checkCycle(ctx context.Context, t *template.Template) error {
	type hop struct {
		name string
		path []string // the templates from t to name
	}
	for name, a := range subWorkflows(t) {
		seen := map[string]bool{}
		queue := []hop{{name: name, path: []string{t.Name, name}}}
		for len(queue) > 0 {
			h := queue[0]
			queue = queue[1:]
			if h.name == t.Name {
				return &template.ValidationError{Template: t.Name, Problems: []template.Problem{{
					Line: a.Line, Step: a.ID, Field: "workflow",
					Reason: fmt.Sprintf("starts itself: %s (sub-workflows may not form a cycle)", strings.Join(h.path, " -> ")),
				}}}
			}
			if seen[h.name] {
				continue
			}
			seen[h.name] = true
			mt, err := s.templateFor(ctx, h.name, 0)
			if errors.Is(err, model.ErrNotFound) {
				continue
			}
			if err != nil {
				return fmt.Errorf("template %s: %w", h.name, err)
			}
			next, err := s.parsed(ctx, mt)
			if err != nil {
				continue // a stored template that no longer parses starts nothing
			}
			for n := range subWorkflows(next) {
				queue = append(queue, hop{name: n, path: append(append([]string(nil), h.path...), n)})
			}
		}
	}
	return nil
}

// limitNesting applies the nesting rules to the children an advance
// starts: none deeper than MaxDepth, none under an instance that is
// cancelled or whose ancestor is. Each refused child's step is failed in
// the advance with the reason, and the instance is woken at once to
// decide again (no child will end to wake it), so the failure takes the
// template's own error handling.
func (s *Service) limitNesting(ctx context.Context, a *model.Advance, now time.Time) error {
	if len(a.Children) == 0 {
		return nil
	}
	depth, cancelled := 0, false
	for id := a.InstanceID; id != 0 && depth <= MaxDepth; depth++ {
		inst, err := s.store.InstanceGet(ctx, id)
		if err != nil {
			return fmt.Errorf("instance %d: %w", id, err)
		}
		cancelled = cancelled || inst.CancelAsked || (id != a.InstanceID && inst.State.Final())
		id = inst.ParentID
	}
	var reason string
	switch {
	case cancelled:
		reason = "not started: the instance or an ancestor is cancelled"
	case depth >= MaxDepth:
		reason = fmt.Sprintf("not started: sub-workflows nest at most %d deep (does a template start itself?)", MaxDepth)
	default:
		return nil
	}
	state := model.StepFailed
	if cancelled {
		state = model.StepCanceled
	}
	for _, c := range a.Children {
		msg := fmt.Sprintf("sub-workflow %s %s", c.Template, reason)
		found := false
		for i := range a.Steps {
			if a.Steps[i].Path == c.ParentStep {
				a.Steps[i].State, a.Steps[i].Error, a.Steps[i].FinishedAt = state, msg, &now
				found = true
			}
		}
		if !found {
			a.Steps = append(a.Steps, model.Step{Path: c.ParentStep, ID: lastID(c.ParentStep), Kind: string(template.KindWorkflow),
				State: state, Error: msg, StartedAt: now, FinishedAt: &now})
		}
	}
	a.Children = nil
	if a.State == model.InstanceRunning {
		a.WakeAt = &now
	}
	return nil
}

// lastID is the step id at the end of a step path ("fan[2]/sub" -> "sub").
func lastID(path string) string {
	if i := strings.LastIndexAny(path, "/]"); i >= 0 {
		return strings.TrimPrefix(path[i+1:], "/")
	}
	return path
}
