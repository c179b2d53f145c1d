package template

import (
	"context"
	"errors"
	"fmt"
	"reflect"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/vm"
)

// Expr is one compiled expression: a bare one (if, foreach,
// concurrency_key) or one ${{ }} part of a string. Safe for concurrent use.
type Expr struct {
	src   string
	line  int
	prog  *vm.Program
	steps []string // step ids it reads through steps.<id>
}

// errNotCompiled guards against an Expr that did not come from Parse.
var errNotCompiled = errors.New("expression was not compiled")

// Source returns the expression text.
func (e *Expr) Source() string { return e.src }

// Line is the source line of the expression.
func (e *Expr) Line() int { return e.line }

// Eval runs the expression in env and returns its raw result.
func (e *Expr) Eval(env Env) (any, error) {
	if e == nil || e.prog == nil {
		return nil, errNotCompiled
	}
	out, err := expr.Run(e.prog, env.runtime(e.steps))
	var fe *file.Error
	if errors.As(err, &fe) && stopped(fe.Unwrap()) {
		// One line, without expr's source excerpt: the step's error names
		// the expression and why it stopped.
		err = fe.Unwrap()
	}
	if err != nil {
		return nil, fmt.Errorf("evaluate %q: %w", e.src, err)
	}
	return out, nil
}

// EvalBool runs a condition; the result must be a bool.
func (e *Expr) EvalBool(env Env) (bool, error) {
	out, err := e.Eval(env)
	if err != nil {
		return false, err
	}
	b, ok := out.(bool)
	if !ok {
		return false, fmt.Errorf("evaluate %q: got %T, want a bool", e.src, out)
	}
	return b, nil
}

// EvalList runs a foreach expression; the result must be a list (nil, as
// from an absent optional arg, is the empty list). The items are
// normalized like Value.Eval results.
func (e *Expr) EvalList(env Env) ([]any, error) {
	out, err := e.Eval(env)
	if err != nil {
		return nil, err
	}
	if out == nil {
		return []any{}, nil
	}
	k := reflect.ValueOf(out).Kind()
	if k != reflect.Slice && k != reflect.Array {
		return nil, fmt.Errorf("evaluate %q: got %T, want a list", e.src, out)
	}
	n, err := normalize(out, 0)
	if err != nil {
		return nil, fmt.Errorf("evaluate %q: %w", e.src, err)
	}
	list, _ := n.([]any)
	return list, nil
}

// EvalString runs the expression and stringifies its result as an
// interpolated string would.
func (e *Expr) EvalString(env Env) (string, error) {
	out, err := e.Eval(env)
	if err != nil {
		return "", err
	}
	n, err := normalize(out, 0)
	if err != nil {
		return "", fmt.Errorf("evaluate %q: %w", e.src, err)
	}
	return stringify(n)
}

// stopped reports whether err ended an evaluation from outside the
// expression: its budget ran out or its context ended.
func stopped(err error) bool {
	return errors.Is(err, ErrBudget) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}
