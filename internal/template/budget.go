package template

import (
	"context"
	"errors"
	"fmt"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/types"
)

// MaxEvalSteps bounds the work of one evaluation: every pass of a
// predicate (the body of count, filter, map, all, any, reduce, sortBy,
// ...) is a step. expr bounds the memory an evaluation allocates but not
// the time it takes, and predicates nest:
// count(args.l, count(args.l, # == 1) > 0) over 100,000 items is 10^10
// passes. A million passes is well under a second of work, far above what
// a template needs (a filter over a 100,000-item list is 100,000), and
// counting steps rather than time makes the outcome the same on a busy
// machine as on an idle one, so a replayed decision fails the same way.
const MaxEvalSteps = 1_000_000

// ErrBudget is the error of an evaluation that ran past MaxEvalSteps.
var ErrBudget = errors.New("expression exceeded its evaluation budget")

// Names an expression cannot spell ('$' starts no identifier but $env):
// the patcher below calls tickFunc(budgetVar) at the start of every
// predicate pass.
const (
	tickFunc  = "$tick"
	budgetVar = "$budget"
)

// ctxCheckEvery is how many steps pass between two looks at the context:
// often enough that a cancel stops an evaluation within microseconds,
// rarely enough to cost nothing.
const ctxCheckEvery = 1024

// budget counts the steps of one evaluation and watches its context.
type budget struct {
	ctx   context.Context // nil: never cancelled
	steps int
	max   int
}

// tick counts one step; an error stops the evaluation.
func (b *budget) tick() error {
	b.steps++
	if b.steps > b.max {
		return fmt.Errorf("%w (%d predicate steps)", ErrBudget, b.max)
	}
	if b.ctx != nil && b.steps%ctxCheckEvery == 0 {
		if err := b.ctx.Err(); err != nil {
			return fmt.Errorf("evaluation stopped: %w", err)
		}
	}
	return nil
}

// budgetType is the static type of budgetVar in a compile environment.
var budgetType = types.TypeOf(&budget{})

// budgetOptions returns the compile options that make every predicate
// count against the evaluation's budget.
func budgetOptions() []expr.Option {
	return []expr.Option{
		expr.Function(tickFunc, func(a ...any) (any, error) {
			b, ok := a[0].(*budget)
			if !ok {
				return nil, fmt.Errorf("internal error: %s got %T", tickFunc, a[0])
			}
			if err := b.tick(); err != nil {
				return nil, err
			}
			return true, nil
		}, new(func(*budget) bool)),
		expr.Patch(tickPatcher{}),
	}
}

// tickPatcher rewrites the body B of every predicate into the sequence
// ($tick($budget); B), whose type is B's, so the checker and the
// compiler see the template's expression unchanged.
type tickPatcher struct{}

// Visit implements ast.Visitor.
func (tickPatcher) Visit(node *ast.Node) {
	p, ok := (*node).(*ast.PredicateNode)
	if !ok || isTicked(p.Node) {
		return
	}
	call := &ast.CallNode{
		Callee:    &ast.IdentifierNode{Value: tickFunc},
		Arguments: []ast.Node{&ast.IdentifierNode{Value: budgetVar}},
	}
	p.Node = &ast.SequenceNode{Nodes: []ast.Node{call, p.Node}}
}

// isTicked reports whether a predicate body was patched already (the
// checker may run patchers more than once).
func isTicked(n ast.Node) bool {
	s, ok := n.(*ast.SequenceNode)
	if !ok || len(s.Nodes) != 2 {
		return false
	}
	c, ok := s.Nodes[0].(*ast.CallNode)
	if !ok {
		return false
	}
	id, ok := c.Callee.(*ast.IdentifierNode)
	return ok && id.Value == tickFunc
}
