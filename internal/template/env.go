package template

import (
	"context"
	"time"
)

// StepNotRun is the state an expression sees for a step that has no
// entry in Env.Steps yet.
const StepNotRun = "pending"

// StepView is what expressions see of a step: steps.<id>.result and
// steps.<id>.state.
type StepView struct {
	Result any
	State  string
}

// InstanceView is what expressions see of the running instance.
type InstanceView struct {
	ID       int64
	Name     string
	Priority int
}

// ErrorView is the error a catch, finally or on_error step sees.
type ErrorView struct {
	Message string
	Step    string // id of the activity that failed
}

// Env is the state an expression is evaluated in. Zero fields are empty.
type Env struct {
	// Args must be the result of Template.BindArgs (it is idempotent, so
	// bind again after reading args back from JSON): expressions are
	// compiled for the declared types.
	Args map[string]any
	// Vars are the variables assigned by set steps so far.
	Vars map[string]any
	// Steps holds the steps that ran, by id. A step an expression reads
	// that is not here appears with state StepNotRun and a nil result.
	Steps map[string]StepView
	// Locals holds the loop variables in scope, by their `as` name.
	Locals map[string]any
	// Error is the error being handled in catch, finally and on_error
	// steps; nil reads as an empty message and step.
	Error *ErrorView

	Instance InstanceView
	Event    map[string]any // folder watcher event, for triggered instances
	Row      map[string]any // table watcher row
	FireTime time.Time      // schedule fire time

	// Context, when set, stops an evaluation when it ends (a cancelled
	// instance, a worker shutting down), checked between predicate steps;
	// nil never stops one. Every evaluation is bounded by MaxEvalSteps
	// as well.
	Context context.Context
}

// runtime builds the map an expression runs against. steps lists the step
// ids the expression reads, so that steps which have not run yet can be
// filled in.
func (e Env) runtime(steps []string) map[string]any {
	m := make(map[string]any, 10+len(e.Locals))
	for k, v := range e.Locals {
		m[k] = v
	}
	sv := make(map[string]any, len(e.Steps)+len(steps))
	for id, s := range e.Steps {
		sv[id] = map[string]any{"result": s.Result, "state": s.State}
	}
	for _, id := range steps {
		if _, ok := sv[id]; !ok {
			sv[id] = map[string]any{"result": nil, "state": StepNotRun}
		}
	}
	ev := map[string]any{"message": "", "step": ""}
	if e.Error != nil {
		ev = map[string]any{"message": e.Error.Message, "step": e.Error.Step}
	}
	m["args"] = nonNil(e.Args)
	m["vars"] = nonNil(e.Vars)
	m["steps"] = sv
	m["error"] = ev
	m["instance"] = map[string]any{"id": e.Instance.ID, "name": e.Instance.Name, "priority": e.Instance.Priority}
	m["event"] = nonNil(e.Event)
	m["row"] = nonNil(e.Row)
	m["fire_time"] = e.FireTime
	m[budgetVar] = &budget{ctx: e.Context, max: MaxEvalSteps}
	return m
}

func nonNil(m map[string]any) map[string]any {
	if m == nil {
		return map[string]any{}
	}
	return m
}
