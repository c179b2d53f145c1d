// Package template parses, validates and exports dpe workflow templates
// (DESIGN §4 and §9) and evaluates their expressions.
//
// A template is a YAML (or JSON) document: a name, typed args, a tree of
// activities (steps) and an output map. Parse reads it strictly through
// yaml.v3 nodes, so every problem carries its line, the step id and the
// field, and returns all problems at once as a *ValidationError. Every
// expression is compiled at parse time with github.com/expr-lang/expr
// against an environment that knows the declared args, the step ids and the
// variables set in the template, so a typo is refused at import instead of
// failing a running instance.
//
// Rules this package decides (the format reference is README.md):
//
//   - Step ids match [A-Za-z_][A-Za-z0-9_]* (so steps.<id> works in
//     expressions) and are unique in the whole template. An id is required on
//     job, workflow, foreach, parallel and try steps, and on any step whose
//     result or state an expression reads. Anonymous steps get the generated
//     id "s<N>", N being the step's 1-based position in a pre-order walk of
//     the whole tree; ids of that form are therefore reserved.
//   - foreach concurrency: 1 (default) runs iterations one after another, N
//     runs up to N at once, 0 runs all at once.
//   - on_error: fail (default), continue, or a list of steps run instead of
//     failing (error is in scope there). After those steps the activity
//     counts as recovered.
//   - set evaluates all its values against the variables as they were before
//     the step (simultaneous assignment), so the order of its keys is not
//     significant.
//   - Expressions are deterministic: now() is disabled and keys(), values()
//     and toPairs() return map entries sorted by key, because a replayed step
//     must compute exactly what it computed the first time.
package template

import (
	"time"
)

// Concurrency policies for instances that share a concurrency key.
const (
	ConcurrencyAllow = "allow" // start regardless (default)
	ConcurrencySkip  = "skip"  // do not start while one with the same key runs
	ConcurrencyQueue = "queue" // start after the running one ends
)

// Template is a parsed and validated workflow template. It is read-only
// after Parse; share it freely between goroutines.
type Template struct {
	Name        string
	Version     int // 0: not given (import assigns the next one)
	Description string

	// Args are the declared arguments by name; ArgNames keeps the order of
	// declaration.
	Args     map[string]ArgSpec
	ArgNames []string

	// Steps is the top-level sequence.
	Steps []*Activity

	// Output is evaluated when the instance succeeds.
	Output map[string]Value

	// ConcurrencyKey groups instances for Concurrency (nil: all instances of
	// the template form one group). It sees args, instance, event, row and
	// fire_time.
	ConcurrencyKey *Expr
	// Concurrency is ConcurrencyAllow, ConcurrencySkip or ConcurrencyQueue.
	Concurrency string

	// Timeout bounds a whole instance (0: none).
	Timeout time.Duration

	byID map[string]*Activity
}

// Find returns the activity with the given id (explicit or generated), or
// nil.
func (t *Template) Find(id string) *Activity {
	return t.byID[id]
}

// Walk calls fn for every activity in pre-order (the order generated ids
// follow). When fn returns false the activity's children are skipped.
func (t *Template) Walk(fn func(a *Activity) bool) {
	walkList(t.Steps, fn)
}

func walkList(list []*Activity, fn func(a *Activity) bool) {
	for _, a := range list {
		if !fn(a) {
			continue
		}
		for _, b := range a.Blocks() {
			walkList(b.Steps, fn)
		}
	}
}
