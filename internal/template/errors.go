package template

import (
	"fmt"
	"sort"
	"strings"

	"github.com/dpe-engine/dpe/internal/model"
)

// Problem is one fault found in a template: where it is (line, step id,
// field relative to the step) and why it is refused.
type Problem struct {
	Line   int    `json:"line,omitempty"`
	Step   string `json:"step,omitempty"`  // activity id (generated for anonymous steps)
	Field  string `json:"field,omitempty"` // e.g. "params.to", "retry.max_attempts"
	Reason string `json:"reason"`
}

// String renders p as "line 12: step "copy": params.to: reason".
func (p Problem) String() string {
	var b strings.Builder
	if p.Line > 0 {
		fmt.Fprintf(&b, "line %d: ", p.Line)
	}
	if p.Step != "" {
		fmt.Fprintf(&b, "step %q: ", p.Step)
	}
	if p.Field != "" {
		b.WriteString(p.Field)
		b.WriteString(": ")
	}
	b.WriteString(p.Reason)
	return b.String()
}

// ValidationError holds every problem found in one template. It matches
// model.ErrInvalid through errors.Is, so the API answers it with a 400 and
// can render Problems one by one.
type ValidationError struct {
	Template string // the template's name when it could be read
	Problems []Problem
}

// Error renders one line per problem, each prefixed with the template name.
func (e *ValidationError) Error() string {
	prefix := "template: "
	if e.Template != "" {
		prefix = "template " + e.Template + ": "
	}
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = prefix + p.String()
	}
	return strings.Join(lines, "\n")
}

// Is makes errors.Is(err, model.ErrInvalid) true.
func (e *ValidationError) Is(target error) bool { return target == model.ErrInvalid }

// problems collects Problems while a template is parsed.
type problems struct {
	list []Problem
}

func (ps *problems) add(line int, step, field, format string, args ...any) {
	ps.list = append(ps.list, Problem{Line: line, Step: step, Field: field, Reason: fmt.Sprintf(format, args...)})
}

// err returns nil or a *ValidationError with the problems ordered by line
// (stable, so problems on one line keep the order they were found in).
func (ps *problems) err(name string) error {
	if len(ps.list) == 0 {
		return nil
	}
	list := append([]Problem(nil), ps.list...)
	sort.SliceStable(list, func(i, j int) bool { return list[i].Line < list[j].Line })
	return &ValidationError{Template: name, Problems: list}
}
